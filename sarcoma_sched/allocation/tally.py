"""Operating characteristics of simulated trials, accumulated over chunks of trials.

The figures are computed for a whole chunk at once with NumPy, but each float is the result of
the same operations in the same order as a patient-by-patient count would give (integer counts,
one division, sums accumulated in position, level and trial order; ``math.fsum`` where the
order is free), so a seed's report does not depend on how the trials were chunked or which path
allocated them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from sarcoma_sched.allocation.minimization import reduced_ratio

__all__ = ["Tally"]

Ints = NDArray[np.int64]


class Tally:
    """Per-trial figures of one method, in trial order."""

    def __init__(self, arms: Sequence[str], ratio: Mapping[str, int], n_levels: Sequence[int]):
        r = reduced_ratio(arms, ratio)
        self.k = len(arms)
        self.lcm = math.lcm(*r)
        # Counts are kept multiplied by lcm/ratio so that comparing arms is integer arithmetic.
        self.mult = np.array([self.lcm // x for x in r], dtype=np.int64)
        self.n_levels = list(n_levels)
        self.final: list[float] = []
        self.maximum: list[float] = []
        self.marginal_total: list[float] = []
        self.marginal: list[list[list[float]]] = [[[] for _ in range(n)] for n in n_levels]
        self.strata_total: list[float] = []
        self.strata_max: list[float] = []
        self.predict: list[float] = []
        self.determ: list[float] = []
        self.share = [0.0] * self.k

    def add(self, patients: Ints, arms: Ints, forced: Ints, in_stratum: bool) -> None:
        """A chunk of trials: ``arms[t, i]`` was given to the patient ``patients[t, i]``.

        ``in_stratum``: the convergence guesser (Blackwell–Hodges) looks at the patient's
        stratum (permuted blocks) rather than the whole trial.
        """
        n_trials, n = arms.shape
        k, lcm = self.k, self.lcm
        steps = np.zeros((n_trials, n, k), dtype=np.int64)
        np.put_along_axis(steps, arms[:, :, None], self.mult[arms][:, :, None], axis=2)
        after = np.cumsum(steps, axis=1)
        overall = after[:, -1, :]
        spread = _highest(after) - _lowest(after)
        self.final += ((overall.max(axis=1) - overall.min(axis=1)) / lcm).tolist()
        self.maximum += (spread.max(axis=1) / lcm).tolist()

        groups, group_trial = _cell_groups(patients, self.n_levels)
        n_groups = len(group_trial)
        cell_final = np.bincount(
            (groups * k + arms).ravel(), weights=self.mult[arms].ravel(), minlength=n_groups * k
        ).reshape(n_groups, k)
        seen = _before_in_group(groups, arms, self.mult, n_groups) if in_stratum else after - steps
        # The arm furthest behind its share so far; a tie among m arms credited 1/m.
        low = _lowest(seen)
        hit = np.take_along_axis(seen, arms[:, :, None], axis=2)[:, :, 0] == low
        ties = sum(seen[:, :, a] == low for a in range(k))
        credit = np.where(hit, 1.0 / ties, 0.0)
        correct = np.cumsum(credit, axis=1)[:, -1]  # in position order, as counted one by one
        self.predict += (correct / n).tolist()
        self.determ += (forced / n).tolist()

        total = np.zeros(n_trials)
        for f, n_lv in enumerate(self.n_levels):
            index = (np.arange(n_trials)[:, None] * n_lv + patients[:, :, f]) * k + arms
            by_level = np.bincount(
                index.ravel(), weights=self.mult[arms].ravel(), minlength=n_trials * n_lv * k
            ).reshape(n_trials, n_lv, k)
            d = (_highest(by_level) - _lowest(by_level)) / lcm
            for lv in range(n_lv):
                self.marginal[f][lv] += d[:, lv].tolist()
                total = total + d[:, lv]
        self.marginal_total += total.tolist()

        cell_spread = (_highest(cell_final) - _lowest(cell_final)) / lcm
        # Groups are numbered in trial-major order: each trial's cells are one contiguous run.
        bounds = np.searchsorted(group_trial, np.arange(n_trials + 1)).tolist()
        spreads = cell_spread.tolist()
        for t in range(n_trials):
            mine = spreads[bounds[t] : bounds[t + 1]]
            self.strata_total.append(math.fsum(mine))
            self.strata_max.append(max(mine))

        for a in range(k):
            for v in (overall[:, a] / self.mult[a] / n).tolist():
                self.share[a] += v


def _highest(x: Ints) -> Ints:
    # Over the last axis, a handful of arms: elementwise over slices, which NumPy does several
    # times faster than a reduction along a short inner axis.
    out = x[..., 0]
    for a in range(1, x.shape[-1]):
        out = np.maximum(out, x[..., a])
    return out


def _lowest(x: Ints) -> Ints:
    out = x[..., 0]
    for a in range(1, x.shape[-1]):
        out = np.minimum(out, x[..., a])
    return out


def _cell_groups(patients: Ints, n_levels: Sequence[int]) -> tuple[Ints, Ints]:
    """Per patient, a dense number for (trial, combination of every factor's level), numbered
    trial by trial; and the trial of each number. The cross of all factors is the stratum."""
    n_trials, n, n_factors = patients.shape
    n_cells = math.prod(n_levels)
    if n_cells * n_trials < 2**62:
        cell = np.zeros((n_trials, n), dtype=np.int64)
        for f, n_lv in enumerate(n_levels):
            cell = cell * n_lv + patients[:, :, f]
    else:  # too many combinations to number them all: number those that occur
        _, inverse = np.unique(patients.reshape(-1, n_factors), axis=0, return_inverse=True)
        cell = inverse.reshape(n_trials, n).astype(np.int64)
        n_cells = int(cell.max()) + 1
    keyed = np.arange(n_trials, dtype=np.int64)[:, None] * n_cells + cell
    if n_trials * n_cells <= 4 * keyed.size:
        # Few cells for the patients: mark those that occur and number them in order, without
        # the sort np.unique would do.
        occurs = np.zeros(n_trials * n_cells, dtype=np.bool_)
        occurs[keyed] = True
        number = np.cumsum(occurs) - 1
        return number[keyed], np.flatnonzero(occurs) // n_cells
    occurring, groups = np.unique(keyed, return_inverse=True)
    return groups.reshape(n_trials, n).astype(np.int64), occurring // n_cells


def _before_in_group(groups: Ints, arms: Ints, mult: Ints, n_groups: int) -> Ints:
    """Per patient, the scaled counts per arm of the earlier patients of the same group."""
    n_trials, n = arms.shape
    k = len(mult)
    counts = np.zeros((n_groups, k), dtype=np.int64)
    out = np.empty((n_trials, n, k), dtype=np.int64)
    for i in range(n):
        # One group per trial at each position, so the indices never repeat.
        g = groups[:, i]
        out[:, i, :] = counts[g]
        counts[g, arms[:, i]] += mult[arms[:, i]]
    return out
