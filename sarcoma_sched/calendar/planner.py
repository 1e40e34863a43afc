"""The planner: protocol + arm + allocation date + what happened + site calendar → the plan.

A pure function. Events are placed in anchor order; each occurrence is timed from the *actual*
date of its anchor when that is known (so delays chain) and from the planned date otherwise.
Events anchored to allocation (NATARS follow-up) never drift with treatment delays.

For each occurrence the planner walks the days of its window in the order its shift rule prefers
(forward from the target, back from it, or nearest first) and takes the first day that meets the
day rule, lays out the event's span, and satisfies every hard constraint whose other end is
already placed. When none does, the event keeps its shifted target and is flagged unsatisfiable
with the reason: a plan never silently breaks a constraint.

Everything about an arm that does not depend on dates is worked out once per arm object into a
list of steps: its occurrences (``protocol.occurrences``, the expansion SDTM and ``protocol show``
read too: their order, ids and labels, which occurrence each is timed from) and which constraints
can be checked when each is placed; a plan then only does the date work. Which occurrences exist
and in what order never depends on dates or history, so an occurrence's place in that order
identifies it for good.
"""

from __future__ import annotations

import datetime as dt
import threading
from calendar import monthrange
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from sarcoma_sched.calendar.capacity import Capacity
from sarcoma_sched.calendar.checker import check_events, gap_holds, gap_problem
from sarcoma_sched.calendar.deviations import find_deviations
from sarcoma_sched.calendar.plan import (
    Actual,
    Change,
    Flag,
    Pin,
    Plan,
    PlannedEvent,
    Violation,
    _planned_event,
)
from sarcoma_sched.calendar.workdays import SiteCalendar
from sarcoma_sched.notices import estimated_holidays
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import occurrences as arm_occurrences
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Constraint, EventRef
from sarcoma_sched.vocabulary import (
    BOOKED_STATUSES,
    NOT_HAPPENED,
    EventKind,
    EventStatus,
    FlagCode,
    ViolationRule,
)

__all__ = ["diff_plans", "plan_arm"]

ONE_DAY = dt.timedelta(days=1)
# Module globals, not attribute lookups on the enum: these are compared once per event per plan.
_PLANNED = EventStatus.PLANNED
_DONE = EventStatus.DONE


def plan_arm(
    protocol: Protocol,
    arm_id: str,
    allocation_date: dt.date,
    calendar: SiteCalendar,
    actuals: Mapping[str, Actual] | None = None,
    pins: Mapping[str, Pin] | None = None,
    capacity: Capacity | None = None,
) -> Plan:
    """``capacity`` (the site's limits and everyone else's bookings) makes each event that uses
    a limited resource take the first day, in its shift rule's order of preference, where the
    resource has room on every day it needs; it is updated with this patient's bookings."""
    arm = protocol.arm(arm_id)
    actuals = actuals or {}
    pins = pins or {}
    planner = _Planner(
        _steps_of(arm),
        allocation_date,
        calendar,
        actuals,
        pins,
        capacity,
        trial_end=protocol.study.end_date,
    )
    events = planner.run()
    if any(f.code in _AVOIDABLE for e in events for f in e.flags):
        events = planner.repair(events)
    if actuals or pins:
        unknown = sorted((set(actuals) | set(pins)) - {e.id for e in events})
        if unknown:
            from sarcoma_sched.errors import NotFound

            raise NotFound(f"arm {arm_id} has no event {unknown[0]!r} to record")
    violations = check_events(arm, events, allocation_date, calendar)
    if violations:
        events = _flag_unflagged(events, violations)
    warnings = _holiday_warnings(events, calendar)
    return Plan(
        protocol_id=protocol.id,
        protocol_hash=protocol.content_hash,
        arm_id=arm.id,
        allocation_date=allocation_date,
        time_zone=calendar.time_zone,
        events=tuple(events),
        warnings=tuple(warnings),
        violations=tuple(violations),
        deviations=tuple(find_deviations(arm, events, violations, calendar)),
    )


def diff_plans(old: Plan, new: Plan) -> list[Change]:
    """What moved between two plans of the same patient, in plan order."""
    changes = []
    for e in new.events:
        if e.id in old and old[e.id].days != e.days:
            changes.append(Change(e.id, old[e.id].days, e.days))
    return changes


def _holiday_warnings(events: list[PlannedEvent], calendar: SiteCalendar) -> list[str]:
    notice = estimated_holidays(events, calendar)
    return [] if notice is None else [notice.message]


# -- the arm, worked out once -------------------------------------------------------------------

# Where a constraint's end is read from when an occurrence is placed: the occurrence itself (its
# candidate days), allocation, or an occurrence placed before it (by its place in the order).
_SELF = -1
_AT_ALLOCATION = -2
_End = tuple[int, bool]  # (where, start rather than end day)


