"""A closure recorded after the fact (issue 20, item 3): what was done stays as it was recorded.

A closure says the site cannot treat on those days. Entered for days that have passed, it must
not rewrite history: an event recorded done on one of them was given (the record proves the
site treated that day), so it keeps its days, its status and its deviations, whatever else the
re-plan moves. The service reports such events instead (``services.sites.close_site``).
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import Actual, Plan, SiteCalendar, plan_arm
from sarcoma_sched.protocol import find_protocol
from sarcoma_sched.vocabulary import DeviationKind, EventStatus

DAY = dt.timedelta(days=1)
CASES = [("NATARS", "NEOADJUVANT", "PKUIH"), ("NATARS", "SURGERY_ONLY", "PKUIH"),
         ("TNT-STS", "TNT", "FJMUUH")]  # fmt: skip


def _done(plan: Plan, through: dt.date) -> dict[str, Actual]:
    """Every event of ``plan`` that starts by ``through``, recorded done on its planned days."""
    return {
        e.id: Actual(EventStatus.DONE, e.start, days=e.days if len(e.days) > 1 else None)
        for e in plan.events
        if e.start <= through
    }


def _history(plan: Plan) -> dict[str, object]:
    deviations: dict[str, list[str]] = {}
    for d in plan.deviations:
        deviations.setdefault(d.event, []).append(d.message)
    return {
        e.id: (e.status, e.days, tuple(deviations.get(e.id, ())))
        for e in plan.events
        if e.status == EventStatus.DONE
    }


@settings(max_examples=150, deadline=None)
@given(
    case=st.sampled_from(CASES),
    allocated=st.dates(dt.date(2026, 1, 5), dt.date(2026, 10, 30)),
    recorded_days=st.integers(0, 90),
    closure_start=st.integers(-5, 90),
    closure_days=st.integers(1, 10),
)
def test_a_retroactive_closure_never_changes_a_done_event(
    case, allocated, recorded_days, closure_start, closure_days
):
    """Days, status and deviations of every done event stay as they were when a closure is
    entered for days that have passed (today is the last day anything was recorded)."""
    protocol_id, arm, site = case
    closure_start = min(closure_start, recorded_days)
    closure_days = min(closure_days, recorded_days - closure_start + 1)
    protocol = find_protocol(protocol_id).protocol
    open_calendar = SiteCalendar.for_protocol_site(protocol, site)
    first = plan_arm(protocol, arm, allocated, open_calendar)
    actuals = _done(first, allocated + recorded_days * DAY)
    before = plan_arm(protocol, arm, allocated, open_calendar, actuals=actuals)

    closed = [allocated + (closure_start + i) * DAY for i in range(closure_days)]
    shut = SiteCalendar.for_protocol_site(protocol, site, closures=closed)
    after = plan_arm(protocol, arm, allocated, shut, actuals=actuals)

    assert _history(after) == _history(before)


def test_an_event_done_on_a_day_later_closed_is_no_non_working_day_deviation():
    protocol = find_protocol("NATARS").protocol
    allocated = dt.date(2026, 9, 1)
    calendar = SiteCalendar.for_protocol_site(protocol, "PKUIH")
    ai1 = plan_arm(protocol, "NEOADJUVANT", allocated, calendar)["ai.1"]
    actuals = {"ai.1": Actual(EventStatus.DONE, ai1.start)}
    shut = SiteCalendar.for_protocol_site(protocol, "PKUIH", closures=[ai1.start])
    plan = plan_arm(protocol, "NEOADJUVANT", allocated, shut, actuals=actuals)
    assert not [d for d in plan.deviations if d.code == DeviationKind.NON_WORKING_DAY]
    # A day the protocol's calendar does not work (a weekend) still is one.
    saturday = ai1.start + (5 - ai1.start.weekday()) % 7 * DAY
    weekend = {"ai.1": Actual(EventStatus.DONE, saturday)}
    plan = plan_arm(protocol, "NEOADJUVANT", allocated, shut, actuals=weekend)
    assert [d.event for d in plan.deviations if d.code == DeviationKind.NON_WORKING_DAY] == ["ai.1"]


def test_apart_from_closures_a_closed_day_is_the_day_it_would_have_been():
    calendar = SiteCalendar("CN", closures=[dt.date(2026, 11, 2), dt.date(2026, 11, 7)])
    assert not calendar.is_working_day(dt.date(2026, 11, 2))
    assert calendar.is_working_day_apart_from_closures(dt.date(2026, 11, 2))  # a Monday
    assert not calendar.is_working_day_apart_from_closures(dt.date(2026, 11, 7))  # a Saturday
    assert not calendar.is_working_day_apart_from_closures(dt.date(2026, 10, 1))  # National Day
