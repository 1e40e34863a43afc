"""The allocation methods a protocol can name, and the replay that audits them.

Concealment model: the database stores past allocations only, never a list of future ones. The
next assignment is *derived* from the secret-keyed stream, the ordered history of past
allocations (withdrawn and excluded patients included: intention to treat) and the new
patient's factors. Replaying the same derivation over the recorded history with the secret
confirms every recorded arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sarcoma_sched.allocation.blocks import block_arms, forced_from, locate
from sarcoma_sched.allocation.minimization import MinimizationRule, reduced_ratio
from sarcoma_sched.allocation.random_stream import RandomStream
from sarcoma_sched.allocation.records import (
    Decision,
    PriorAllocation,
    TrialCounts,
    factor_level,
    stratum_key,
)
from sarcoma_sched.errors import AllocationError
from sarcoma_sched.protocol.allocation import (
    Allocation,
    AssignedAllocation,
    BlockAllocation,
    ConcealedAllocation,
    FixedAllocation,
    MinimizationAllocation,
    factor_fields,
)

__all__ = [
    "ReplayRow",
    "allocate",
    "allocate_counted",
    "count_groups",
    "counts_of",
    "method_fields",
    "replay",
    "replay_decisions",
    "simple_randomization",
]


class ReplayRow(NamedTuple):
    position: int
    expected_arm: str
    recorded_arm: str
    match: bool


def method_fields(method: Allocation) -> list[str]:
    """The factor fields a method reads: block strata or minimization factors, in declared order."""
    return factor_fields(method)


def allocate(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
    position: int,
    stream: RandomStream,
    assigned_arm: str | None = None,
) -> Decision:
    """The arm for the patient at 1-based trial ``position``.

    ``arm_ids`` in protocol order (it fixes the order of arms inside a block before shuffling, so
    it must be the same at allocation and at replay); ``history`` every earlier allocation of the
    trial in position order; ``stream`` the trial's stream (``DrawStream(trial_key(...))``; a
    simulated trial's ``SimulationStream``).
    """
    arms = _check_arms(arm_ids)
    if isinstance(method, ConcealedAllocation):
        raise _concealed()
    _check_history(history, arms, position)
    counts = counts_of(method, arms, history, factors)
    return allocate_counted(method, arms, counts, factors, position, stream, assigned_arm)


def counts_of(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
) -> TrialCounts:
    """What ``method`` reads of ``history`` for a patient with ``factors``."""
    fields = method_fields(method)
    for p in history:
        # A broken record is refused naming its position, as the replay names it.
        _values(fields, p.factors, f"position {p.position}")
    return count_groups(
        method,
        arm_ids,
        [(p.arm, p.factors, 1) for p in history],
        factors,
        last_position=history[-1].position if history else 0,
    )


def count_groups(
    method: Allocation,
    arm_ids: Sequence[str],
    groups: Sequence[tuple[str, Mapping[str, object], int]],
    factors: Mapping[str, str],
    *,
    last_position: int,
) -> TrialCounts:
    """``counts_of`` from a history grouped by (arm, factors) with the size of each group: what
    the database hands over, a few rows per combination of levels however long the trial."""
    allocated = sum(n for _arm, _f, n in groups)
    named = frozenset(arm for arm, _f, _n in groups)
    if not isinstance(method, BlockAllocation | MinimizationAllocation):
        return TrialCounts(allocated, last_position, named)
    fields = method_fields(method)
    values = _values(fields, factors, "the patient")
    index = {a: i for i, a in enumerate(arm_ids)}
    in_stratum = 0
    level_counts = [[0] * len(arm_ids) for _ in fields]
    for arm, stored, n in groups:
        missing = next((f for f in fields if stored.get(f) in (None, "")), None)
        if missing is not None:
            return TrialCounts(allocated, last_position, named, missing_factor=missing)
        prior = _values(fields, stored, "an earlier allocation")
        if all(prior[f] == values[f] for f in fields):
            in_stratum += n
        a = index.get(arm)
        if a is None:
            continue  # an unknown arm: allocate_counted refuses it by name
        for f, name in enumerate(fields):
            if prior[name] == values[name]:
                level_counts[f][a] += n
    if isinstance(method, BlockAllocation):
        return TrialCounts(allocated, last_position, named, in_stratum=in_stratum)
    return TrialCounts(
        allocated,
        last_position,
        named,
        level_counts=tuple(tuple(c) for c in level_counts),
    )


def allocate_counted(
    method: Allocation,
    arm_ids: Sequence[str],
    counts: TrialCounts,
    factors: Mapping[str, str],
    position: int,
    stream: RandomStream,
    assigned_arm: str | None = None,
) -> Decision:
    """``allocate`` from the counts of the history rather than the history: what the service
    calls, with the counts taken by the database under the write lock."""
    arms = _check_arms(arm_ids)
    if isinstance(method, ConcealedAllocation):
        raise _concealed()
    _check_counts(counts, arms, position)
    if isinstance(method, FixedAllocation):
        if method.arm not in arms:
            raise AllocationError(f"the fixed arm {method.arm!r} is not an arm of the trial")
        if assigned_arm is not None and assigned_arm != method.arm:
            raise AllocationError(
                f"this trial allocates every patient to {method.arm}; {assigned_arm!r} "
                "cannot be assigned"
            )
        return Decision(method.arm, None, {}, True, {"method": "fixed"})
    if isinstance(method, AssignedAllocation):
        if assigned_arm is None:
            raise AllocationError(
                "this trial's arms are assigned by the coordinator: name the arm "
                f"(one of {', '.join(arms)})"
            )
        if assigned_arm not in arms:
            raise AllocationError(f"unknown arm {assigned_arm!r} (arms: {', '.join(arms)})")
        return Decision(assigned_arm, None, {}, True, {"method": "assigned"})
    if assigned_arm is not None:
        # A randomized trial must never let a caller override the sequence, even by accident.
        raise AllocationError(
            f"this trial is randomized ({method.method}); an arm cannot be assigned"
        )
    _check_ratio(method.ratio, arms)
    if isinstance(method, BlockAllocation):
        return _blocks(method, arms, counts, factors, stream)
    return _minimization(method, arms, counts, factors, position, stream)


def _concealed() -> AllocationError:
    # The view of the method a site role reads has no parameters to draw with.
    return AllocationError(
        "this trial's allocation parameters are held by the server and concealed from "
        "your role: the server draws (`allocation init-secret --server`)"
    )


def replay(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    stream: RandomStream,
) -> list[ReplayRow]:
    """Recompute every recorded allocation from the secret and compare.

    Each position is recomputed from the history *as recorded* before it, exactly as the
    allocator saw it; the first mismatch is therefore the first tampered (or mis-allocated)
    record. For ``assigned`` there is no rule to recompute: every row matches. Records out of
    order or naming an unknown arm raise :class:`AllocationError`.
    """
    decisions = replay_decisions(method, arm_ids, history, stream)
    return [
        ReplayRow(p.position, d.arm, p.arm, d.arm == p.arm)
        for p, d in zip(history, decisions, strict=True)
    ]


def replay_decisions(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    stream: RandomStream,
) -> list[Decision]:
    """The decision the allocator makes at each recorded position, concealed parts included.

    For an authorized reveal (secret required): block, size and slot of every allocation.
    Each decision equals ``allocate`` over the recorded history before it, but the counts it
    reads (patients per stratum, per factor level and arm) are kept running and each stratum's
    current block is remembered, so a whole trial replays in linear time rather than
    re-counting its history at every position.
    """
    arms = _check_arms(arm_ids)
    if isinstance(method, ConcealedAllocation):
        raise _concealed()
    if not history:
        return []
    # A record out of order or naming an unknown arm is a broken database, not a mismatch.
    _check_history(history, arms, history[-1].position + 1)
    if isinstance(method, FixedAllocation | AssignedAllocation):
        # Neither reads the history; it has just been checked in full.
        return [
            allocate_counted(
                method,
                arms,
                TrialCounts(0, 0, frozenset()),
                p.factors,
                p.position,
                stream,
                p.arm if isinstance(method, AssignedAllocation) else None,
            )
            for p in history
        ]
    _check_ratio(method.ratio, arms)
    if isinstance(method, BlockAllocation):
        return _replay_blocks(method, arms, history, stream)
    return _replay_minimization(method, arms, history, stream)


def _replay_blocks(
    method: BlockAllocation,
    arms: list[str],
    history: Sequence[PriorAllocation],
    stream: RandomStream,
) -> list[Decision]:
    # Per stratum: patients so far, and the current block (index, first count, arms).
    seen: dict[str, int] = {}
    current: dict[str, tuple[int, int, list[str]]] = {}
    decisions = []
    for p in history:
        values = _values(method.strata, p.factors, "the patient")
        stratum = stratum_key(method.strata, values)
        n_before = seen.get(stratum, 0)
        seen[stratum] = n_before + 1
        index, start, block = current.get(stratum) or (
            0,
            0,
            block_arms(stream, stratum, 0, arms, method.ratio, method.block_sizes),
        )
        while n_before >= start + len(block):
            index, start = index + 1, start + len(block)
            block = block_arms(stream, stratum, index, arms, method.ratio, method.block_sizes)
        current[stratum] = (index, start, block)
        decisions.append(_block_decision(stratum, values, index, block, n_before - start))
    return decisions


def _replay_minimization(
    method: MinimizationAllocation,
    arms: list[str],
    history: Sequence[PriorAllocation],
    stream: RandomStream,
) -> list[Decision]:
    fields = [f.field for f in method.factors]
    arm_index = {a: i for i, a in enumerate(arms)}
    rule = _rule(method, arms)
    none = (0,) * len(arms)
    # counts[f][level][a]: patients recorded in arm a with that level of factor f.
    counts: list[dict[str, list[int]]] = [{} for _ in fields]
    decisions = []
    for p in history:
        values = _values(fields, p.factors, "the patient")
        level_counts = [counts[f].get(values[name], none) for f, name in enumerate(fields)]
        decisions.append(
            _minimization_decision(method, arms, rule, values, level_counts, p.position, stream)
        )
        # The recorded arm, not the replayed one: the next position is recomputed from the
        # history as recorded, exactly as the allocator saw it.
        a = arm_index[p.arm]
        for f, name in enumerate(fields):
            level = counts[f].get(values[name])
            if level is None:
                level = counts[f][values[name]] = [0] * len(arms)
            level[a] += 1
    return decisions


def simple_randomization(
    arm_ids: Sequence[str], ratio: Mapping[str, int], stream: RandomStream
) -> str:
    """Each arm with probability ratio/sum, independently of every other patient.

    Not a protocol method: the comparator a statistician weighs restricted designs against.
    """
    weights = reduced_ratio(arm_ids, ratio)
    r = stream.randbelow(sum(weights))
    for arm, w in zip(arm_ids, weights, strict=True):
        if r < w:
            return arm
        r -= w
    raise AssertionError("unreachable")


def _blocks(
    method: BlockAllocation,
    arms: list[str],
    counts: TrialCounts,
    factors: Mapping[str, str],
    stream: RandomStream,
) -> Decision:
    fields = method.strata
    values = _values(fields, factors, "the patient")
    stratum = stratum_key(fields, values)
    index, block, slot = locate(
        stream, stratum, counts.in_stratum, arms, method.ratio, method.block_sizes
    )
    return _block_decision(stratum, values, index, block, slot)


def _block_decision(
    stratum: str, values: dict[str, str], index: int, block: list[str], slot: int
) -> Decision:
    return Decision(
        arm=block[slot],
        stratum=stratum,
        factors=values,
        deterministic=slot >= forced_from(block),
        detail={"method": "stratified_blocks"},
        concealed={"block": index, "block_size": len(block), "slot": slot},
    )


def _minimization(
    method: MinimizationAllocation,
    arms: list[str],
    counts: TrialCounts,
    factors: Mapping[str, str],
    position: int,
    stream: RandomStream,
) -> Decision:
    fields = [f.field for f in method.factors]
    values = _values(fields, factors, "the patient")
    level_counts = counts.level_counts or tuple((0,) * len(arms) for _ in fields)
    if len(level_counts) != len(fields) or any(len(c) != len(arms) for c in level_counts):
        raise AllocationError("minimization counts do not match the trial's factors and arms")
    rule = _rule(method, arms)
    return _minimization_decision(method, arms, rule, values, level_counts, position, stream)


def _rule(method: MinimizationAllocation, arms: list[str]) -> MinimizationRule:
    return MinimizationRule(
        arms,
        method.ratio,
        [f.weight for f in method.factors],
        method.probability,
        method.imbalance,
    )


def _minimization_decision(
    method: MinimizationAllocation,
    arms: list[str],
    rule: MinimizationRule,
    values: dict[str, str],
    level_counts: Sequence[Sequence[int]],
    position: int,
    stream: RandomStream,
) -> Decision:
    """``level_counts[f][a]``: patients in arm ``a`` sharing this patient's level of factor f."""
    totals = rule.totals(level_counts)
    chosen, preferred, u = rule.choose(totals, stream.derive("minimization", position))
    return Decision(
        arm=arms[chosen],
        stratum=stratum_key([f.field for f in method.factors], values),
        factors=values,
        deterministic=rule.deterministic(preferred),
        # All of this follows from the recorded history except the draw, which is this
        # position's own: storing it reveals nothing about any other position.
        detail={
            "method": "minimization",
            "imbalance": method.imbalance,
            "scores": {arms[a]: rule.natural(t) for a, t in enumerate(totals)},
            "preferred": [arms[a] for a in preferred],
            "draw": u,
            "probability": method.probability,
            "took": "preferred" if chosen in preferred else "other",
        },
    )


