"""What the planner works out once must never make a plan differ from one worked out afresh.

The planner keeps an arm's steps per arm object, month arithmetic per (date, months), and every
calendar shares one table of the ``holidays`` package's answers per country; a PlannedEvent is
built without its ``__init__``. Each is held here against the plain computation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from functools import cache

import holidays
import pendulum
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import Actual, Pin, PlannedEvent, SiteCalendar, plan_arm
from sarcoma_sched.calendar import planner as planner_module
from sarcoma_sched.calendar.capacity import Capacity, Limit
from sarcoma_sched.protocol import find_protocol

ARMS = [
    ("TNT-STS", "TNT"),
    ("NATARS", "SURGERY_ONLY"),
    ("NATARS", "NEOADJUVANT"),
    ("NATARS-R", "NEOADJUVANT"),
]
ANCHORS = st.dates(dt.date(2024, 1, 1), dt.date(2035, 12, 31))


@cache
def protocol(pid):
    return find_protocol(pid).protocol


def uncached(p, arm, anchor, calendar, actuals=None, pins=None, capacity=None):
    """The plan with nothing remembered from earlier plans."""
    planner_module._STEPS.clear()
    planner_module._add_months.cache_clear()
    fresh = SiteCalendar(
        calendar.country,
        calendar.subdivision,
        time_zone=calendar.time_zone,
        closures=calendar.closures,
    )
    return plan_arm(p, arm, anchor, fresh, actuals, pins, capacity)


@st.composite
def histories(draw):
    pid, arm = draw(st.sampled_from(ARMS))
    p = protocol(pid)
    anchor = draw(ANCHORS)
    closed = {
        anchor + dt.timedelta(days=draw(st.integers(0, 200)) + i)
        for _ in range(draw(st.integers(0, 3)))
        for i in range(draw(st.sampled_from([1, 3, 15])))
    }
    calendar = SiteCalendar.for_protocol_site(p, p.sites[0].code, closures=closed)
    ids = [e.id for e in plan_arm(p, arm, anchor, calendar).events]
    actuals, pins = {}, {}
    for event_id in draw(st.lists(st.sampled_from(ids), max_size=4, unique=True)):
        shift = dt.timedelta(days=draw(st.integers(-10, 20)))
        choice = draw(st.sampled_from(["done", "missed", "skipped", "pin"]))
        if choice == "pin":
            pins[event_id] = Pin(anchor + shift + dt.timedelta(days=30), "moved")
        elif choice == "done":
            actuals[event_id] = Actual("done", anchor + shift + dt.timedelta(days=30))
        else:
            actuals[event_id] = Actual(choice)
    limited = draw(st.booleans())
    return p, arm, anchor, calendar, actuals, pins, limited


def capacity_for(limited):
    if not limited:
        return None
    return Capacity(
        {
            "theatre": Limit("theatre", per_weekday={1: 1, 3: 1}),
            "infusion": Limit("infusion", per_weekday={d: 1 for d in range(5)}),
            "rt_course": Limit("rt_course", per_week=1),
        }
    )


@settings(max_examples=30)
@given(histories())
def test_a_plan_with_everything_remembered_equals_one_worked_out_afresh(case):
    p, arm, anchor, calendar, actuals, pins, limited = case
    plan_arm(p, arm, anchor, calendar)  # remember this arm, these months and these days
    remembered = plan_arm(p, arm, anchor, calendar, actuals, pins, capacity_for(limited))
    afresh = uncached(p, arm, anchor, calendar, actuals, pins, capacity_for(limited))
    assert remembered == afresh
    assert remembered.warnings == afresh.warnings
    assert remembered.violations == afresh.violations
    assert remembered.deviations == afresh.deviations


def natars_with_surgery_at(offset: int):
    """NATARS with the neoadjuvant surgery's target moved: same ids, new content, new objects.

    Copied rather than read again, so the copy even keeps the original's remembered content
    hash: only the arm object itself tells the two apart.
    """
    base = protocol("NATARS")
    arm = base.arm("NEOADJUVANT")
    events = [
        e.model_copy(update={"timing": e.timing.model_copy(update={"offset": offset})})
        if e.key == "surgery"
        else e
        for e in arm.events
    ]
    moved = arm.model_copy(update={"events": events})
    return base.model_copy(update={"arms": [moved if a is arm else a for a in base.arms]})


@settings(max_examples=15)
@given(st.lists(st.integers(28, 56), min_size=2, max_size=4), ANCHORS)
def test_protocol_objects_that_differ_never_share_remembered_steps(offsets, anchor):
    calendar = SiteCalendar("CN")
    for offset in offsets:
        # Each variant is dropped before the next is made, so the next may get its old id.
        variant = natars_with_surgery_at(offset)
        plan = plan_arm(variant, "NEOADJUVANT", anchor, calendar)
        c3 = plan["ai.3"].start
        assert plan["surgery"].target == c3 + dt.timedelta(days=offset)
        assert plan == uncached(variant, "NEOADJUVANT", anchor, calendar)
        del variant, plan


@given(ANCHORS, st.integers(0, 120))
def test_month_arithmetic_agrees_with_pendulum(day, months):
    later = pendulum.Date(day.year, day.month, day.day).add(months=months)
    assert planner_module._add_months(day, months) == dt.date(later.year, later.month, later.day)


@settings(max_examples=20)
@given(st.sampled_from(ARMS), ANCHORS)
def test_planned_events_are_the_objects_their_constructor_makes(arm_of, anchor):
    pid, arm = arm_of
    p = protocol(pid)
    plan = plan_arm(p, arm, anchor, SiteCalendar.for_protocol_site(p, p.sites[0].code))
    names = [f.name for f in dataclasses.fields(PlannedEvent)]
    for e in plan.events:
        built = PlannedEvent(**vars(e))
        assert list(vars(e)) == names  # every field, in order, and nothing else
        assert e == built and hash(e) == hash(built) and repr(e) == repr(built)
        assert pickle.loads(pickle.dumps(e)) == e


def test_calendars_share_the_holiday_package_but_not_their_closures():
    closed = dt.date(2026, 3, 3)  # a Tuesday
    with_closure = SiteCalendar("CN", closures=[closed])
    plain = SiteCalendar("CN")
    assert not with_closure.is_working_day(closed)
    assert plain.is_working_day(closed)
    package = holidays.country_holidays("CN")
    day = dt.date(2025, 1, 1)
    while day < dt.date(2027, 1, 1):
        assert plain.is_working_day(day) == package.is_working_day(day), day
        day += dt.timedelta(days=1)
