"""Deviations: what happened that the protocol did not plan, in a coordinator's words.

A recorded event is measured against the protocol's calendar, not against the site's closures:
a closure is often entered after the fact (the ward was shut that week), and an event recorded
done on a closed day was given, so a closure never turns a done event into a deviation (issue
20, item 3). ``services.sites.close_site`` reports such events instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sarcoma_sched.calendar.plan import Deviation, PlannedEvent, Violation
from sarcoma_sched.calendar.workdays import SiteCalendar
from sarcoma_sched.protocol.schedule import Arm
from sarcoma_sched.vocabulary import BUILTIN_RULES, DeviationKind, EventStatus

__all__ = ["find_deviations"]


def find_deviations(
    arm: Arm,
    events: Sequence[PlannedEvent],
    violations: Sequence[Violation],
    calendar: SiteCalendar,
) -> list[Deviation]:
    reason_after = {e.key: e.repeat.reason_required_after for e in arm.events if e.repeat}
    # A window counted in the site's working days, as it was apart from the closures.
    working_windows = {
        e.key: (e.timing.earliest, e.timing.latest)
        for e in arm.events
        if e.timing is not None and e.timing.window_counting == "working_days"
    }
    protocol_days = calendar.apart_from_closures()
    found: list[Deviation] = []
    for e in events:
        # An event still planned where the planner put it has nothing to report.
        if e.status == EventStatus.PLANNED and not e.pinned:
            continue
        counted = working_windows.get(e.key) if e.cycle in (None, 1) else None
        window = (e.earliest, e.latest)
        if counted is not None and e.status == EventStatus.DONE and calendar.closures:
            # Closures push a working-day window later: one known in time let the event be
            # given later; one entered after the fact must not make it early. Either is kept.
            window = (
                min(e.earliest, protocol_days.working_day_after(e.anchor_date, counted[0])),
                max(e.latest, protocol_days.working_day_after(e.anchor_date, counted[1])),
            )
        found.extend(_event_deviations(e, reason_after.get(e.key), protocol_days, window))
    status: dict[str, str] | None = None
    for v in violations:
        if v.rule in BUILTIN_RULES:
            continue
        if status is None:
            status = {e.id: e.status for e in events}
        # A broken hard constraint is a deviation once a recorded date causes it; while every
        # event involved is still planned it is the planner's unsatisfiable flag instead.
        if any(status.get(i) == EventStatus.DONE for i in v.events):
            found.append(
                Deviation(
                    v.events[-1],
                    DeviationKind.CONSTRAINT,
                    None,
                    f"hard constraint broken by actual dates: {v.message}",
                )
            )
    return found


def _event_deviations(
    e: PlannedEvent,
    reason_after: int | None,
    calendar: SiteCalendar,
    window: tuple[dt.date, dt.date],
) -> Iterable[Deviation]:
    if e.status == EventStatus.MISSED:
        yield Deviation(
            e.id,
            DeviationKind.MISSED,
            None,
            f"{e.label} was missed (window {e.earliest} … {e.latest})",
        )
        return
    if e.status == EventStatus.SKIPPED:
        why = f": {e.reason}" if e.reason else " (no reason recorded)"
        yield Deviation(e.id, DeviationKind.SKIPPED, None, f"{e.label} was skipped{why}")
        return
    if e.status == EventStatus.PLANNED and e.pinned and not e.earliest <= e.start <= e.latest:
        side = "before its window opens" if e.start < e.earliest else "after its window closes"
        why = f": {e.reason}" if e.reason else " (no reason recorded)"
        yield Deviation(
            e.id,
            DeviationKind.RESCHEDULED,
            None,
            f"{e.label} rescheduled to {e.start}, {side} ({e.earliest} … {e.latest}){why}",
        )
        return
    if e.status != EventStatus.DONE:
        return
    earliest, latest = window
    if e.start < earliest:
        n = (earliest - e.start).days
        yield Deviation(
            e.id,
            DeviationKind.EARLY,
            n,
            f"{e.label} done {e.start}, {_days(n)} before its window opened "
            f"({earliest} … {latest})",
        )
    elif e.start > latest:
        n = (e.start - latest).days
        yield Deviation(
            e.id,
            DeviationKind.LATE,
            n,
            f"{e.label} done {e.start}, {_days(n)} after its window closed ({earliest} … {latest})",
        )
    late = (e.start - e.target).days
    if (
        e.cycle
        and e.cycle > 1
        and reason_after is not None
        and late > reason_after
        and not e.reason
    ):
        yield Deviation(
            e.id,
            DeviationKind.NEEDS_REASON,
            late,
            f"{e.label} given {_days(late)} after its target {e.target}: a delay "
            f"beyond {reason_after} days needs a documented reason",
        )
    if e.working_days_only and not calendar.is_working_day(e.start):
        yield Deviation(
            e.id,
            DeviationKind.NON_WORKING_DAY,
            None,
            f"{e.label} done on {e.start}, not a working day at the site "
            f"({calendar.why_not_working(e.start)})",
        )


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"
