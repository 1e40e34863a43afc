"""Can an arm's windows and hard constraints all be met at once? A simple temporal network.

Every occurrence has a start and an end, days from allocation; each window, span, order between
cycles and hard constraint is a bound on the difference of two of them (``b - a <= w``). Such a
set is consistent exactly when its distance graph has no negative cycle (Dechter, Meiri and
Pearl, "Temporal constraint networks", 1991), which Bellman-Ford finds. When it is not, a
deletion filter keeps only the bounds needed for the conflict: dropping any one of those that
remain makes the rest consistent, so the trial team reads the few rules that clash, in the
protocol's own terms.

The network relaxes what the calendar decides: a month is 28 to 31 days, a window of N working
days spans N to 7N/5 + 11 calendar days (weekends and the longest holiday block), and
``not_between`` (a gap to avoid, not a bound) is left out. A conflict found in the relaxed network
is therefore a conflict on every calendar; the site calendars' own worst seasons are tried by
``protocol.stress``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sarcoma_sched.protocol.occurrences import Occurrence, occurrences
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Constraint, EventRef

__all__ = ["Bound", "conflicts"]

# The most calendar days a run of working days can lose to one holiday block beyond weekends
# (Spring Festival: up to 9 days off with the make-up Saturdays around it).
_HOLIDAY_SLACK = 11
_MONTH_DAYS = (28, 31)


@dataclass(frozen=True)
class Bound:
    """One rule of the protocol as bounds on ``to - from`` (days); points are 0 for allocation,
    ``2i + 1`` for occurrence i's first day and ``2i + 2`` for its last."""

    rule: str  # in the protocol's terms, for the trial team
    from_: int
    to: int
    low: float  # -inf when unbounded below
    high: float  # inf when unbounded above


def conflicts(arm: Arm) -> list[Bound]:
    """The bounds of an irreducible conflicting set, or [] when every rule can hold together."""
    occs = occurrences(arm)
    bounds = _bounds(arm, occs)
    nodes = 2 * len(occs) + 1
    if _consistent(bounds, nodes):
        return []
    needed = list(bounds)
    for bound in bounds:
        rest = [b for b in needed if b is not bound]
        if not _consistent(rest, nodes):
            needed = rest
    return needed


def _start(i: int) -> int:
    return 2 * i + 1


def _end(i: int) -> int:
    return 2 * i + 2


def _calendar_days(working: int) -> int:
    return math.ceil(working * 7 / 5) + _HOLIDAY_SLACK


def _bounds(arm: Arm, occs: Sequence[Occurrence]) -> list[Bound]:
    found: list[Bound] = []
    last_of: dict[str, int] = {}
    for i, o in enumerate(occs):
        if o.anchor.index is None:
            anchor, anchor_name = 0, ALLOCATION
        else:
            j = o.anchor.index
            anchor = _start(j) if o.anchor.start else _end(j)
            anchor_name = f"{'start' if o.anchor.start else 'end'} of {occs[j].id}"
        low, high = float(o.earliest), float(o.latest)
        if o.window_working:
            low, high = float(o.earliest), float(_calendar_days(o.latest))
            unit = "working days"
        else:
            unit = "days"
        months = ""
        if o.months:
            low += _MONTH_DAYS[0] * o.months
            high += _MONTH_DAYS[1] * o.months
            months = f" {o.months} months"
        found.append(
            Bound(
                f"{o.id} window: {anchor_name}{months} {o.earliest:+d} … {o.latest:+d} {unit}",
                anchor,
                _start(i),
                low,
                high,
            )
        )
        length = o.span.days - 1
        if o.span.day_counting == "working_days":
            span_high = float(_calendar_days(length)) if length else 0.0
        else:
            span_high = float(length)
        found.append(
            Bound(f"{o.id} lasts {o.span.days} days", _start(i), _end(i), length, span_high)
        )
        if o.key in last_of:
            before = occs[last_of[o.key]].id
            found.append(
                Bound(
                    f"{o.id} starts after {before} ends",
                    _end(last_of[o.key]),
                    _start(i),
                    1,
                    math.inf,
                )
            )
        last_of[o.key] = i
    places: dict[str, list[int]] = {}
    for i, o in enumerate(occs):
        places.setdefault(o.key, []).append(i)
    for c in arm.constraints:
        bound = _constraint(c, places)
        if bound is not None:
            found.append(bound)
    return found


def _point(ref: EventRef, places: dict[str, list[int]]) -> tuple[int, str] | None:
    if ref.event == ALLOCATION:
        return 0, ALLOCATION
    if ref.event not in places:
        return None
    many = len(places[ref.event]) > 1
    i = places[ref.event][0 if ref.occurrence == "first" else -1]
    which = f"{ref.occurrence} " if many else ""
    point = _start(i) if ref.point == "start" else _end(i)
    return point, f"{ref.point} of {which}{ref.event}"


def _constraint(c: Constraint, places: dict[str, list[int]]) -> Bound | None:
    start, finish = _point(c.from_, places), _point(c.to, places)
    if start is None or finish is None or (c.min_days is None and c.max_days is None):
        return None
    parts = []
    if c.min_days is not None:
        parts.append(f"at least {c.min_days}")
    if c.max_days is not None:
        parts.append(f"at most {c.max_days}")
    rule = f"{c.id}: {finish[1]} {' and '.join(parts)} days after {start[1]}"
    low = float(c.min_days) if c.min_days is not None else -math.inf
    high = float(c.max_days) if c.max_days is not None else math.inf
    return Bound(rule, start[0], finish[0], low, high)


def _consistent(bounds: Sequence[Bound], nodes: int) -> bool:
    """No negative cycle in the distance graph: ``to - from <= high`` is an edge from -> to of
    weight high, ``to - from >= low`` one to -> from of weight -low. Every point starts at
    distance 0 (a virtual source joined to all), so one pass of Bellman-Ford covers the graph."""
    edges = []
    for b in bounds:
        if b.high != math.inf:
            edges.append((b.from_, b.to, b.high))
        if b.low != -math.inf:
            edges.append((b.to, b.from_, -b.low))
    distance = [0.0] * nodes
    for _ in range(nodes):
        changed = False
        for u, v, w in edges:
            if distance[u] + w < distance[v]:
                distance[v] = distance[u] + w
                changed = True
        if not changed:
            return True
    return False
