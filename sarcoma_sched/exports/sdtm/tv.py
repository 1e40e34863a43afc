"""TV, the trial visits: every planned occurrence the engine schedules except home medication.

Visits are the arm's occurrences (``protocol.occurrences``, the expansion the planner places:
``rt``, ``ai.2``, ``labs.2``, ``follow_up.m12``) except oral home-medication periods, which are
not visits. VISITDY is the nominal study day with allocation as day 1 (SDTM has no day 0),
before any working-day shift; months count as 365.25/12 days. TVSTRL/TVENRL give the window:
its opening and closing rule relative to the anchor, each prefixed with the occurrence id the
schedule database uses. A visit timed identically in every arm is one row with ARMCD empty, as
the SDTMIG asks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sarcoma_sched.exports.sdtm.common import NOT_VISITS, Row, text
from sarcoma_sched.protocol.describe import ordinal
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import Occurrence, occurrences
from sarcoma_sched.protocol.schedule import Span
from sarcoma_sched.vocabulary import EventKind

__all__ = ["PlannedVisit", "planned_visits", "rows", "visit_numbers"]


@dataclass(frozen=True)
class _Visit:
    id: str
    label: str
    start: int  # nominal days from allocation
    study_day: int
    start_rule: str
    end_rule: str

    @property
    def signature(self) -> tuple[Any, ...]:
        return (self.id, self.label, self.start, self.start_rule, self.end_rule)


def _visit(o: Occurrence) -> _Visit:
    name = str(o.anchor)
    if o.month is not None:
        w = o.latest
        where = f"{name} + {o.month} months"
        start_rule = f"from {w} days before {where} (target {where})"
        end_rule = f"to {w} days after {where}"
    elif o.window_working:
        start_rule = (
            f"from the {ordinal(o.earliest)} working day after {name} (target "
            f"{_signed(o.offset)} days, moved into the window when outside)"
        )
        end_rule = f"to the {ordinal(o.latest)} working day after {name}" + _days_text(
            o.span, o.kind
        )
    else:
        start_rule = f"from {name} {_signed(o.earliest)} days (target {_signed(o.offset)} days)"
        end_rule = f"to {name} {_signed(o.latest)} days" + _days_text(o.span, o.kind)
    return _Visit(o.id, o.label, o.nominal.start, o.study_day, start_rule, end_rule)


def _signed(n: int) -> str:
    return f"+{n}" if n >= 0 else str(n)


def _days_text(span: Span, kind: str) -> str:
    if span.days == 1:
        return ""
    if span.day_counting == "working_days":
        unit = "fractions" if kind == EventKind.RADIOTHERAPY else "working days"
        return f"; lasts {span.days} {unit} on consecutive working days"
    return f"; lasts {span.days} calendar days"


@dataclass(frozen=True)
class PlannedVisit:
    """A visit of TV as a subject dataset names it: SV's VISITNUM, VISIT and VISITDY."""

    visitnum: int
    visit: str
    visitdy: int


def _layout(
    protocol: Protocol,
) -> tuple[dict[str, list[_Visit]], dict[tuple[str, str], int], dict[tuple[str, str], str]]:
    per_arm: dict[str, list[_Visit]] = {
        arm.id: [_visit(o) for o in occurrences(arm) if o.kind not in NOT_VISITS]
        for arm in protocol.arms
    }
    numbers = visit_numbers([[(v.id, v.label, v.start) for v in vs] for vs in per_arm.values()])
    # VISIT names a visit as uniquely as VISITNUM does: two visits that would read alike (the
    # same label on different events) carry their occurrence id as well.
    names = {key: text(key[1], key[0]) for key in numbers}
    alike = Counter(names.values())
    names = {k: v if alike[v] == 1 else text(f"{v} ({k[0]})") for k, v in names.items()}
    return per_arm, numbers, names


def planned_visits(protocol: Protocol) -> dict[str, dict[str, PlannedVisit]]:
    """Per arm id, per occurrence id: the TV visit it is, computed as ``rows`` computes TV, so
    SV and every other subject dataset carry exactly TV's VISITNUM and VISIT."""
    per_arm, numbers, names = _layout(protocol)
    return {
        arm: {
            v.id: PlannedVisit(numbers[(v.id, v.label)], names[(v.id, v.label)], v.study_day)
            for v in visits
        }
        for arm, visits in per_arm.items()
    }


def rows(protocol: Protocol, arms: Mapping[str, str]) -> list[Row]:
    per_arm, numbers, names = _layout(protocol)

    out: list[Row] = []
    common: set[tuple[Any, ...]] = set()
    if len(protocol.arms) > 1:
        common = set.intersection(*({v.signature for v in vs} for vs in per_arm.values()))
    emitted: set[tuple[Any, ...]] = set()
    for arm in protocol.arms:
        for v in per_arm[arm.id]:
            shared = v.signature in common
            if shared and v.signature in emitted:
                continue
            emitted.add(v.signature)
            out.append(
                {
                    "STUDYID": protocol.id,
                    "DOMAIN": "TV",
                    "VISITNUM": numbers[(v.id, v.label)],
                    "VISIT": names[(v.id, v.label)],
                    "VISITDY": v.study_day,
                    "ARMCD": "" if shared else arms[arm.id],
                    "ARM": "" if shared else text(arm.label, arm.id),
                    "TVSTRL": text(f"{v.id}: {v.start_rule}"),
                    "TVENRL": text(f"{v.id}: {v.end_rule}"),
                }
            )
    out.sort(key=lambda r: (r["VISITNUM"], r["ARMCD"]))
    return out


def visit_numbers(arms: list[list[tuple[str, str, int]]]) -> dict[tuple[str, str], int]:
    """VISITNUM per visit (occurrence id and name), chronological within every arm.

    A visit shared by arms at different times (NATARS surgery: day 15 in one arm, day 85 in the
    other) keeps one number; numbers follow each arm's own order, merged (Kahn's algorithm,
    earliest nominal day first). Arms that disagree on the order fall back to the earliest day.
    """
    first: dict[tuple[str, str], tuple[int, int]] = {}
    after: dict[tuple[str, str], set[tuple[str, str]]] = {}
    before_count: dict[tuple[str, str], int] = {}
    seen = 0
    for visits in arms:
        ordered = sorted(enumerate(visits), key=lambda iv: (iv[1][2], iv[0]))
        keys = [(v[0], v[1]) for _, v in ordered]
        for key, (_, v) in zip(keys, ordered, strict=True):
            if key not in first:
                first[key] = (v[2], seen)
                seen += 1
            else:
                first[key] = min(first[key], (v[2], first[key][1]))
            after.setdefault(key, set())
            before_count.setdefault(key, 0)
        for a, b in itertools.pairwise(keys):
            if a != b and b not in after[a]:
                after[a].add(b)
                before_count[b] += 1
    order: list[tuple[str, str]] = []
    ready = [k for k, n in before_count.items() if n == 0]
    while ready:
        ready.sort(key=first.__getitem__)
        key = ready.pop(0)
        order.append(key)
        for nxt in after[key]:
            before_count[nxt] -= 1
            if before_count[nxt] == 0:
                ready.append(nxt)
    if len(order) < len(first):  # the arms disagree on the order: earliest day first
        order = sorted(first, key=first.__getitem__)
    return {key: n for n, key in enumerate(order, 1)}