@dataclass(frozen=True, slots=True)
class _Step:
    """One occurrence to place and everything about it that does not depend on dates."""

    occurrence_id: str
    kind: str
    # The occurrence it is timed from (its place in the order), or None for allocation; and
    # whether from that occurrence's first day (else its last).
    anchor: int | None
    anchor_start: bool
    # Target, earliest, latest from the anchor, or for a follow-up visit from the day
    # ``month`` calendar months after it.
    offsets: tuple[dt.timedelta, dt.timedelta, dt.timedelta]
    month: int
    # A window counted in the site's working days after the anchor (RT fraction 1: the 5th …
    # 10th), as (earliest, latest) counts; None for a window in calendar days (``offsets``).
    working_window: tuple[int, int] | None
    working: bool
    shift: str
    one_day: bool
    span_working: bool
    span_offsets: tuple[dt.timedelta, ...]  # from the first day to each day of the span
    # The hard constraints naming this occurrence whose other end is known by the time it is
    # placed, each with where to read both ends.
    checks: tuple[tuple[Constraint, _End, _End], ...]
    # The occurrence of the same key before it (the cycle before), which it must start after:
    # the window keeps a planned day there, but a coordinator's pin is checked against it.
    previous: int | None
    # Look-ahead: the windows, from this occurrence's first day, of its working-day components
    # (a cycle's pre-cycle labs), which must each have a working day for a day to be chosen.
    components: tuple[tuple[dt.timedelta, dt.timedelta], ...]
    # An inpatient stay (a multi-day infusion counted in calendar days): every day of it is a
    # treatment day, so none may be a site closure, and it should not run into a holiday block.
    stay: bool
    # Every field of its PlannedEvent in order, those known before dates are chosen filled in
    # as for a plain planned occurrence: each plan copies it and sets the rest.
    fields: dict[str, object]


_STEPS: dict[int, tuple[Arm, tuple[_Step, ...]]] = {}
_STEPS_LIMIT = 64
_STEPS_LOCK = threading.Lock()


def _steps_of(arm: Arm) -> tuple[_Step, ...]:
    """The arm's steps, worked out once per arm object.

    Keyed by the object's id but only ever returned for that very object: the entry holds the
    arm, so no other object can take over its id while the entry exists. A protocol is frozen,
    so an arm's steps cannot go stale; a protocol read again is a new object, worked out again.
    """
    entry = _STEPS.get(id(arm))
    if entry is not None and entry[0] is arm:
        return entry[1]
    steps = _compile(arm)
    with _STEPS_LOCK:
        if len(_STEPS) >= _STEPS_LIMIT:
            _STEPS.pop(next(iter(_STEPS)))
        _STEPS[id(arm)] = (arm, steps)
    return steps


def _compile(arm: Arm) -> tuple[_Step, ...]:
    occurrences = arm_occurrences(arm)
    # A constraint names the first or last occurrence of a key: its first and last cycle, or
    # a series' first and last visit (numbered in order, as the checker reads them).
    counts = Counter(o.key for o in occurrences)
    numbers: Counter[str] = Counter()
    constraints_of: dict[str, list[Constraint]] = {}
    for c in arm.constraints:
        for key in {c.from_.event, c.to.event} - {ALLOCATION}:
            constraints_of.setdefault(key, []).append(c)
    placed: dict[str, list[int]] = {}  # key → places of its occurrences so far

    def end(ref: EventRef, key: str, n: int, count: int) -> _End | None:
        if ref.event == key:
            return (_SELF, ref.point == "start") if _is_occurrence(ref, n, count) else None
        if ref.event == ALLOCATION:
            return _AT_ALLOCATION, True
        places = placed.get(ref.event, [])
        if len(places) != counts.get(ref.event, 1):
            return None  # the other end is not placed yet: checked when it is
        return (places[0] if ref.occurrence == "first" else places[-1]), ref.point == "start"

    def checks(key: str, n: int) -> tuple[tuple[Constraint, _End, _End], ...]:
        count = counts.get(key, 1)
        found = []
        for c in constraints_of.get(key, []):
            if not any(r.event == key and _is_occurrence(r, n, count) for r in (c.from_, c.to)):
                continue
            start, finish = end(c.from_, key, n, count), end(c.to, key, n, count)
            if start is not None and finish is not None:
                found.append((c, start, finish))
        return tuple(found)

    steps: list[_Step] = []
    for o in occurrences:
        span = o.span
        working = o.day_rule == "working_day"
        numbers[o.key] += 1
        steps.append(
            _Step(
                occurrence_id=o.id,
                kind=o.kind,
                anchor=o.anchor.index,
                anchor_start=o.anchor.start,
                offsets=_deltas((o.offset, o.earliest, o.latest)),
                month=o.months,
                working_window=(o.earliest, o.latest) if o.window_working else None,
                working=working,
                shift=o.shift,
                one_day=span.days == 1,
                span_working=span.day_counting == "working_days",
                span_offsets=tuple(dt.timedelta(days=i) for i in range(span.days)),
                checks=checks(o.key, numbers[o.key]),
                previous=placed[o.key][-1] if o.key in placed else None,
                components=(),
                stay=o.kind == EventKind.INFUSION
                and span.days > 1
                and span.day_counting != "working_days",
                fields={
                    "id": o.id,
                    "key": o.key,
                    "kind": o.kind,
                    "label": o.calendar_label,
                    "cycle": o.cycle,
                    "anchor": None,
                    "anchor_date": None,
                    "target": None,
                    "earliest": None,
                    "latest": None,
                    "days": None,
                    "show_as": span.show_as,
                    "working_days_only": working,
                    "consecutive_working_days": span.day_counting == "working_days",
                    "time": o.time,
                    "status": _PLANNED,
                    "reason": "",
                    "flags": (),
                    "pinned": False,
                },
            )
        )
        placed.setdefault(o.key, []).append(len(steps) - 1)
    for o in occurrences:
        # A component is timed from its cycle's first day; only a working-day one can fail.
        if o.event != o.key and o.day_rule == "working_day" and o.anchor.index is not None:
            parent = steps[o.anchor.index]
            window = (dt.timedelta(days=o.earliest), dt.timedelta(days=o.latest))
            steps[o.anchor.index] = replace(parent, components=(*parent.components, window))
    return tuple(steps)


