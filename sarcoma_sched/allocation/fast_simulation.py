"""The simulated methods vectorised across trials: the arms they give, at NumPy speed.

Trials are independent and only the patients within a trial are sequential, so each function
here walks the positions once and decides position p for every trial of a chunk at the same
time. The arithmetic is the allocator's, operation for operation (the same integers, the same
float additions in the same order, the same tie tolerance), and the draws are the stream's own,
read as arrays (a :class:`~sarcoma_sched.allocation.simulation_stream.Family` makes a trial's
words for every position in one call), so every assignment equals what :func:`allocate` returns
from the same stream: ``tests/unit/test_allocation_fast_simulation.py`` holds the two equal for
every method.

``patients[t, i, f]`` is the level index of factor f for trial t's patient at position i + 1;
``streams[t]`` is trial t's stream. Each function returns the arm index of every patient and,
per trial, how many assignments were deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from sarcoma_sched.allocation.blocks import block_arms, forced_from
from sarcoma_sched.allocation.minimization import TIE_TOLERANCE, MinimizationRule, reduced_ratio
from sarcoma_sched.allocation.records import stratum_key
from sarcoma_sched.allocation.simulation_stream import (
    SimulationStream,
    randbelow_words,
    uniforms,
)
from sarcoma_sched.protocol.allocation import BlockAllocation

__all__ = [
    "Arms",
    "blocks_fast",
    "minimization_fast",
    "position_words",
    "randbelow_at",
    "simple_fast",
]

Ints = NDArray[np.int64]
Words = NDArray[np.uint64]
Floats = NDArray[np.float64]
# (arm index per trial and position, deterministic assignments per trial)
Arms = tuple[Ints, Ints]


def position_words(streams: Sequence[SimulationStream], label: str, n: int) -> Words:
    """``[t, i, j]``: word j of ``streams[t].derive(label, i + 1)``, the first two words."""
    out = np.empty((len(streams), n, 2), dtype=np.uint64)
    for t, stream in enumerate(streams):
        out[t] = stream.family(label).words(n + 1)[1:, :2]
    return out


def randbelow_at(
    streams: Sequence[SimulationStream], label: str, words: Words, used: int, m: int
) -> Ints:
    """``randbelow(m)`` of every ``derive(label, position)`` after ``used`` draws of one word,
    its first try read from ``words[..., used]``; a rejected try (about m in 2**64) is asked of
    the stream itself."""
    values, rejected = randbelow_words(words[..., used], m)
    for t, i in zip(*np.nonzero(rejected), strict=True):
        values[t, i] = _randbelow_exact(streams[int(t)], label, int(i), used, m)
    return values


def _randbelow_exact(stream: SimulationStream, label: str, i: int, used: int, m: int) -> int:
    derived = stream.derive(label, i + 1)
    for _ in range(used):
        derived.uniform()
    return derived.randbelow(m)


def simple_fast(
    arm_ids: Sequence[str], ratio: Mapping[str, int], streams: Sequence[SimulationStream], n: int
) -> Arms:
    """``simple_randomization(arms, ratio, stream.derive("simple", position))`` everywhere."""
    weights = reduced_ratio(arm_ids, ratio)
    # The draw r in [0, sum) maps to the arm whose cumulative weight first exceeds it.
    table = np.array([a for a, w in enumerate(weights) for _ in range(w)], dtype=np.int64)
    if len(table) == 1:  # randbelow(1) draws nothing
        return np.zeros((len(streams), n), dtype=np.int64), np.zeros(len(streams), dtype=np.int64)
    words = position_words(streams, "simple", n)
    arms = table[randbelow_at(streams, "simple", words, 0, len(table))]
    return arms, np.zeros(len(streams), dtype=np.int64)


def minimization_fast(
    rule: MinimizationRule,
    picks: Sequence[int],
    n_levels: Sequence[int],
    streams: Sequence[SimulationStream],
    patients: Ints,
) -> Arms:
    """``allocate`` under minimization, position after position, for every trial at once.

    ``picks[j]`` is the column of ``patients`` holding the rule's j-th factor, which has
    ``n_levels[j]`` levels.
    """
    n_trials, n, _ = patients.shape
    k = rule.n_arms
    # Each position's stream draws a uniform (word 0), then breaks a tie (word 1).
    words = position_words(streams, "minimization", n)
    u_all = uniforms(words[..., 0])
    levels_of = patients[:, :, list(picks)]
    n_factors = len(picks)
    # The counts live in one flat array, counts[((t·F + j)·L + level)·k + arm]: trial t's
    # patients so far in that arm with that level of factor j. cells[i, t, j] is where position
    # i's patient's row starts, made for all positions at once, position-major so that each
    # step reads one contiguous slice.
    width = max(n_levels)
    base = (np.arange(n_trials)[:, None] * n_factors + np.arange(n_factors)) * width
    cells = np.ascontiguousarray(((base[:, None, :] + levels_of) * k).transpose(1, 0, 2))
    counts = np.zeros(n_trials * n_factors * width * k, dtype=np.int64)
    if k == 2 and not rule.variance:
        return _two_arm_range(rule, cells, counts, u_all, words[..., 1])
    ties = {m: randbelow_words(words[..., 1], m) for m in range(2, k + 1)}
    mult = np.array(rule.multipliers, dtype=np.int64)
    arm_axis = np.arange(k)
    out = np.empty((n_trials, n), dtype=np.int64)
    forced = np.zeros(n_trials, dtype=np.int64)
    for i in range(n):
        cell = cells[i]
        rows = counts[cell[:, :, None] + arm_axis]  # (trials, factors, arms)
        totals = _totals(rows, rule.weights, mult, rule.variance)
        best = totals.min(axis=1)
        limit = best + TIE_TOLERANCE * np.maximum(1.0, np.abs(best))
        preferred = totals <= limit[:, None]
        n_preferred = preferred.sum(axis=1)
        take_preferred = (u_all[:, i] < rule.probability) | (n_preferred == k)
        pool = np.where(take_preferred[:, None], preferred, ~preferred)
        size = pool.sum(axis=1)
        r = np.zeros(n_trials, dtype=np.int64)
        for m, (values, rejected) in ties.items():
            chosen = size == m
            if chosen.any():
                r[chosen] = values[chosen, i]
                for t in np.nonzero(chosen & rejected[:, i])[0]:
                    r[t] = _randbelow_exact(streams[int(t)], "minimization", i, 1, m)
        # The r-th arm of the pool, counting in arm order as the allocator's list does.
        rank = np.cumsum(pool, axis=1) - 1
        arm = ((rank == r[:, None]) & pool).argmax(axis=1)
        out[:, i] = arm
        if rule.probability >= 1.0:
            forced += n_preferred == 1
        # One row per (trial, factor): the indices never repeat, so += counts each once.
        counts[cell + arm[:, None]] += 1
    return out, forced


def _two_arm_range(
    rule: MinimizationRule, cells: Ints, counts: Ints, u_all: Floats, tie_words: Words
) -> Arms:
    """Two arms, range imbalance, the common design: the rule's two-arm arithmetic
    (:meth:`MinimizationRule.totals`, the same integers and float additions in the same order)
    with the fewest array operations per position."""
    n, n_trials, n_factors = cells.shape
    m0, m1 = rule.multipliers
    weights = rule.weights
    take = np.ascontiguousarray((u_all < rule.probability).T)
    # randbelow(2) when both arms tie: 2 divides 2**64, so its first word is never rejected.
    coin = np.ascontiguousarray((tie_words & np.uint64(1)).astype(np.int64).T)
    out = np.empty((n, n_trials), dtype=np.int64)
    ties = np.zeros(n_trials, dtype=np.int64)
    for i in range(n):
        cell = cells[i]
        diff = counts[cell] * m0 - counts[cell + 1] * m1  # (trials, factors)
        join0 = np.abs(diff + m0)
        join1 = np.abs(diff - m1)
        t0 = 0.0 + weights[0] * join0[:, 0]
        t1 = 0.0 + weights[0] * join1[:, 0]
        for j in range(1, n_factors):
            t0 = t0 + weights[j] * join0[:, j]
            t1 = t1 + weights[j] * join1[:, j]
        best = np.minimum(t0, t1)
        limit = best + TIE_TOLERANCE * np.maximum(1.0, np.abs(best))
        prefer1 = t1 <= limit
        tie = prefer1 & (t0 <= limit)
        # No tie: the preferred arm (1 when arm 1 is the minimizer) with p, else the other.
        arm = np.where(tie, coin[i], prefer1 ^ ~take[i])
        out[i] = arm
        ties += tie
        counts[cell + arm[:, None]] += 1
    forced = n - ties if rule.probability >= 1.0 else np.zeros(n_trials, dtype=np.int64)
    return np.ascontiguousarray(out.T), forced


def _totals(rows: Ints, weights: Sequence[float], mult: Ints, variance: bool) -> Floats:
    """MinimizationRule.totals for every trial: the same integers and float additions."""
    n_trials, _, k = rows.shape
    totals = np.zeros((n_trials, k))
    for j, w in enumerate(weights):
        x = rows[:, j, :] * mult
        for a in range(k):
            x[:, a] += mult[a]
            if variance:
                s = x.sum(axis=1)
                d = k * (x * x).sum(axis=1) - s * s
            else:
                d = x.max(axis=1) - x.min(axis=1)
            x[:, a] -= mult[a]
            totals[:, a] = totals[:, a] + w * d
    return totals


def blocks_fast(
    method: BlockAllocation,
    arm_ids: Sequence[str],
    picks: Sequence[int],
    level_names: Sequence[Sequence[str]],
    streams: Sequence[SimulationStream],
    patients: Ints,
) -> Arms:
    """``allocate`` under stratified permuted blocks for every trial at once.

    A patient's arm depends only on their stratum and how many came before them in it, so the
    ranks are computed for all patients at once, each stratum's blocks are derived by the
    allocator's own :func:`block_arms` (one per block, not per patient) and the arms are read
    off by index.
    """
    n_trials, n, _ = patients.shape
    index = {a: i for i, a in enumerate(arm_ids)}
    sub = patients[:, :, list(picks)]
    # Mixed-radix stratum number over the strata factors (0 when unstratified).
    sid = np.zeros((n_trials, n), dtype=np.int64)
    for j, column in enumerate(picks):
        sid = sid * len(level_names[column]) + sub[:, :, j]
    order = np.argsort(sid, axis=1, kind="stable")
    ranked = np.take_along_axis(sid, order, axis=1)
    starts = np.ones((n_trials, n), dtype=np.bool_)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    positions = np.broadcast_to(np.arange(n), (n_trials, n))
    group_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    rank = np.empty((n_trials, n), dtype=np.int64)
    np.put_along_axis(rank, order, positions - group_start, axis=1)

    names: dict[int, str] = {}
    arms_flat: list[int] = []
    forced_flat: list[bool] = []
    offset = np.zeros((n_trials, n), dtype=np.int64)
    for t in range(n_trials):
        stream = streams[t]
        row_sid = ranked[t]
        ends = np.append(np.nonzero(starts[t][1:])[0] + 1, n)
        begin = 0
        for end in ends.tolist():
            s = int(row_sid[begin])
            need = end - begin
            name = names.get(s)
            if name is None:
                name = names[s] = _stratum_name(method, picks, level_names, sub[t, order[t, begin]])
            base = len(arms_flat)
            b = 0
            while len(arms_flat) - base < need:
                block = block_arms(stream, name, b, arm_ids, method.ratio, method.block_sizes)
                first_forced = forced_from(block)
                arms_flat += [index[a] for a in block]
                forced_flat += [slot >= first_forced for slot in range(len(block))]
                b += 1
            offset[t, order[t, begin:end]] = base
            begin = end
    at = offset + rank
    arms = np.array(arms_flat, dtype=np.int64)[at]
    forced = np.array(forced_flat, dtype=np.bool_)[at].sum(axis=1).astype(np.int64)
    return arms, forced


def _stratum_name(
    method: BlockAllocation,
    picks: Sequence[int],
    level_names: Sequence[Sequence[str]],
    levels: Ints,
) -> str:
    values = {
        name: level_names[column][int(lv)]
        for name, column, lv in zip(method.strata, picks, levels, strict=True)
    }
    return stratum_key(method.strata, values)