def _check_arms(arm_ids: Sequence[str]) -> list[str]:
    arms = list(arm_ids)
    if not arms:
        raise AllocationError("a trial needs at least one arm")
    if len(set(arms)) != len(arms):
        raise AllocationError(f"arm ids repeat: {', '.join(arms)}")
    return arms


def _check_ratio(ratio: Mapping[str, int], arms: list[str]) -> None:
    if set(ratio) != set(arms):
        raise AllocationError(
            f"the allocation ratio names {', '.join(ratio)} but the arms are {', '.join(arms)}"
        )


def _check_history(history: Sequence[PriorAllocation], arms: list[str], position: int) -> None:
    last = 0
    known = set(arms)
    for p in history:
        if p.position <= last:
            raise AllocationError(
                f"allocation history out of order: position {p.position} after {last}"
            )
        if p.arm not in known:
            raise AllocationError(
                f"allocation at position {p.position} is to unknown arm {p.arm!r}"
            )
        last = p.position
    if position <= last:
        raise AllocationError(
            f"position {position} is not after the last recorded allocation ({last})"
        )


def _check_counts(counts: TrialCounts, arms: list[str], position: int) -> None:
    """``_check_history`` for a history seen only through its counts."""
    unknown = sorted(counts.arms - set(arms))
    if unknown:
        raise AllocationError(f"an earlier allocation is to unknown arm {unknown[0]!r}")
    if counts.missing_factor is not None:
        raise AllocationError(
            f"an earlier allocation has no value for allocation factor {counts.missing_factor!r}"
        )
    if position <= counts.last_position:
        raise AllocationError(
            f"position {position} is not after the last recorded allocation "
            f"({counts.last_position})"
        )


def _values(fields: Sequence[str], factors: Mapping[str, object], who: str) -> dict[str, str]:
    out = {}
    for name in fields:
        if name not in factors or factors[name] is None or factors[name] == "":
            raise AllocationError(f"{who} has no value for allocation factor {name!r}")
        out[name] = factor_level(factors[name])
    return out
