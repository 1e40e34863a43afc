"""Invariants of the planner for every arm of every bundled protocol (hypothesis).

The expectations are recomputed here from the protocol model and the calendar, not taken from the
planner's own bookkeeping, so a planner bug cannot hide behind itself.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from itertools import pairwise

from hypothesis import assume, given
from hypothesis import strategies as st

from sarcoma_sched.calendar import Actual, SiteCalendar, plan_arm
from sarcoma_sched.protocol import ALLOCATION, find_protocol

ARMS = [
    ("TNT-STS", "TNT"),
    ("NATARS", "SURGERY_ONLY"),
    ("NATARS", "NEOADJUVANT"),
    ("NATARS-R", "SURGERY_ONLY"),
    ("NATARS-R", "NEOADJUVANT"),
]


def _holiday_blocks() -> list[dt.date]:
    """First days of China's long holiday blocks (Spring Festival, Golden Week), 2024-2035."""
    cal = SiteCalendar("CN")
    starts, run = [], []
    day = dt.date(2024, 1, 1)
    while day < dt.date(2036, 1, 1):
        if cal.is_working_day(day):
            if len(run) >= 4:
                starts.append(run[0])
            run = []
        else:
            run.append(day)
        day += dt.timedelta(days=1)
    return starts


# Uniform dates alone would rarely put a course next to a holiday block, where the planner has
# the most to do; half the anchors are drawn just before one.
ANCHORS = st.one_of(
    st.dates(dt.date(2024, 1, 1), dt.date(2035, 12, 31)),
    st.tuples(st.sampled_from(_holiday_blocks()), st.integers(-120, 3)).map(
        lambda bo: bo[0] + dt.timedelta(days=bo[1])
    ),
)


@cache
def protocol(pid):
    return find_protocol(pid).protocol


@st.composite
def closures(draw, anchor):
    """Random site closures after allocation: single days up to month-long shutdowns."""
    days: set[dt.date] = set()
    for _ in range(draw(st.integers(0, 4))):
        # Mostly during treatment (the first months), sometimes later.
        start = anchor + dt.timedelta(days=draw(st.integers(0, 120) | st.integers(0, 400)))
        length = draw(st.sampled_from([1, 1, 2, 3, 7, 15, 30]))
        days.update(start + dt.timedelta(days=i) for i in range(length))
    return days


@st.composite
def scenarios(draw):
    pid, arm = draw(st.sampled_from(ARMS))
    anchor = draw(ANCHORS)
    p = protocol(pid)
    site = draw(st.sampled_from([s.code for s in p.sites]))
    closed = draw(closures(anchor))
    calendar = SiteCalendar.for_protocol_site(p, site, closures=closed)
    return p, arm, anchor, calendar


def ref_date(plan, ref, allocation):
    if ref.event == ALLOCATION:
        return allocation
    occurrences = plan.occurrences(ref.event)
    e = occurrences[0] if ref.occurrence == "first" else occurrences[-1]
    return e.start if ref.point == "start" else e.end


def nth_working_day_after(calendar, day, n):
    """Counted here day by day, independently of the planner's ``working_day_after``."""
    found = []
    while len(found) < n:
        day += dt.timedelta(days=1)
        if calendar.is_working_day(day):
            found.append(day)
    return found[-1]


def expected_window(p, arm_id, plan, e, calendar=None):
    """The window of an occurrence, recomputed from the protocol and the plan's dates."""
    arm = p.arm(arm_id)
    spec = {x.key: x for x in arm.events}
    parent = {c.key: x for x in arm.events for c in x.components}
    if e.key in parent:
        comp = next(c for c in parent[e.key].components if c.key == e.key)
        cycle_d1 = plan[e.id.replace(e.key, parent[e.key].key, 1)].start
        t = comp.timing
        return cycle_d1 + dt.timedelta(t.earliest), cycle_d1 + dt.timedelta(t.latest)
    event = spec[e.key]
    if event.repeat and e.cycle and e.cycle > 1:
        previous = plan[f"{e.key}.{e.cycle - 1}"].start
        return (
            previous + dt.timedelta(event.repeat.earliest),
            previous + dt.timedelta(event.repeat.latest),
        )
    if event.series:
        return None  # series windows: checked against their month arithmetic below
    anchor = ref_date(plan, event.timing.anchor, plan.allocation_date)
    if event.timing.window_counting == "working_days":
        assert calendar is not None, "a working-day window needs the site's calendar"
        return (
            nth_working_day_after(calendar, anchor, event.timing.earliest),
            nth_working_day_after(calendar, anchor, event.timing.latest),
        )
    return (
        anchor + dt.timedelta(event.timing.earliest),
        anchor + dt.timedelta(event.timing.latest),
    )


