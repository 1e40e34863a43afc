"""The planner: protocol + arm + allocation date + what happened + site calendar → the plan.

A pure function. Events are placed in anchor order; each occurrence is timed from the *actual*
date of its anchor when that is known (so delays chain) and from the planned date otherwise.
Events anchored to allocation (NATARS follow-up) never drift with treatment delays.

For each occurrence the planner walks the days of its window in the order its shift rule prefers
(forward from the target, back from it, or nearest first) and takes the first day that meets the
day rule, lays out the event's span, and satisfies every hard constraint whose other end is
already placed. When none does, the event keeps its shifted target and is flagged unsatisfiable
with the reason: a plan never silently breaks a constraint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from functools import lru_cache

from sarcoma_sched.calendar.capacity import Capacity
from sarcoma_sched.calendar.checker import check_events, gap_problem, point
from sarcoma_sched.calendar.deviations import find_deviations
from sarcoma_sched.calendar.plan import Actual, Change, Flag, Pin, Plan, PlannedEvent
from sarcoma_sched.calendar.workdays import SiteCalendar
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.schedule import (
    ALLOCATION,
    Arm,
    Component,
    Constraint,
    Event,
    EventRef,
    Span,
    Window,
)

__all__ = ["diff_plans", "plan_arm"]

ONE_DAY = dt.timedelta(days=1)


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
    planner = _Planner(arm, allocation_date, calendar, actuals or {}, pins or {}, capacity)
    events = planner.run()
    unknown = sorted((set(planner.actuals) | set(planner.pins)) - {e.id for e in events})
    if unknown:
        from sarcoma_sched.errors import NotFound

        raise NotFound(f"arm {arm_id} has no event {unknown[0]!r} to record")
    violations = check_events(arm, events, allocation_date, calendar)
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
    relying: list[PlannedEvent] = []
    years: set[int] = set()
    for e in events:
        if e.status != "planned" or not e.working_days_only:
            continue
        estimated = calendar.estimated_years((e.earliest, e.latest, *e.days))
        if estimated:
            relying.append(e)
            years.update(estimated)
    if not relying:
        return []
    first_year, last_year = min(years), max(years)
    span = str(first_year) if first_year == last_year else f"{first_year}–{last_year}"
    first = relying[0]
    return [
        f"{len(relying)} working-day event(s) from {first.id} ({first.start}) on rely on "
        f"estimated {calendar.country} holidays for {span} (no announced make-up working "
        f"days); re-plan with the official table when a year is announced"
    ]


class _Planner:
    def __init__(
        self,
        arm: Arm,
        allocation: dt.date,
        calendar: SiteCalendar,
        actuals: Mapping[str, Actual],
        pins: Mapping[str, Pin],
        capacity: Capacity | None = None,
    ) -> None:
        self.arm = arm
        self.allocation = allocation
        self.calendar = calendar
        self.actuals = actuals
        self.pins = pins
        self.capacity = capacity
        self.placed: list[PlannedEvent] = []
        self.grouped: dict[str, list[PlannedEvent]] = {}
        self.counts = _occurrence_counts(arm)
        self.constraints_of: dict[str, list[Constraint]] = {}
        for c in arm.constraints:
            for key in {c.from_.event, c.to.event} - {ALLOCATION}:
                self.constraints_of.setdefault(key, []).append(c)

    def run(self) -> list[PlannedEvent]:
        for event in _anchor_order(self.arm):
            if event.series is not None:
                self._place_series(event)
                continue
            assert event.timing is not None
            count = event.repeat.count if event.repeat else 1
            for n in range(1, count + 1):
                self._place_occurrence(event, n)
        return self.placed

    # -- anchors -------------------------------------------------------------------------------

    def _anchor(self, ref: EventRef) -> tuple[str, dt.date]:
        if ref.event == ALLOCATION:
            return ALLOCATION, self.allocation
        occurrences = self.grouped[ref.event]
        e = occurrences[0] if ref.occurrence == "first" else occurrences[-1]
        # A missed or skipped anchor still has its planned days: the clock goes on from them.
        return e.id, e.start if ref.point == "start" else e.end

    # -- placing -------------------------------------------------------------------------------

    def _place_occurrence(self, event: Event, n: int) -> None:
        assert event.timing is not None
        repeated = event.repeat is not None
        occurrence_id = f"{event.key}.{n}" if repeated else event.key
        if n == 1:
            anchor_id, anchor_date = self._anchor(event.timing.anchor)
            window = event.timing
            offsets = (window.offset, window.earliest, window.latest)
        else:
            assert event.repeat is not None
            previous = self.grouped[event.key][-1]
            anchor_id, anchor_date = previous.id, previous.start
            r = event.repeat
            offsets = (r.every, r.earliest, r.latest)
        self._place(
            event,
            occurrence_id,
            n if repeated else None,
            anchor_id,
            anchor_date,
            offsets,
            event.timing,
            event.span,
        )
        cycle_start = self.grouped[event.key][-1]
        for component in event.components:
            c_id = f"{component.key}.{n}" if repeated else component.key
            w = component.timing
            self._place(
                component,
                c_id,
                n if repeated else None,
                cycle_start.id,
                cycle_start.start,
                (w.offset, w.earliest, w.latest),
                w,
                component.span,
            )

    def _place_series(self, event: Event) -> None:
        series = event.series
        assert series is not None
        anchor_id, anchor_date = self._anchor(series.anchor)
        month = 0
        landmarks = set(series.landmarks_months)
        for phase in series.phases:
            while month + phase.every_months <= phase.until_months:
                month += phase.every_months
                target = _add_months(anchor_date, month)
                offset = (target - anchor_date).days
                w = phase.window_days
                label = f"{event.label}, month {month}" + (
                    " (landmark)" if month in landmarks else ""
                )
                rule = Window(
                    offset=offset,
                    earliest=offset - w,
                    latest=offset + w,
                    day_rule=series.day_rule,
                    shift=series.shift,
                )
                self._place(
                    event,
                    f"{event.key}.m{month}",
                    None,
                    anchor_id,
                    anchor_date,
                    (offset, offset - w, offset + w),
                    rule,
                    event.span,
                    label=label,
                )

    def _place(
        self,
        item: Event | Component,
        occurrence_id: str,
        cycle: int | None,
        anchor_id: str,
        anchor_date: dt.date,
        offsets: tuple[int, int, int],
        rule: Window,
        span: Span,
        label: str | None = None,
    ) -> None:
        offset, earliest_off, latest_off = offsets
        target = anchor_date + dt.timedelta(days=offset)
        earliest = anchor_date + dt.timedelta(days=earliest_off)
        latest = anchor_date + dt.timedelta(days=latest_off)
        working = rule.day_rule == "working_day"
        actual = self.actuals.get(occurrence_id)
        pin = self.pins.get(occurrence_id) if actual is None else None
        flags: tuple[Flag, ...] = ()
        if actual is not None and actual.status == "done":
            assert actual.date is not None
            days = actual.days or self._span_days(actual.date, span)
        elif pin is not None:
            days = self._span_days(pin.date, span)
            flags = self._pin_flags(occurrence_id, item.key, cycle, days, working)
            flags += self._capacity_flags(occurrence_id, item.kind, days, span, working)
        else:
            days, flags = self._search(
                occurrence_id,
                item.key,
                item.kind,
                cycle,
                (target, earliest, latest),
                working,
                rule.shift,
                span,
            )
        status = actual.status if actual is not None else "planned"
        if self.capacity is not None and status in ("planned", "done"):
            self.capacity.book(item.kind, days)
        chosen = PlannedEvent(
            id=occurrence_id,
            key=item.key,
            kind=item.kind,
            label=label or (f"{item.label} (cycle {cycle})" if cycle else item.label),
            cycle=cycle,
            anchor=anchor_id,
            anchor_date=anchor_date,
            target=target,
            earliest=earliest,
            latest=latest,
            days=days,
            show_as=span.show_as,
            working_days_only=working,
            consecutive_working_days=span.day_counting == "working_days",
            time=rule.time,
            status=status,
            reason=actual.reason if actual is not None else (pin.reason if pin else ""),
            flags=flags,
            pinned=pin is not None,
        )
        self.placed.append(chosen)
        self.grouped.setdefault(item.key, []).append(chosen)

    def _span_days(self, start: dt.date, span: Span) -> tuple[dt.date, ...]:
        if span.days == 1:
            return (start,)
        if span.day_counting == "working_days":
            return self.calendar.working_days_from(start, span.days)
        return tuple(start + dt.timedelta(days=i) for i in range(span.days))

    def _search(
        self,
        occurrence_id: str,
        key: str,
        kind: str,
        cycle: int | None,
        dates: tuple[dt.date, dt.date, dt.date],
        working: bool,
        shift: str,
        span: Span,
    ) -> tuple[tuple[dt.date, ...], tuple[Flag, ...]]:
        target, earliest, latest = dates
        n = cycle or 1
        relevant = self._relevant_constraints(key, n)
        first_allowed: tuple[dt.date, ...] | None = None
        # The first day that meets every hard constraint but not capacity: hard constraints
        # come first, so this is what the event keeps when no day in the window has room.
        first_sound: tuple[dt.date, ...] | None = None
        failures: dict[str, str] = {}
        for day in _candidates(target, earliest, latest, shift):
            if working and not self.calendar.is_working_day(day):
                continue
            days = self._span_days(day, span)
            if first_allowed is None:
                first_allowed = days
            problems = self._constraint_problems(key, n, days, relevant)
            if problems:
                for cid, text in problems:
                    failures.setdefault(cid, text)
                continue
            if self.capacity is None or self.capacity.fits(kind, days):
                return days, ()
            if first_sound is None:
                first_sound = days
        if first_sound is not None:
            return first_sound, self._capacity_flags(
                occurrence_id, kind, first_sound, span, working, window=(earliest, latest)
            )
        if first_allowed is None:
            # No working day at all in the window (a long closure): keep the target moved to a
            # working day outside the window, and say so.
            day = self._shifted(target, shift) if working else target
            days = self._span_days(day, span)
            messages = [
                f"no working day between {earliest} and {latest} (window of {occurrence_id}); "
                f"placed on {day}",
                *(t for _, t in self._constraint_problems(key, n, days, relevant)),
            ]
            return days, (Flag("unsatisfiable", "; ".join(messages)),)
        message = (
            f"no day in the window {earliest} … {latest} satisfies every hard constraint; "
            f"kept {first_allowed[0]}: {'; '.join(failures.values())}"
        )
        return first_allowed, (Flag("unsatisfiable", message),)

    def _capacity_flags(
        self,
        occurrence_id: str,
        kind: str,
        days: tuple[dt.date, ...],
        span: Span,
        working: bool,
        window: tuple[dt.date, dt.date] | None = None,
    ) -> tuple[Flag, ...]:
        """``over_capacity`` with the day the event would first fit, for the coordinator."""
        if self.capacity is None or self.capacity.fits(kind, days):
            return ()
        full = ", ".join(f"{r} {slot}" for r, slot in self.capacity.full(kind, days))
        fits = self._first_fit(kind, days[0] + ONE_DAY, span, working)
        where = f"no day in the window {window[0]} … {window[1]} has room" if window else ""
        message = "; ".join(
            part
            for part in (
                f"{occurrence_id} on {days[0]} is over capacity ({full} fully booked)",
                where,
                f"first day with room: {fits}" if fits else "no room in the next 180 days",
            )
            if part
        )
        return (Flag("over_capacity", message),)

    def _first_fit(self, kind: str, start: dt.date, span: Span, working: bool) -> dt.date | None:
        assert self.capacity is not None
        for i in range(180):
            day = start + ONE_DAY * i
            if working and not self.calendar.is_working_day(day):
                continue
            if self.capacity.fits(kind, self._span_days(day, span)):
                return day
        return None

    def _pin_flags(
        self,
        occurrence_id: str,
        key: str,
        cycle: int | None,
        days: tuple[dt.date, ...],
        working: bool,
    ) -> tuple[Flag, ...]:
        # The coordinator's date stands, but what it breaks (a hard constraint after a later
        # delay upstream, a closure recorded since) is said out loud, never silently kept.
        n = cycle or 1
        relevant = self._relevant_constraints(key, n)
        problems = [text for _, text in self._constraint_problems(key, n, days, relevant)]
        # Only the first day can fall on a closed day: a working-day span is laid out from it
        # over working days.
        if working and not self.calendar.is_working_day(days[0]):
            why = self.calendar.why_not_working(days[0])
            problems.append(f"{days[0]} is not a working day at the site ({why})")
        if not problems:
            return ()
        message = (
            f"{occurrence_id} was rescheduled to {days[0]}, which breaks: "
            + "; ".join(problems)
            + "; reschedule it again"
        )
        return (Flag("unsatisfiable", message),)

    def _shifted(self, day: dt.date, shift: str) -> dt.date:
        if shift == "backward":
            return self.calendar.previous_working_day(day)
        if shift == "nearest":
            after = self.calendar.next_working_day(day)
            before = self.calendar.previous_working_day(day)
            return before if (day - before) <= (after - day) else after
        return self.calendar.next_working_day(day)

    def _relevant_constraints(self, key: str, n: int) -> list[Constraint]:
        """Constraints that name this very occurrence (first or last of its key)."""
        count = self.counts.get(key, 1)
        return [
            c
            for c in self.constraints_of.get(key, [])
            if any(r.event == key and _is_occurrence(r, n, count) for r in (c.from_, c.to))
        ]

    def _constraint_problems(
        self, key: str, n: int, days: tuple[dt.date, ...], constraints: list[Constraint]
    ) -> list[tuple[str, str]]:
        problems = []
        count = self.counts.get(key, 1)
        for c in constraints:
            start = self._point_with(c.from_, key, n, count, days)
            end = self._point_with(c.to, key, n, count, days)
            if start is None or end is None:
                continue  # the other end is not placed yet: checked when it is
            problem = gap_problem(c, start, end)
            if problem is not None:
                problems.append((c.id, problem))
        return problems

    def _point_with(
        self, ref: EventRef, key: str, n: int, count: int, days: tuple[dt.date, ...]
    ) -> dt.date | None:
        if ref.event == key:
            if not _is_occurrence(ref, n, count):
                return None
            return days[0] if ref.point == "start" else days[-1]
        if ref.event == ALLOCATION or self._complete(ref.event):
            return point(ref, self.grouped, self.allocation)
        return None

    def _complete(self, key: str) -> bool:
        return len(self.grouped.get(key, ())) == self.counts.get(key, 1)


@lru_cache(maxsize=65536)
def _add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    import pendulum

    later = pendulum.Date(day.year, day.month, day.day).add(months=months)
    return dt.date(later.year, later.month, later.day)


def _is_occurrence(ref: EventRef, n: int, count: int) -> bool:
    return n == 1 if ref.occurrence == "first" else n == count


def _candidates(
    target: dt.date, earliest: dt.date, latest: dt.date, shift: str
) -> Iterator[dt.date]:
    """Window days in order of preference; the whole window is tried before giving up."""
    span = (latest - earliest).days
    if shift == "backward":
        yield from (target - ONE_DAY * i for i in range((target - earliest).days + 1))
        yield from (target + ONE_DAY * i for i in range(1, (latest - target).days + 1))
    elif shift == "nearest":
        for i in range(span + 1):
            for day in (target - ONE_DAY * i, target + ONE_DAY * i) if i else (target,):
                if earliest <= day <= latest:
                    yield day
    else:
        yield from (target + ONE_DAY * i for i in range((latest - target).days + 1))
        yield from (target - ONE_DAY * i for i in range(1, (target - earliest).days + 1))


def _occurrence_counts(arm: Arm) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in arm.events:
        n = e.repeat.count if e.repeat else 1
        counts[e.key] = n
        for c in e.components:
            counts[c.key] = n
    return counts


def _anchor_order(arm: Arm) -> list[Event]:
    """Events ordered so that each comes after every event it is timed from."""
    owner = {c.key: e.key for e in arm.events for c in e.components}
    events = {e.key: e for e in arm.events}
    done: list[Event] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        key = owner.get(key, key)
        if key in seen or key == ALLOCATION:
            return
        seen.add(key)
        e = events[key]
        anchor = e.timing.anchor if e.timing else e.series.anchor  # type: ignore[union-attr]
        visit(anchor.event)
        done.append(e)

    for e in arm.events:
        visit(e.key)
    return done