def _deltas(offsets: tuple[int, int, int]) -> tuple[dt.timedelta, dt.timedelta, dt.timedelta]:
    offset, earliest, latest = offsets
    return dt.timedelta(days=offset), dt.timedelta(days=earliest), dt.timedelta(days=latest)


# -- one plan -----------------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        steps: tuple[_Step, ...],
        allocation: dt.date,
        calendar: SiteCalendar,
        actuals: Mapping[str, Actual],
        pins: Mapping[str, Pin],
        capacity: Capacity | None = None,
        trial_end: dt.date | None = None,
    ) -> None:
        self.steps = steps
        self.trial_end = trial_end
        self.allocation = allocation
        self.calendar = calendar
        self.actuals = actuals
        self.pins = pins
        self.capacity = capacity
        self.placed: list[PlannedEvent] = []
        # Start days the repair chose for planned occurrences, by place in the order; the
        # bookings before it began; how many more re-plans it may try.
        self.overrides: dict[int, dt.date] = {}
        # Everyone else's bookings, before this plan books its own: each re-plan starts there.
        self._booked = Counter(capacity.booked) if capacity is not None else None
        self._budget = 0

    def repair(self, events: list[PlannedEvent]) -> list[PlannedEvent]:
        """The best plan by ``_score`` over the days of every movable occurrence's window,
        found by branch and bound; the greedy plan when it stays best.

        The greedy walk places each occurrence on its best day given those before it; a cycle
        whose every day runs into Spring Festival is often clear of it when the cycle before
        starts a day or two earlier, or when the one after it starts later. So the occurrences
        others are timed or constrained from (each cycle's day 1, surgery) are tried on every
        day of their windows, in plan order, each in its shift rule's order of preference, the
        plan re-planned from the one moved. Two facts make the search exact and short: an
        occurrence's days depend only on the occurrences before it, so the flags and ranks of
        the plan up to the next movable one are final once it is placed (a bound: a branch
        that already has more flags than the best plan, or as many and worse ranks, is cut);
        and the score ranks an earlier occurrence's place before any later one's, so the first
        flag-free plan met in this order is the best there is and ends the search. Recorded,
        pinned and follow-up occurrences are never moved; a budget of re-plans bounds what a
        plan no move can mend may cost (it keeps the best found)."""
        best = (_score(self.steps, events), self.overrides, events)
        movable = [
            j
            for j in self._sources()
            # A missed or skipped occurrence keeps its planned days as the clock (the events
            # timed from it go on from them): those days are the planner's to choose, as they
            # were before it was recorded, so the re-plan keeps them where they were.
            if events[j].status != _DONE and not events[j].pinned and not self.steps[j].month
        ]
        if movable and best[0][:2] != (0, 0):
            self._budget = _REPAIR_BUDGET
            best = self._branch(events, movable, 0, {}, best)
            # The capacity the caller passed holds the bookings of the plan returned, not
            # those of the last plan tried.
            if self._booked is not None:
                best = (best[0], best[1], self._rerun(best[2], 0, best[1]))
        self.overrides = best[1]
        return best[2]

    def _branch(
        self,
        events: list[PlannedEvent],
        movable: list[int],
        level: int,
        overrides: dict[int, dt.date],
        best: tuple[Score, dict[int, dt.date], list[PlannedEvent]],
    ) -> tuple[Score, dict[int, dt.date], list[PlannedEvent]]:
        j = movable[level]
        last = level + 1 == len(movable)
        final = len(events) if last else movable[level + 1]  # events fixed once j is placed
        e = events[j]
        days = _by_preference(e, self.steps[j].shift)
        if e.start not in days:
            # Where the search put it (a fallback past the window): ranked after the window.
            days.append(e.start)
        # The plan before j is the same whatever j's day, and j's rank is its day's place in
        # ``days``: a day ranked too far down to beat the best is cut before it is planned,
        # and so is every day after it.
        unsafe, soft, ranks = _score(self.steps[:j], events[:j])
        for rank, day in enumerate(days):
            if self._budget <= 0 or not _may_beat((unsafe, soft, (*ranks, rank)), best[0]):
                break
            if day == e.start:
                # Where the search puts it already: no re-plan needed, and nothing to force
                # (the search may have settled for a day forcing refuses, one past the window
                # or short of the look-ahead when no day had it).
                moved, trial = overrides, events
            else:
                moved = {**overrides, j: day}
                self._budget -= 1
                try:
                    trial = self._rerun(events, j, moved)
                except _Unsound:
                    continue  # not a sound day for it
            if last:
                score = _score(self.steps, trial)
                if score < best[0]:
                    best = (score, moved, trial)
            elif _may_beat(_score(self.steps[:final], trial[:final]), best[0]):
                best = self._branch(trial, movable, level + 1, moved, best)
            if best[0][:2] == (0, 0):
                break  # the first flag-free plan in this order is the best
        return best

    def _sources(self) -> list[int]:
        """The occurrences others are timed from or measure a hard constraint from, in plan
        order: the only ones whose day changes another's."""
        found: set[int] = set()
        for i, step in enumerate(self.steps):
            if step.anchor is not None:
                found.add(step.anchor)
            for _, from_, to in step.checks:
                found.update(place for place, _start in (from_, to) if 0 <= place != i)
        return sorted(found)

    def _rerun(
        self, events: list[PlannedEvent], start: int, overrides: dict[int, dt.date]
    ) -> list[PlannedEvent]:
        saved = self.overrides
        self.overrides = overrides
        booked = self._booked
        if booked is not None:
            assert self.capacity is not None
            # Capacity bookings are made as the plan goes: with limits, always from the start.
            self.capacity.booked = Counter(booked)
            start = 0
        self.placed = list(events[:start])
        try:
            return self.run(start)
        finally:
            self.overrides = saved

    def run(self, start: int = 0) -> list[PlannedEvent]:
        # One loop with everything in locals: this is the planner's inner loop, run for every
        # occurrence of every plan; the uncommon cases (history, pins, capacity, constraints,
        # a target on a closed day) go through the methods below.
        placed = self.placed
        allocation = self.allocation
        actuals, pins, capacity = self.actuals, self.pins, self.capacity
        overrides = self.overrides
        trial_end = self.trial_end
        is_working_day = self.calendar.is_working_day
        steps = self.steps
        for index in range(start, len(steps)):
            step = steps[index]
            if step.anchor is None:
                anchor_id, anchor_date = ALLOCATION, allocation
            else:
                # A missed or skipped anchor still has its planned days: the clock goes on
                # from them.
                a = placed[step.anchor]
                anchor_id, anchor_date = a.id, a.days[0] if step.anchor_start else a.days[-1]
            offsets = step.offsets
            base = _add_months(anchor_date, step.month) if step.month else anchor_date
            target = base + offsets[0]
            if step.working_window is None:
                earliest = base + offsets[1]
                latest = base + offsets[2]
            else:
                counted = self.calendar.working_day_after
                earliest = counted(base, step.working_window[0])
                latest = counted(base, step.working_window[1])
                target = min(max(target, earliest), latest)
            actual = actuals.get(step.occurrence_id) if actuals else None
            pin = pins.get(step.occurrence_id) if actual is None and pins else None
            forced = overrides.get(index) if overrides else None
            values = step.fields.copy()
            if (
                actual is None
                and pin is None
                and forced is None
                and capacity is None
                and not step.checks
                # A target inside the window is the first candidate of every shift rule.
                and earliest <= target <= latest
                and (not step.working or is_working_day(target))
                and (
                    not (step.components or step.stay)
                    or self._fits(step, self._span_days(target, step)) == _FITS
                )
            ):
                values["days"] = (target,) if step.one_day else self._span_days(target, step)
            else:
                days, flags = self._choose(step, target, earliest, latest, actual, pin, forced)
                values["days"], values["flags"] = days, flags
                if actual is not None:
                    values["status"], values["reason"] = actual.status, actual.reason
                elif pin is not None and not _released(flags):
                    values["reason"], values["pinned"] = pin.reason, True
            if trial_end is not None and values["days"][-1] > trial_end:  # type: ignore[index]
                self._after_end(values, trial_end)
            values["anchor"] = anchor_id
            values["anchor_date"] = anchor_date
            values["target"] = target
            values["earliest"] = earliest
            values["latest"] = latest
            placed.append(_planned_event(values))
        return placed

    @staticmethod
    def _after_end(values: dict[str, object], end: dt.date) -> None:
        # Planned events after the registered trial end stay planned (follow-up may be
        # extended) but say so, so nobody books a scan the sponsor has not agreed to pay for.
        if values["status"] != _PLANNED:
            return
        days: tuple[dt.date, ...] = values["days"]  # type: ignore[assignment]
        flag = _after_end_flag(values["id"], days[0], end)
        values["flags"] = (*values["flags"], flag)  # type: ignore[misc]

    def _choose(
        self,
        step: _Step,
        target: dt.date,
        earliest: dt.date,
        latest: dt.date,
        actual: Actual | None,
        pin: Pin | None,
        forced: dt.date | None = None,
    ) -> tuple[tuple[dt.date, ...], tuple[Flag, ...]]:
        """The days of an occurrence with history, a pin, limited capacity or constraints to
        meet, or a day the repair chose, booked in the site's capacity."""
        flags: tuple[Flag, ...] = ()
        if actual is not None and actual.status == _DONE:
            assert actual.date is not None
            days = actual.days or self._span_days(actual.date, step)
        elif pin is not None:
            days, flags = self._pinned(step, pin, target, earliest, latest)
        elif forced is not None:
            days = self._forced(step, forced, earliest, latest)
            if not days:
                raise _Unsound  # the repair tries the days the search would find apart
            flags = self._capacity_flags(step, days)
        else:
            days, flags = self._search(step, target, earliest, latest)
        status = actual.status if actual is not None else _PLANNED
        if self.capacity is not None and status in BOOKED_STATUSES:
            self.capacity.book(step.kind, days)
        return days, flags

    def _forced(
        self, step: _Step, day: dt.date, earliest: dt.date, latest: dt.date
    ) -> tuple[dt.date, ...]:
        """The days from a start the repair chose, when that start is still a sound one (in
        the window, a working day where required, every hard rule met, the look-ahead clear);
        empty otherwise."""
        if not earliest <= day <= latest or (
            step.working and not self.calendar.is_working_day(day)
        ):
            return ()
        days = self._span_days(day, step)
        if not self._sound(step, days):
            return ()
        if (step.components or step.stay) and self._fits(step, days) != _FITS:
            return ()
        return days

    def _span_days(self, start: dt.date, step: _Step) -> tuple[dt.date, ...]:
        if step.one_day:
            return (start,)
        if step.span_working:
            return self.calendar.working_days_from(start, len(step.span_offsets))
        return tuple([start + d for d in step.span_offsets])

    def _search(
        self, step: _Step, target: dt.date, earliest: dt.date, latest: dt.date
    ) -> tuple[tuple[dt.date, ...], tuple[Flag, ...]]:
        """The first day, in the shift rule's order, that meets every hard rule and, among
        those, best keeps the site's capacity and then the look-ahead (each component with a
        working day, a stay clear of holiday blocks); whole window searched before giving up."""
        working = step.working
        is_working_day = self.calendar.is_working_day
        extras = bool(step.components or step.stay)
        first_allowed: tuple[dt.date, ...] | None = None
        # The best hard-sound candidate so far: (no room, look-ahead rank), its days.
        best: tuple[tuple[int, int], tuple[dt.date, ...]] | None = None
        # Candidates a hard rule refused, in order: their reasons are written out only when no
        # day is found (the common case never pays for the words).
        refused: list[tuple[dt.date, ...]] = []
        # "At least N days after" an end already placed: days before it need no checking.
        bound = self._lower_bound(step) if step.checks else None
        for offset in _candidate_offsets(
            (target - earliest).days, (latest - target).days, step.shift
        ):
            day = target + offset
            if working and not is_working_day(day):
                continue
            if bound is not None and day < bound and first_allowed is not None:
                continue
            days = self._span_days(day, step)
            if first_allowed is None:
                first_allowed = days
            if not self._sound(step, days):
                refused.append(days)
                continue
            rank = self._fits(step, days) if extras else _FITS
            room = self.capacity is None or self.capacity.fits(step.kind, days)
            key = (0 if room else 1, rank)
            if key == (0, _FITS):
                return days, ()
            if best is None or key < best[0]:
                best = (key, days)
        if best is not None:
            (full, rank), days = best
            flags: tuple[Flag, ...] = ()
            if rank == _IN_BLOCK:
                flags = (self._block_flag(step, days),)
            if full:
                flags += self._capacity_flags(step, days, window=(earliest, latest))
            return days, flags
        if first_allowed is None:
            # No working day at all in the window (a long closure): the target is kept, and
            # flagged, as the README says; a coordinator decides (move it, record a deviation).
            days = self._span_days(target, step)
            messages = [
                f"no working day between {earliest} and {latest} (window of "
                f"{step.occurrence_id}); kept the target {target}",
                *(t for _, t in self._hard_problems(step, days)),
            ]
            # The day kept may be fully booked too: say that as well, so no booking over
            # capacity goes unflagged.
            flags = (Flag(FlagCode.NO_VALID_DAY, "; ".join(messages)),)
            return days, flags + self._capacity_flags(step, days)
        failures: dict[str, str] = {}
        for days in refused:
            for cid, text in self._hard_problems(step, days):
                failures.setdefault(cid, text)
        why = "; ".join(failures.values())
        # A follow-up visit stays on its clock (assessment times equal in every arm): kept in
        # its window, flagged, never moved past it.
        beyond = None if step.month else self._beyond_window(step, latest)
        if beyond is not None:
            # The objective puts every hard constraint before every window: a scan that would
            # fall in the days after surgery, or a course the washout forbids, goes to the
            # first day after the window that is safe, flagged for a coordinator's decision.
            message = (
                f"no day in the window {earliest} … {latest} satisfies every hard constraint "
                f"({why}); placed on {beyond[0]}, {(beyond[0] - latest).days} day(s) after the "
                "window, the first day that does: a coordinator decides"
            )
            flags = (Flag(FlagCode.UNSATISFIABLE, message),)
            return beyond, flags + self._capacity_flags(step, beyond)
        message = (
            f"no day in the window {earliest} … {latest} satisfies every hard constraint; "
            f"kept {first_allowed[0]}: {why}"
        )
        flags = (Flag(FlagCode.UNSATISFIABLE, message),)
        return first_allowed, flags + self._capacity_flags(step, first_allowed)

    def _beyond_window(self, step: _Step, latest: dt.date) -> tuple[dt.date, ...] | None:
        """The first start after the window, within ``_BEYOND`` days, that meets every hard
        rule (None: none does)."""
        day = latest
        for _ in range(_BEYOND):
            day += ONE_DAY
            if step.working and not self.calendar.is_working_day(day):
                continue
            days = self._span_days(day, step)
            if not self._hard_problems(step, days):
                return days
        return None

    def _lower_bound(self, step: _Step) -> dt.date | None:
        """The first start day the "at least N days after" constraints on this occurrence's
        first day allow, from the ends already placed (None: no such bound)."""
        bound = None
        for c, from_, to in step.checks:
            if c.min_days is None or to != (_SELF, True) or from_[0] == _SELF:
                continue
            other = self._point(from_, ())
            if other is not None:
                day = other + dt.timedelta(days=c.min_days)
                bound = day if bound is None or day > bound else bound
        return bound

    def _fits(self, step: _Step, days: tuple[dt.date, ...]) -> int:
        """The look-ahead rank of a day: ``_FITS``; ``_IN_BLOCK`` (a stay runs into a holiday
        block); ``_NO_COMPONENT`` (a component, e.g. the pre-cycle labs, would have no
        working day in its window)."""
        is_working_day = self.calendar.is_working_day
        first = days[0]
        for earliest, latest in step.components:
            day, last = first + earliest, first + latest
            while day <= last and not is_working_day(day):
                day += ONE_DAY
            if day > last:
                return _NO_COMPONENT
        if step.stay:
            rank = _FITS
            # A site whose ward runs through holidays relaxes the block rule (``site set``).
            avoid = not self.calendar.inpatient_over_holidays
            for day in days[1:]:
                if self.calendar.is_closed(day):
                    return _STAY_CLOSED  # a hard problem: the search says which
                if avoid and rank == _FITS and self.calendar.holiday_block(day) is not None:
                    rank = _IN_BLOCK
            return rank
        return _FITS

    def _block_flag(self, step: _Step, days: tuple[dt.date, ...]) -> Flag:
        block = next(b for d in days if (b := self.calendar.holiday_block(d)) is not None)
        return Flag(
            FlagCode.HOLIDAY_BLOCK,
            f"the stay {days[0]} … {days[-1]} of {step.occurrence_id} runs into the holiday "
            f"block {block[0]} … {block[1]}: no day in its window avoids one",
        )

    def _sound(self, step: _Step, days: tuple[dt.date, ...]) -> bool:
        """No hard problem (``_hard_problems`` is empty), without writing any reason out."""
        point = self._point
        for c, from_, to in step.checks:
            start, end = point(from_, days), point(to, days)
            if start is not None and end is not None and not gap_holds(c, (end - start).days):
                return False
        if step.stay:
            is_closed = self.calendar.is_closed
            return not any(is_closed(d) for d in days[1:])
        return True

    def _hard_problems(self, step: _Step, days: tuple[dt.date, ...]) -> list[tuple[str, str]]:
        """The declared constraints it breaks, and for a stay a closure on any of its days."""
        problems = self._constraint_problems(step, days)
        if step.stay:
            closed = [d for d in days[1:] if self.calendar.is_closed(d)]
            if closed:
                problems.append(
                    (
                        ViolationRule.SPAN,
                        f"{step.occurrence_id}: the site is closed on {closed[0]}, day "
                        f"{days.index(closed[0]) + 1} of the stay",
                    )
                )
        return problems

    def _capacity_flags(
        self,
        step: _Step,
        days: tuple[dt.date, ...],
        window: tuple[dt.date, dt.date] | None = None,
    ) -> tuple[Flag, ...]:
        """``over_capacity`` with the day the event would first fit, for the coordinator."""
        kind = step.kind
        if self.capacity is None or self.capacity.fits(kind, days):
            return ()
        full = ", ".join(f"{r} {slot}" for r, slot in self.capacity.full(kind, days))
        fits = self._first_fit(step, days[0] + ONE_DAY)
        where = f"no day in the window {window[0]} … {window[1]} has room" if window else ""
        message = "; ".join(
            part
            for part in (
                f"{step.occurrence_id} on {days[0]} is over capacity ({full} fully booked)",
                where,
                f"first day with room: {fits}" if fits else "no room in the next 180 days",
            )
            if part
        )
        return (Flag(FlagCode.OVER_CAPACITY, message),)

    def _first_fit(self, step: _Step, start: dt.date) -> dt.date | None:
        assert self.capacity is not None
        for i in range(180):
            day = start + ONE_DAY * i
            if step.working and not self.calendar.is_working_day(day):
                continue
            if self.capacity.fits(step.kind, self._span_days(day, step)):
                return day
        return None

    def _pinned(
        self, step: _Step, pin: Pin, target: dt.date, earliest: dt.date, latest: dt.date
    ) -> tuple[tuple[dt.date, ...], tuple[Flag, ...]]:
        """A coordinator's date, unless a re-plan made it break a hard constraint (a delay
        upstream, a closure recorded since): then, by default, the pin is released and the
        event planned as if never pinned (the planner's own valid day), said so; with
        ``pin.keep``, or when no day in the window is valid either, the date stands, flagged
        (calendars show it TENTATIVE)."""
        days = self._span_days(pin.date, step)
        problems = self._pin_problems(step, days)
        if not problems:
            return days, self._capacity_flags(step, days)
        if not pin.keep:
            # Released, the event is planned as if it had never been pinned: where the next
            # re-plan would put it too, so it does not move a second time unasked.
            moved, flags = self._search(step, target, earliest, latest)
            if not any(f.code == FlagCode.UNSATISFIABLE for f in flags):
                message = (
                    f"{step.occurrence_id} was rescheduled to {pin.date}, which now breaks: "
                    + "; ".join(problems)
                    + f"; the pin is released and it moves to {moved[0]}, the day the planner "
                    "chooses"
                )
                return moved, (Flag(FlagCode.PIN_RELEASED, message), *flags)
        why = "its pin policy is keep" if pin.keep else "no day in its window is valid either"
        message = (
            f"{step.occurrence_id} stays on {pin.date} ({why}), which breaks: "
            + "; ".join(problems)
            + "; reschedule it"
        )
        kept = Flag(FlagCode.PIN_BREAKS_CONSTRAINT, message)
        return days, (kept, *self._capacity_flags(step, days))

    def _pin_problems(self, step: _Step, days: tuple[dt.date, ...]) -> list[str]:
        problems = [text for _, text in self._hard_problems(step, days)]
        if step.previous is not None:
            before = self.placed[step.previous]
            if days[0] <= before.days[-1] and before.status not in NOT_HAPPENED:
                problems.append(f"it starts {days[0]}, not after {before.id} ends {before.end}")
        # Only the first day can fall on a closed day: a working-day span is laid out from it
        # over working days.
        if step.working and not self.calendar.is_working_day(days[0]):
            why = self.calendar.why_not_working(days[0])
            problems.append(f"{days[0]} is not a working day at the site ({why})")
        return problems

    def _shifted(self, day: dt.date, shift: str) -> dt.date:
        if shift == "backward":
            return self.calendar.previous_working_day(day)
        if shift == "nearest":
            after = self.calendar.next_working_day(day)
            before = self.calendar.previous_working_day(day)
            return before if (day - before) <= (after - day) else after
        return self.calendar.next_working_day(day)

    def _constraint_problems(self, step: _Step, days: tuple[dt.date, ...]) -> list[tuple[str, str]]:
        problems = []
        for c, from_, to in step.checks:
            start, end = self._point(from_, days), self._point(to, days)
            if start is None or end is None:
                continue  # a missed or skipped occurrence has no date to measure from
            problem = gap_problem(c, start, end)
            if problem is not None:
                problems.append((c.id, problem))
        return problems

    def _point(self, where: _End, days: tuple[dt.date, ...]) -> dt.date | None:
        place, start = where
        if place == _SELF:
            return days[0] if start else days[-1]
        if place == _AT_ALLOCATION:
            return self.allocation
        e = self.placed[place]
        if e.status in NOT_HAPPENED:
            return None
        return e.days[0] if start else e.days[-1]


