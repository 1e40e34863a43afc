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

from sarcoma_sched.allocation.blocks import forced_from, locate
from sarcoma_sched.allocation.minimization import MinimizationRule, reduced_ratio
from sarcoma_sched.allocation.records import (
    AllocationError,
    Decision,
    PriorAllocation,
    factor_level,
    stratum_key,
)
from sarcoma_sched.allocation.stream import DrawStream
from sarcoma_sched.protocol.allocation import (
    Allocation,
    AssignedAllocation,
    BlockAllocation,
    FixedAllocation,
    MinimizationAllocation,
)

__all__ = [
    "ReplayRow",
    "allocate",
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
    if isinstance(method, BlockAllocation):
        return list(method.strata)
    if isinstance(method, MinimizationAllocation):
        return [f.field for f in method.factors]
    return []


def allocate(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
    position: int,
    stream: DrawStream,
    assigned_arm: str | None = None,
) -> Decision:
    """The arm for the patient at 1-based trial ``position``.

    ``arm_ids`` in protocol order (it fixes the order of arms inside a block before shuffling, so
    it must be the same at allocation and at replay); ``history`` every earlier allocation of the
    trial in position order; ``stream`` the trial's stream (``DrawStream(trial_key(...))``).
    """
    return _allocate(method, arm_ids, history, factors, position, stream, assigned_arm, None)


def _allocate(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
    position: int,
    stream: DrawStream,
    assigned_arm: str | None,
    cache: dict[tuple[str, int], list[str]] | None,
) -> Decision:
    arms = _check_arms(arm_ids)
    _check_history(history, arms, position)
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
        return _blocks(method, arms, history, factors, stream, cache)
    return _minimization(method, arms, history, factors, position, stream)


def replay(
    method: Allocation,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    stream: DrawStream,
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
    stream: DrawStream,
) -> list[Decision]:
    """The decision the allocator makes at each recorded position, concealed parts included.

    For an authorized reveal (secret required): block, size and slot of every allocation.
    Blocks are derived once per trial rather than once per position.
    """
    arms = _check_arms(arm_ids)
    # A record out of order or naming an unknown arm is a broken database, not a mismatch.
    if history:
        _check_history(history, arms, history[-1].position + 1)
    decisions = []
    cache: dict[tuple[str, int], list[str]] = {}
    for i, prior in enumerate(history):
        assigned = prior.arm if isinstance(method, AssignedAllocation) else None
        decisions.append(
            _allocate(
                method, arms, history[:i], prior.factors, prior.position, stream, assigned, cache
            )
        )
    return decisions


def simple_randomization(
    arm_ids: Sequence[str], ratio: Mapping[str, int], stream: DrawStream
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
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
    stream: DrawStream,
    cache: dict[tuple[str, int], list[str]] | None,
) -> Decision:
    fields = method.strata
    values = _values(fields, factors, "the patient")
    stratum = stratum_key(fields, values)
    n_before = sum(
        1
        for p in history
        if stratum_key(fields, _values(fields, p.factors, f"position {p.position}")) == stratum
    )
    index, block, slot = locate(
        stream, stratum, n_before, arms, method.ratio, method.block_sizes, cache
    )
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
    history: Sequence[PriorAllocation],
    factors: Mapping[str, str],
    position: int,
    stream: DrawStream,
) -> Decision:
    fields = [f.field for f in method.factors]
    values = _values(fields, factors, "the patient")
    index = {a: i for i, a in enumerate(arms)}
    level_counts = [[0] * len(arms) for _ in fields]
    for p in history:
        prior = _values(fields, p.factors, f"position {p.position}")
        a = index[p.arm]
        for f, name in enumerate(fields):
            if prior[name] == values[name]:
                level_counts[f][a] += 1
    rule = MinimizationRule(
        arms,
        method.ratio,
        [f.weight for f in method.factors],
        method.probability,
        method.imbalance,
    )
    totals = rule.totals(level_counts)
    chosen, preferred, u = rule.choose(totals, stream.derive("minimization", position))
    return Decision(
        arm=arms[chosen],
        stratum=stratum_key(fields, values),
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


def _values(fields: Sequence[str], factors: Mapping[str, object], who: str) -> dict[str, str]:
    out = {}
    for name in fields:
        if name not in factors or factors[name] is None or factors[name] == "":
            raise AllocationError(f"{who} has no value for allocation factor {name!r}")
        out[name] = factor_level(factors[name])
    return out
