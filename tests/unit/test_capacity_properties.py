"""Capacity-aware planning over random cohorts, capacities and closures (hypothesis).

Patients are planned one after another as the services do: each against the site's limits and
everyone planned before. Usage is recounted here from the events' days, not taken from the
planner's own bookkeeping.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, check_events, plan_arm
from sarcoma_sched.calendar.capacity import RESOURCES, Capacity, Limit, resource_units
from sarcoma_sched.protocol import find_protocol

ARMS = [("TNT-STS", "TNT"), ("NATARS", "SURGERY_ONLY"), ("NATARS", "NEOADJUVANT")]
START = dt.date(2026, 9, 1)


@st.composite
def limits(draw):
    chosen = {}
    if draw(st.booleans()):
        days = draw(st.dictionaries(st.integers(0, 4), st.integers(0, 2), min_size=1, max_size=5))
        chosen["theatre"] = Limit("theatre", per_weekday=days)
    if draw(st.booleans()):
        n = draw(st.integers(0, 3))
        chosen["infusion"] = Limit("infusion", per_weekday={d: n for d in range(7)})
    if draw(st.booleans()):
        chosen["rt_course"] = Limit("rt_course", per_week=draw(st.integers(0, 2)))
    return chosen


@st.composite
def cohorts(draw):
    closed = set()
    for _ in range(draw(st.integers(0, 3))):
        first = START + dt.timedelta(days=draw(st.integers(0, 150)))
        closed.update(first + dt.timedelta(days=i) for i in range(draw(st.integers(1, 10))))
    patients = [
        (
            draw(st.sampled_from(ARMS)),
            START + dt.timedelta(days=draw(st.integers(0, 60))),
        )
        for _ in range(draw(st.integers(2, 12)))
    ]
    return draw(limits()), closed, patients


def _plan_all(cohort):
    site_limits, closed, patients = cohort
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai", closures=closed)
    capacity = Capacity(site_limits)
    plans = []
    for (pid, arm), allocated in patients:
        protocol = find_protocol(pid).protocol
        # Each patient sees everyone booked before (the database), then books its own.
        plan = plan_arm(protocol, arm, allocated, calendar, capacity=capacity)
        plans.append((protocol, arm, plan))
    return site_limits, calendar, plans


@settings(deadline=None, max_examples=60)
@given(cohorts())
def test_no_resource_is_over_capacity_except_events_flagged_so(cohort):
    site_limits, _, plans = _plan_all(cohort)
    used: Counter = Counter()
    for _, _, plan in plans:
        for e in plan.events:
            if not any(f.code == "over_capacity" for f in e.flags):
                used.update(resource_units(e.kind, e.days))
    for (resource, slot), n in used.items():
        if resource in site_limits:
            assert n <= site_limits[resource].at(slot), (resource, slot, n)
    # A flagged event really had no room in its window, and says where it would fit.
    for _, _, plan in plans:
        for e in plan.events:
            for f in e.flags:
                if f.code == "over_capacity":
                    assert "fully booked" in f.message and str(e.start) in f.message


@settings(deadline=None, max_examples=60)
@given(cohorts())
def test_capacity_never_breaks_a_window_or_a_hard_constraint(cohort):
    _, calendar, plans = _plan_all(cohort)
    for protocol, arm, plan in plans:
        flagged = {e.id for e in plan.events if e.unsatisfiable}
        for v in check_events(protocol.arm(arm), plan.events, plan.allocation_date, calendar):
            # Only what the planner itself said it could not satisfy (a closure, a holiday
            # block) may break a rule; capacity alone never does.
            assert set(v.events) & flagged, v.message


@settings(deadline=None, max_examples=30)
@given(cohorts())
def test_without_limits_capacity_changes_nothing(cohort):
    _, closed, patients = cohort
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai", closures=closed)
    for (pid, arm), allocated in patients:
        protocol = find_protocol(pid).protocol
        free = plan_arm(protocol, arm, allocated, calendar)
        unlimited = plan_arm(protocol, arm, allocated, calendar, capacity=Capacity({}))
        assert [e.days for e in free.events] == [e.days for e in unlimited.events]


def test_a_full_tuesday_moves_the_surgery_to_the_next_session_inside_its_window():
    protocol = find_protocol("NATARS").protocol
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai")
    capacity = Capacity({"theatre": Limit("theatre", per_weekday={1: 1, 3: 1})})
    allocated = dt.date(2026, 11, 20)
    first = plan_arm(protocol, "SURGERY_ONLY", allocated, calendar, capacity=capacity)
    second = plan_arm(protocol, "SURGERY_ONLY", allocated, calendar, capacity=capacity)
    a, b = first["surgery"], second["surgery"]
    assert a.start.weekday() in (1, 3) and b.start.weekday() in (1, 3)
    assert b.start > a.start and b.earliest <= b.start <= b.latest
    assert not b.flags
    assert set(RESOURCES) == {"theatre", "infusion", "rt_course"}