def _flag_unflagged(events: list[PlannedEvent], violations: list[Violation]) -> list[PlannedEvent]:
    """The safety net under the search: a broken rule that names a planned event none of whose
    events is flagged gets a flag on its planned events, so no date that breaks a hard rule is
    ever shown as sound (CONFIRMED). The search prevents nearly all of these; what it cannot see
    is history, e.g. a course recorded so late that the next one, fixed to its cycle day,
    overlaps it. A pin outside its window is a recorded deviation, not a broken rule."""
    index = {e.id: i for i, e in enumerate(events)}
    for v in violations:
        involved = [events[index[i]] for i in v.events if i in index]
        if any(e.unsatisfiable for e in involved):
            continue
        for e in involved:
            if e.status != _PLANNED or (v.rule == ViolationRule.WINDOW and e.pinned):
                continue
            flag = Flag(FlagCode.UNSATISFIABLE, f"{v.message}; the date needs a look")
            events[index[e.id]] = replace(e, flags=(*e.flags, flag))
    return events


# What the repair tries to clear, and how it ranks plans (``_score``): flags a move of an
# upstream occurrence inside its window can clear, a pin given up or broken among them.
_AVOIDABLE = frozenset(
    {
        FlagCode.UNSATISFIABLE,
        FlagCode.NO_VALID_DAY,
        FlagCode.HOLIDAY_BLOCK,
        FlagCode.OVER_CAPACITY,
        FlagCode.PIN_BREAKS_CONSTRAINT,
        FlagCode.PIN_RELEASED,
    }
)
_SOFT = frozenset({FlagCode.HOLIDAY_BLOCK})  # every hard rule met: a stay into a holiday block
# A coordinator's date given up weighs more than every other flag a plan can have together
# (a plan has a few dozen occurrences): the repair keeps a pin the walk gave up when a move
# upstream inside its window lets it stand, and never gives one up to clear its own flags.
_RELEASED = 1000
_REPAIR_BUDGET = 1500  # re-plans one plan's repair may try


