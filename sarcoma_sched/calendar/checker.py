"""The one constraint checker: used by the planner for each candidate day, by re-planning, by the
deviation report and by the property tests, so "valid" means the same thing everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from itertools import pairwise

from sarcoma_sched.calendar.plan import PlannedEvent, Violation
from sarcoma_sched.calendar.workdays import SiteCalendar
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Constraint, EventRef
from sarcoma_sched.vocabulary import NOT_HAPPENED, EventKind, ViolationRule

__all__ = ["by_key", "check_events", "gap_holds", "gap_problem", "is_stay", "point", "ref_words"]


def by_key(events: Iterable[PlannedEvent]) -> dict[str, list[PlannedEvent]]:
    grouped: dict[str, list[PlannedEvent]] = {}
    for e in events:
        grouped.setdefault(e.key, []).append(e)
    return grouped


def point(
    ref: EventRef, grouped: dict[str, list[PlannedEvent]], allocation: dt.date
) -> dt.date | None:
    """The date a reference names, or None when that occurrence is unknown, missed or skipped."""
    if ref.event == ALLOCATION:
        return allocation
    occurrences = grouped.get(ref.event)
    if not occurrences:
        return None
    e = occurrences[0] if ref.occurrence == "first" else occurrences[-1]
    if e.status in NOT_HAPPENED:
        return None
    return e.start if ref.point == "start" else e.end


def ref_words(ref: EventRef) -> str:
    if ref.event == ALLOCATION:
        return "allocation"
    day = "first day" if ref.point == "start" else "last day"
    return f"the {day} of the {ref.occurrence} {ref.event}"


def gap_holds(c: Constraint, gap: int) -> bool:
    """Whether ``to - from`` = ``gap`` days meets the constraint (``gap_problem`` says why not)."""
    if c.min_days is not None and gap < c.min_days:
        return False
    if c.max_days is not None and gap > c.max_days:
        return False
    return c.not_between is None or not c.not_between[0] <= gap <= c.not_between[1]


def gap_problem(c: Constraint, start: dt.date, end: dt.date) -> str | None:
    """Why ``end - start`` breaks the constraint, in words, or None when it holds."""
    gap = (end - start).days
    if gap_holds(c, gap):
        return None
    if c.min_days is not None and gap < c.min_days:
        return (
            f"{c.id}: {c.description} — {ref_words(c.to)} ({end}) is {gap} days after "
            f"{ref_words(c.from_)} ({start}), at least {c.min_days} required"
        )
    if c.max_days is not None and gap > c.max_days:
        return (
            f"{c.id}: {c.description} — {ref_words(c.to)} ({end}) is {gap} days after "
            f"{ref_words(c.from_)} ({start}), at most {c.max_days} allowed"
        )
    if c.not_between is not None and c.not_between[0] <= gap <= c.not_between[1]:
        low, high = c.not_between
        return (
            f"{c.id}: {c.description} — {ref_words(c.to)} ({end}) is {gap} days after "
            f"{ref_words(c.from_)} ({start}), not {low} to {high} days after allowed"
        )
    return None


def check_events(
    arm: Arm,
    events: Sequence[PlannedEvent],
    allocation: dt.date,
    calendar: SiteCalendar,
) -> list[Violation]:
    """Every rule the events break: declared gaps, windows, day rules, spans, cycle order.

    Missed and skipped events are not held to their dates; constraints that read them are not
    evaluated (there is no date to measure from).
    """
    grouped = by_key(events)
    found: list[Violation] = []
    for c in arm.constraints:
        start, end = point(c.from_, grouped, allocation), point(c.to, grouped, allocation)
        if start is None or end is None:
            continue
        problem = gap_problem(c, start, end)
        if problem is not None:
            involved = tuple(sorted({_occurrence_id(r, grouped) for r in (c.from_, c.to)} - {""}))
            found.append(Violation(c.id, involved, problem))
    is_working_day = calendar.is_working_day
    for e in events:
        if e.status in NOT_HAPPENED:
            continue
        # Nearly every event is inside its window on an allowed day: say so without walking
        # the rules one by one (the planner checks every event of every plan).
        start = e.days[0]
        if (
            e.earliest <= start <= e.latest
            and not e.consecutive_working_days
            and (not e.working_days_only or is_working_day(start))
            and not (calendar.closures and is_stay(e))
        ):
            continue
        found.extend(_event_violations(e, calendar))
    for occurrences in grouped.values():
        if len(occurrences) < 2:
            continue
        for before, after in pairwise(occurrences):
            if (
                after.days[0] <= before.days[-1]
                and before.status not in NOT_HAPPENED
                and after.status not in NOT_HAPPENED
            ):
                found.append(
                    Violation(
                        ViolationRule.ORDER,
                        (before.id, after.id),
                        f"{after.id} starts {after.start}, not after {before.id} ends {before.end}",
                    )
                )
    return found


def _occurrence_id(ref: EventRef, grouped: dict[str, list[PlannedEvent]]) -> str:
    if ref.event == ALLOCATION or ref.event not in grouped:
        return ""
    occurrences = grouped[ref.event]
    return (occurrences[0] if ref.occurrence == "first" else occurrences[-1]).id


def is_stay(e: PlannedEvent) -> bool:
    """An inpatient stay: a multi-day infusion counted in calendar days, every day treated."""
    return e.kind == EventKind.INFUSION and len(e.days) > 1 and not e.consecutive_working_days


def _event_violations(e: PlannedEvent, calendar: SiteCalendar) -> Iterable[Violation]:
    if is_stay(e):
        for day in e.days[1:]:
            if calendar.is_closed(day):
                yield Violation(
                    ViolationRule.SPAN,
                    (e.id,),
                    f"{e.id}: the site is closed on {day}, a day of the stay",
                )
    if not e.earliest <= e.start <= e.latest:
        yield Violation(
            ViolationRule.WINDOW,
            (e.id,),
            f"{e.id} on {e.start} is outside its window {e.earliest} … {e.latest}",
        )
    if e.working_days_only and not calendar.is_working_day(e.start):
        why = calendar.why_not_working(e.start)
        yield Violation(
            ViolationRule.WORKING_DAY, (e.id,), f"{e.id} on {e.start} is not a working day ({why})"
        )
    if e.consecutive_working_days:
        for day in e.days:
            if not calendar.is_working_day(day):
                yield Violation(ViolationRule.SPAN, (e.id,), f"{e.id}: {day} is not a working day")
        for a, b in pairwise(e.days):
            gap = [a + dt.timedelta(days=i) for i in range(1, (b - a).days)]
            skipped = [d for d in gap if calendar.is_working_day(d)]
            if b <= a or skipped:
                yield Violation(
                    ViolationRule.SPAN,
                    (e.id,),
                    f"{e.id}: {a} and {b} are not consecutive working days",
                )