def assert_plan_is_sound(p, arm_id, plan, calendar):
    arm = p.arm(arm_id)
    for e in plan.events:
        if e.unsatisfiable:
            assert e.flags[0].message, "an unsatisfiable flag must say why"
            continue
        window = expected_window(p, arm_id, plan, e, calendar)
        if window is not None:
            assert window == (e.earliest, e.latest), e.id
        assert e.earliest <= e.start <= e.latest, (e.id, e.start, e.earliest, e.latest)
        if e.working_days_only:
            assert calendar.is_working_day(e.start), (e.id, e.start)
    # RT: the protocol's number of fractions, one per working day, consecutive, within the limit.
    for rt in (e for e in plan.events if e.kind == "radiotherapy"):
        spec = next(x for x in arm.events if x.key == rt.key)
        assert len(rt.days) == spec.span.days
        if rt.unsatisfiable:
            continue
        assert all(calendar.is_working_day(d) for d in rt.days)
        for a, b in pairwise(rt.days):
            assert not any(
                calendar.is_working_day(a + dt.timedelta(i)) for i in range(1, (b - a).days)
            ), "a working day was skipped"
    # Every declared hard constraint holds unless an event it names is flagged.
    flagged = {e.key for e in plan.events if e.unsatisfiable}
    for c in arm.constraints:
        if {c.from_.event, c.to.event} & flagged:
            continue
        gap = (
            ref_date(plan, c.to, plan.allocation_date)
            - ref_date(plan, c.from_, plan.allocation_date)
        ).days
        assert c.min_days is None or gap >= c.min_days, (c.id, gap)
        assert c.max_days is None or gap <= c.max_days, (c.id, gap)
    # Treatment order: no cycle before the previous one ends; surgery after the last cycle.
    for key in {e.key for e in plan.events if e.cycle}:
        occ = plan.occurrences(key)
        for a, b in pairwise(occ):
            assert b.start > a.end, (a.id, b.id)
    if "surgery" in plan and plan.occurrences("ai"):
        assert plan["surgery"].start > plan.occurrences("ai")[-1].end
    # Every event is accounted for: the checker agrees that nothing unflagged is broken.
    for v in plan.violations:
        assert any(plan[i].unsatisfiable for i in v.events), v.message


@given(scenarios())
def test_every_plan_meets_working_days_windows_rt_rules_constraints_and_order(scenario):
    p, arm, anchor, calendar = scenario
    plan = plan_arm(p, arm, anchor, calendar)
    assert_plan_is_sound(p, arm, plan, calendar)


@given(scenarios())
def test_follow_up_visits_are_whole_months_from_their_anchor(scenario):
    p, arm, anchor, calendar = scenario
    plan = plan_arm(p, arm, anchor, calendar)
    series_event = next(e for e in p.arm(arm).events if e.series)
    base = ref_date(plan, series_event.series.anchor, anchor)
    for e in plan.occurrences(series_event.key):
        months = int(e.id.rsplit(".m", 1)[1])
        year, month = divmod(base.month - 1 + months, 12)
        target_year, target_month = base.year + year, month + 1
        assert (e.target.year, e.target.month) == (target_year, target_month)
        assert e.target.day == base.day or e.target.day < base.day  # clamped at month end


@given(scenarios())
def test_planning_is_deterministic(scenario):
    p, arm, anchor, calendar = scenario
    assert plan_arm(p, arm, anchor, calendar) == plan_arm(p, arm, anchor, calendar)


@given(scenarios())
def test_recording_every_event_on_its_planned_dates_changes_nothing(scenario):
    p, arm, anchor, calendar = scenario
    plan = plan_arm(p, arm, anchor, calendar)
    actuals = {e.id: Actual("done", e.start, e.days) for e in plan.events}
    again = plan_arm(p, arm, anchor, calendar, actuals)
    assert [(e.id, e.days) for e in again.events] == [(e.id, e.days) for e in plan.events]
    assert all(e.status == "done" for e in again.events)
    assert not [
        d
        for d in again.deviations
        if d.code not in ("constraint",) and not plan[d.event].unsatisfiable
    ]