Score = tuple[int, int, tuple[int, ...]]


def _score(steps: tuple[_Step, ...], events: list[PlannedEvent]) -> Score:
    """How good a plan is, smaller better: unsafe flags, holiday-block flags, then how far each
    planned occurrence is from its target, in plan order (an earlier occurrence's day matters
    more than any later one's), measured as the place of its day in its shift rule's order of
    preference — the walk a nurse does from the target."""
    unsafe = soft = 0
    ranks = []
    for step, e in zip(steps, events, strict=True):
        for f in e.flags:
            if f.code in _SOFT:
                soft += 1
            elif f.code == FlagCode.PIN_RELEASED:
                unsafe += _RELEASED
            elif f.code in _AVOIDABLE:
                unsafe += 1
        if e.status != _DONE and not e.pinned:  # a missed day is the clock: it counts
            ranks.append(_preference_rank(e, step.shift))
    return unsafe, soft, tuple(ranks)


class _Unsound(Exception):
    """A day the repair forced on an occurrence breaks a hard rule or the look-ahead: the plan
    is abandoned at once rather than completed (its tail would be thrown away)."""


def _may_beat(part: Score, best: Score) -> bool:
    """Whether a plan whose first occurrences score ``part`` can still score below ``best``:
    flags only add up as the plan goes on, and ranks compare in plan order."""
    if part[:2] != best[:2]:
        return part[:2] < best[:2]
    return part[2] <= best[2][: len(part[2])]


