"""Pocock–Simon minimization: score each candidate arm, then choose with a biased coin.

The same :class:`MinimizationRule` serves the allocator (counts rebuilt from the recorded
history) and the simulation (counts kept incrementally), so the operating characteristics a
statistician reviews are those of the code that allocates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import reduce

from sarcoma_sched.allocation.random_stream import RandomStream

__all__ = ["TIE_TOLERANCE", "MinimizationRule", "reduced_ratio"]

# Relative tolerance when comparing weighted totals: factor imbalances are exact integers, but
# float weights can make mathematically equal totals differ in the last bit; such arms tie.
TIE_TOLERANCE = 1e-9


def reduced_ratio(arm_ids: Sequence[str], ratio: Mapping[str, int]) -> list[int]:
    """The ratio in lowest terms, in ``arm_ids`` order (2:2 is 1:1)."""
    g = reduce(math.gcd, (ratio[a] for a in arm_ids))
    return [ratio[a] // g for a in arm_ids]


class MinimizationRule:
    """Scores and choice for one minimization design.

    Counts are divided by the arm's ratio share before measuring imbalance, the usual extension
    of Pocock–Simon to unequal allocation: with 2:1, (2, 1) patients is balanced. To keep the
    arithmetic exact, each arm's count is multiplied by ``lcm(ratio) / ratio[arm]`` instead, so a
    factor's imbalance is an integer and only the factor weights are floats.
    """

    __slots__ = ("arm_ids", "lcm", "multipliers", "n_arms", "probability", "variance", "weights")

    def __init__(
        self,
        arm_ids: Sequence[str],
        ratio: Mapping[str, int],
        weights: Sequence[float],
        probability: float,
        measure: str = "range",
    ) -> None:
        if measure not in ("range", "variance"):
            raise ValueError(f"unknown imbalance measure {measure!r}")
        r = reduced_ratio(arm_ids, ratio)
        self.arm_ids = list(arm_ids)
        self.n_arms = len(r)
        self.lcm = reduce(math.lcm, r)
        self.multipliers = [self.lcm // x for x in r]
        self.weights = list(weights)
        self.probability = probability
        self.variance = measure == "variance"

    def totals(self, level_counts: Sequence[Sequence[int]]) -> list[float]:
        """Weighted imbalance if the patient joined each arm (internal integer units).

        ``level_counts[f][a]``: patients already in arm ``a`` who share the new patient's level
        of factor ``f``.
        """
        m = self.multipliers
        k = self.n_arms
        if k == 2 and not self.variance:
            # The common design, and the simulation's inner loop: with two arms the range is
            # |x0 − x1| after the join. Same integers and the same float additions in the same
            # order as the general loop below, so the totals are bit for bit the same.
            m0, m1 = m
            t0 = t1 = 0.0
            for (c0, c1), w in zip(level_counts, self.weights, strict=True):
                diff = c0 * m0 - c1 * m1
                t0 += w * abs(diff + m0)
                t1 += w * abs(diff - m1)
            return [t0, t1]
        totals = [0.0] * k
        for counts, w in zip(level_counts, self.weights, strict=True):
            x = [c * mi for c, mi in zip(counts, m, strict=True)]
            for a in range(k):
                x[a] += m[a]
                if self.variance:
                    s = sum(x)
                    d = k * sum(v * v for v in x) - s * s
                else:
                    d = max(x) - min(x)
                x[a] -= m[a]
                totals[a] += w * d
        return totals

    def natural(self, total: float) -> float:
        """A total in natural units: the range, or population variance, of count/ratio."""
        if self.variance:
            return total / (self.n_arms * self.n_arms * self.lcm * self.lcm)
        return total / self.lcm

    def preferred(self, totals: Sequence[float]) -> list[int]:
        best = min(totals)
        limit = best + TIE_TOLERANCE * max(1.0, abs(best))
        return [a for a, t in enumerate(totals) if t <= limit]

    def choose(self, totals: Sequence[float], stream: RandomStream) -> tuple[int, list[int], float]:
        """(arm index, preferred arm indices, the uniform draw).

        With probability p the arm comes from the minimizers, otherwise from the other arms;
        within either group every arm is equally likely. So with two arms the non-minimizing arm
        gets 1 − p; with more arms 1 − p is shared equally by the non-minimizing arms (Pocock and
        Simon's simplest rule), and a tie among minimizers is broken uniformly at random. When
        every arm ties the choice is uniform over all arms.
        """
        u = stream.uniform()
        arm, preferred = self.pick(totals, u, stream.randbelow)
        return arm, preferred, u

    def pick(
        self, totals: Sequence[float], u: float, randbelow: Callable[[int], int]
    ) -> tuple[int, list[int]]:
        """:meth:`choose` given its uniform draw ``u``; ``randbelow`` (the same stream's next
        draw) is called only to break a tie. The simulation draws ``u`` without a stream."""
        preferred = self.preferred(totals)
        if u < self.probability or len(preferred) == self.n_arms:
            pool = preferred
        else:
            pool = [a for a in range(self.n_arms) if a not in preferred]
        arm = pool[0] if len(pool) == 1 else pool[randbelow(len(pool))]
        return arm, preferred

    def deterministic(self, preferred: Sequence[int]) -> bool:
        return self.probability >= 1.0 and len(preferred) == 1
