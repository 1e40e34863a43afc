"""Planner behaviour on hand-made situations: closures, recorded history, DST, estimated years."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.calendar import Actual, SiteCalendar, diff_plans, load_holiday_table, plan_arm
from sarcoma_sched.protocol import find_protocol, parse_protocol

D = dt.date.fromisoformat
TABLES = Path(__file__).parents[1] / "calendars"


def tnt():
    return find_protocol("TNT-STS").protocol


def natars():
    return find_protocol("NATARS").protocol


def test_a_long_closure_after_allocation_moves_the_rt_window_past_it():
    """RT fraction 1 falls from the 5th to the 10th *working* day after allocation: a closure
    is no working day, so the window is counted over the days the site is open (planning the
    course takes a week of work, however long the department is shut)."""
    p = tnt()
    closed = [D("2026-03-01") + dt.timedelta(days=i) for i in range(40)]
    cal = SiteCalendar.for_protocol_site(p, "FJMUUH", closures=closed)
    plan = plan_arm(p, "TNT", D("2026-03-02"), cal)
    rt = plan["rt"]
    open_days = [
        d
        for d in (D("2026-03-03") + dt.timedelta(days=i) for i in range(80))
        if cal.is_working_day(d)
    ]
    assert (rt.earliest, rt.latest) == (open_days[4], open_days[9])
    assert rt.earliest > closed[-1] and rt.target == rt.earliest == rt.start
    assert not rt.flags and not [v for v in plan.violations if "rt" in v.events]


def test_when_every_start_would_split_the_course_the_overall_time_limit_is_named():
    p = tnt()
    # Close the site every Wednesday to Friday for the whole window: no 5 fractions fit in 9 days.
    closed = [
        D("2026-03-02") + dt.timedelta(days=i)
        for i in range(60)
        if (D("2026-03-02") + dt.timedelta(days=i)).weekday() in (2, 3, 4)
    ]
    cal = SiteCalendar.for_protocol_site(p, "FJMUUH", closures=closed)
    plan = plan_arm(p, "TNT", D("2026-03-02"), cal)
    rt = plan["rt"]
    assert rt.unsatisfiable
    assert "rt_overall_time" in rt.flags[0].message
    # A hard rule outranks the window: the course is kept whole on the first start after the
    # window where five fractions fit in the overall time, and the window is what is broken.
    assert rt.start > rt.latest and (rt.end - rt.start).days <= 8
    assert f"placed on {rt.start}" in rt.flags[0].message
    assert not any(v.rule == "rt_overall_time" for v in plan.violations)
    assert any(v.rule == "window" and "rt" in v.events for v in plan.violations)


def test_an_interrupted_rt_course_keeps_its_actual_days_and_is_reported():
    p = tnt()
    cal = SiteCalendar.for_protocol_site(p, "FJMUUH")
    plan = plan_arm(p, "TNT", D("2026-03-02"), cal)
    first = plan["rt"].start
    # Machine breakdown: two working days lost in the middle of the course.
    days = cal.working_days_from(first, 7)
    actual_days = (*days[:3], *days[5:])
    again = plan_arm(
        p,
        "TNT",
        D("2026-03-02"),
        cal,
        {"rt": Actual("done", first, actual_days, reason="linac breakdown")},
    )
    assert again["rt"].days == actual_days
    assert any(v.rule == "span" for v in again.violations)
    # C1D1 is timed from the actual last fraction.
    assert again["ai.1"].anchor_date == actual_days[-1]


def test_a_late_cycle_beyond_fourteen_days_needs_a_documented_reason():
    p = tnt()
    cal = SiteCalendar.for_protocol_site(p, "FJMUUH")
    plan = plan_arm(p, "TNT", D("2026-03-02"), cal)
    late = cal.next_working_day(plan["ai.2"].target + dt.timedelta(days=16))
    without = plan_arm(p, "TNT", D("2026-03-02"), cal, {"ai.2": Actual("done", late)})
    codes = {d.code for d in without.deviations if d.event == "ai.2"}
    assert codes == {"late", "needs_reason"}
    with_reason = plan_arm(
        p, "TNT", D("2026-03-02"), cal, {"ai.2": Actual("done", late, reason="grade 3 neutropenia")}
    )
    assert {d.code for d in with_reason.deviations if d.event == "ai.2"} == {"late"}
    changes = {c.event: c for c in diff_plans(plan, with_reason)}
    assert changes["ai.3"].shift_days > 0
    assert changes["surgery"].shift_days > 0
    assert "ai.1" not in changes


def test_surgery_done_too_soon_after_anlotinib_is_a_constraint_deviation():
    p = natars()
    cal = SiteCalendar.for_protocol_site(p, "PKUIH")
    plan = plan_arm(p, "NEOADJUVANT", D("2026-03-02"), cal)
    too_soon = plan["anlotinib.3"].end + dt.timedelta(days=10)
    again = plan_arm(p, "NEOADJUVANT", D("2026-03-02"), cal, {"surgery": Actual("done", too_soon)})
    messages = [d.message for d in again.deviations if d.code == "constraint"]
    assert any("anlotinib_washout" in m and "10 days after" in m for m in messages)


def test_plans_reaching_estimated_holiday_years_say_so_and_a_table_removes_that_year():
    p = natars()
    cal = SiteCalendar.for_protocol_site(p, "PKUIH")
    plan = plan_arm(p, "SURGERY_ONLY", D("2026-06-01"), cal)
    (warning,) = plan.warnings
    assert "estimated CN holidays for 2027–2031" in warning
    table = load_holiday_table(TABLES / "cn-2027-illustrative.toml")
    with_table = SiteCalendar.for_protocol_site(p, "PKUIH", tables=[table])
    (warning,) = plan_arm(p, "SURGERY_ONLY", D("2026-06-01"), with_table).warnings
    assert "for 2028–2031" in warning


DST_PROTOCOL = """
[study]
id = "DST"
registry_id = "NCT00000002"
title = "Weekly timed visits across a DST change"
version = "1"
phase = "2"
design = "single_arm"
time_zone = "Europe/Amsterdam"
holiday_country = "NL"