def _preference_rank(e: PlannedEvent, shift: str) -> int:
    before, after = (e.target - e.earliest).days, (e.latest - e.target).days
    rank = _preference_ranks(before, after, shift).get((e.days[0] - e.target).days)
    # A day outside the window (kept, flagged) comes after every day inside it.
    return rank if rank is not None else before + after + 1 + abs((e.days[0] - e.target).days)


@lru_cache(maxsize=4096)
def _preference_ranks(before: int, after: int, shift: str) -> dict[int, int]:
    return {off.days: i for i, off in enumerate(_candidate_offsets(before, after, shift))}


def _by_preference(e: PlannedEvent, shift: str) -> list[dt.date]:
    """The window's days in the shift rule's order from the target."""
    before, after = (e.target - e.earliest).days, (e.latest - e.target).days
    return [e.target + off for off in _candidate_offsets(before, after, shift)]


# How far past its window an occurrence is searched for a day that meets every hard rule.
_BEYOND = 60

# Look-ahead ranks of a candidate day (``_Planner._fits``), best first.
_FITS = 0
_IN_BLOCK = 1
_NO_COMPONENT = 2
_STAY_CLOSED = 3  # never ranked: _hard_problems refuses the day first


def _released(flags: tuple[Flag, ...]) -> bool:
    return any(f.code == FlagCode.PIN_RELEASED for f in flags)


