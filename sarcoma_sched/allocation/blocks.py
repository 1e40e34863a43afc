"""Stratified permuted blocks: what block k of a stratum contains.

A block is a pure function of (secret, stratum, block index): its size is drawn from the declared
sizes and its arms shuffled from ``stream.derive("block", stratum, k)``. The database therefore
never needs a list of future assignments; the number of patients already allocated in the
stratum (withdrawn ones too) says which block and slot the next patient takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sarcoma_sched.allocation.random_stream import RandomStream

__all__ = ["block_arms", "forced_from", "locate"]


def block_arms(
    stream: RandomStream,
    stratum: str,
    index: int,
    arm_ids: Sequence[str],
    ratio: Mapping[str, int],
    sizes: Sequence[int],
) -> list[str]:
    """The arms of block ``index`` of ``stratum``, in allocation order.

    Each arm appears ``size * ratio[arm] / sum(ratio)`` times, so a completed block is exactly
    balanced to the ratio. Sizes are chosen with equal chance per listed entry (list a size twice
    to make it twice as likely); random sizes keep the end of a block from being predictable.
    """
    s = stream.derive("block", stratum, index)
    size = s.choice(sizes)
    total = sum(ratio.values())
    per_unit, rest = divmod(size, total)
    if rest:
        raise ValueError(f"block size {size} is not a multiple of the ratio's sum ({total})")
    arms = [arm for arm in arm_ids for _ in range(ratio[arm] * per_unit)]
    s.shuffle(arms)
    return arms


def locate(
    stream: RandomStream,
    stratum: str,
    n_before: int,
    arm_ids: Sequence[str],
    ratio: Mapping[str, int],
    sizes: Sequence[int],
    cache: dict[tuple[str, int], list[str]] | None = None,
) -> tuple[int, list[str], int]:
    """(block index, block arms, slot) for the patient after ``n_before`` in the stratum.

    Only the count matters, not which arms were recorded: a tampered record cannot shift the
    sequence, it only fails to match it. ``cache`` (keyed by stratum and block index, for one
    stream and design) saves re-deriving earlier blocks when replaying a whole trial.
    """
    index, start = 0, 0
    while True:
        arms = cache.get((stratum, index)) if cache is not None else None
        if arms is None:
            arms = block_arms(stream, stratum, index, arm_ids, ratio, sizes)
            if cache is not None:
                cache[stratum, index] = arms
        if n_before < start + len(arms):
            return index, arms, n_before - start
        start += len(arms)
        index += 1


def forced_from(arms: Sequence[str]) -> int:
    """The first slot from which every remaining arm of the block is the same.

    From that slot on, anyone who knew the block would know the assignment: these are the
    "deterministic" allocations of permuted blocks (always at least the last slot).
    """
    i = len(arms) - 1
    while i > 0 and arms[i - 1] == arms[-1]:
        i -= 1
    return i