[[sites]]
code = "AMS"
name = "Amsterdam"

[allocation]
method = "fixed"
arm = "A"

[[arms]]
id = "A"
label = "A"

[[arms.events]]
key = "infusion"
kind = "infusion"
label = "Weekly infusion at 09:30"
repeat = { count = 4, every = 7, earliest = 6, latest = 8 }

[arms.events.timing]
anchor = "allocation"
offset = 1
earliest = 0
latest = 3
day_rule = "working_day"
time = 09:30:00
"""


@given(st.dates(dt.date(2024, 1, 1), dt.date(2035, 12, 31)))
def test_timed_events_keep_their_wall_clock_time_across_dst_changes(anchor):
    p = parse_protocol(DST_PROTOCOL)
    cal = SiteCalendar.for_protocol_site(p, "AMS")
    plan = plan_arm(p, "A", anchor, cal)
    zone = ZoneInfo("Europe/Amsterdam")
    for e in plan.events:
        start = e.starts_at("Europe/Amsterdam")
        assert start.strftime("%H:%M") == "09:30"
        assert start.date() == e.start  # dates are local dates in the site's zone
        # The offset is the zone's own on that local date: +01:00 in winter, +02:00 in summer.
        expected = dt.datetime.combine(e.start, dt.time(9, 30), tzinfo=zone).utcoffset()
        assert start.utcoffset() == expected


def test_a_plan_across_the_spring_change_has_both_offsets():
    p = parse_protocol(DST_PROTOCOL)
    cal = SiteCalendar.for_protocol_site(p, "AMS")
    # Clocks go forward in Amsterdam on Sunday 2026-03-29.
    plan = plan_arm(p, "A", D("2026-03-16"), cal)
    offsets = {e.starts_at("Europe/Amsterdam").utcoffset() for e in plan.events}
    assert offsets == {dt.timedelta(hours=1), dt.timedelta(hours=2)}
    assert [e.start.weekday() for e in plan.events] == [1, 1, 1, 1]  # Tuesdays