@lru_cache(maxsize=65536)
def _after_end_flag(occurrence_id: str, day: dt.date, end: dt.date) -> Flag:
    # A follow-up of five years puts most visits of every plan after a trial end: one flag per
    # visit and day, shared (flags are frozen).
    return Flag(
        FlagCode.AFTER_TRIAL_END,
        f"{occurrence_id} on {day} is after the registered trial end ({end})",
    )


@lru_cache(maxsize=65536)
def _add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    if day.day <= 28:
        return day.replace(year=year, month=month)
    return dt.date(year, month, min(day.day, monthrange(year, month)[1]))


def _is_occurrence(ref: EventRef, n: int, count: int) -> bool:
    return n == 1 if ref.occurrence == "first" else n == count


@lru_cache(maxsize=4096)
def _candidate_offsets(before: int, after: int, shift: str) -> tuple[dt.timedelta, ...]:
    """Window days in order of preference, as offsets from the target (``before`` days of the
    window lie before it, ``after`` after it); the whole window is tried before giving up.
    Worked out once per window shape: every plan of an arm asks for the same few."""
    if shift == "backward":
        order = [-i for i in range(before + 1)] + list(range(1, after + 1))
    elif shift == "nearest":
        order = []
        for i in range(before + after + 1):
            for step in (-i, i) if i else (0,):
                if -before <= step <= after:
                    order.append(step)
    else:
        order = list(range(after + 1)) + [-i for i in range(1, before + 1)]
    return tuple(ONE_DAY * i for i in order)