@st.composite
def delays(draw):
    p, arm, anchor, calendar = draw(scenarios())
    plan = plan_arm(p, arm, anchor, calendar)
    treatment = [e for e in plan.events if e.kind != "follow_up"]
    cut = draw(st.integers(0, len(treatment) - 1))
    moves = draw(st.integers(-3, 21))
    return p, arm, anchor, calendar, plan, treatment[:cut], treatment[cut], moves


def _timed_from_unsafe(plan, e) -> bool:
    while True:
        if e.unsatisfiable:
            return True
        if e.anchor == "allocation":
            return False
        e = plan[e.anchor]


@given(delays())
def test_a_recorded_delay_moves_chained_events_never_earlier_and_done_events_never(case):
    p, arm, anchor, calendar, plan, history, event, shift = case
    assume(shift > 0)
    actuals = {e.id: Actual("done", e.start, e.days) for e in history}
    actuals[event.id] = Actual("done", event.start + dt.timedelta(days=shift))
    again = plan_arm(p, arm, anchor, calendar, actuals)
    for e in history:
        assert again[e.id].days == e.days, "a done event moved"
    for e in plan.events:
        new = again[e.id]
        if e.id in actuals or e.key == "follow_up":
            continue
        # An unsafe date (flagged, e.g. placed past its window for a hard rule) and what is
        # timed from it are no baseline: the delay may let them back where they belong.
        if _timed_from_unsafe(plan, e) or _timed_from_unsafe(again, new):
            continue
        assert new.start >= e.start, f"{e.id} moved earlier: {e.start} -> {new.start}"
    # NATARS follow-up runs on the allocation clock: treatment delays never move it, except
    # the first assessment, which stays out of the 14 days after surgery: a later surgery may
    # put it before surgery (the pre-operative scan) or later, inside its window, or flag it.
    if p.id.startswith("NATARS"):
        first, *rest = plan.occurrences("follow_up")
        for e in rest:
            assert again[e.id].days == e.days
        m3 = again[first.id]
        gap = (m3.start - again["surgery"].start).days
        assert m3.earliest <= m3.start <= m3.latest or m3.unsatisfiable
        assert not 0 <= gap <= 14 or m3.unsatisfiable, (m3.start, again["surgery"].start)


@given(delays())
def test_actual_dates_outside_the_window_are_deviations_counted_in_days(case):
    p, arm, anchor, calendar, _plan, _history, event, shift = case
    actual = event.start + dt.timedelta(days=shift)
    again = plan_arm(p, arm, anchor, calendar, {event.id: Actual("done", actual)})
    found = {(d.code, d.days) for d in again.deviations if d.event == event.id}
    e = again[event.id]
    if actual > e.latest:
        assert ("late", (actual - e.latest).days) in found
    elif actual < e.earliest:
        assert ("early", (e.earliest - actual).days) in found
    else:
        assert not {c for c, _ in found} & {"early", "late"}


@given(scenarios(), st.data())
def test_a_missed_event_is_reported_and_keeps_its_place_on_the_clock(scenario, data):
    p, arm, anchor, calendar = scenario
    plan = plan_arm(p, arm, anchor, calendar)
    missed = data.draw(st.sampled_from(plan.events))
    again = plan_arm(p, arm, anchor, calendar, {missed.id: Actual("missed")})
    assert again[missed.id].status == "missed"
    assert again[missed.id].days == missed.days
    # Nothing else moves, except an event held by a constraint the missed one was an end of:
    # with no date to measure from, that rule no longer holds it (surgery missed: the month-3
    # scan need not keep clear of it).
    released = {
        c.to.event if c.from_.event == missed.key else c.from_.event
        for c in p.arm(arm).constraints
        if missed.key in (c.from_.event, c.to.event)
    }
    assert [e.days for e in again.events if e.key not in released] == [
        e.days for e in plan.events if e.key not in released
    ]
    assert any(d.code == "missed" and d.event == missed.id for d in again.deviations)
