"""The warnings every output prints (``sarcoma_sched.notices``): the planner's estimated-holiday
warning as a coded notice naming its events, and every flag beside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, load_holiday_table, notices_of, plan_arm
from sarcoma_sched.notices import estimated_holidays
from sarcoma_sched.protocol import find_protocol
from sarcoma_sched.vocabulary import EventStatus, FlagCode

TABLES = Path(__file__).parents[1] / "calendars"
ARMS = [
    ("NATARS", "NEOADJUVANT", "PKUIH"),
    ("NATARS", "SURGERY_ONLY", "BJFH"),
    ("TNT-STS", "TNT", "FJMUUH"),
]


@settings(max_examples=60, deadline=None)
@given(
    arm=st.sampled_from(ARMS),
    anchor=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2028, 12, 31)),
    table=st.booleans(),
)
def test_the_estimate_notice_says_what_the_planner_warns_and_names_the_events_it_means(
    arm, anchor, table
):
    protocol_id, arm_id, site = arm
    protocol = find_protocol(protocol_id).protocol
    tables = [load_holiday_table(TABLES / "cn-2027-illustrative.toml")] if table else []
    calendar = SiteCalendar.for_protocol_site(protocol, site, tables=tables)
    plan = plan_arm(protocol, arm_id, anchor, calendar)
    notice = estimated_holidays(plan.events, calendar)
    # One truth: the planner's words, with a code and the events a script can act on.
    assert ([notice.message] if notice else []) == list(plan.warnings)
    if notice is not None:
        assert notice.code == FlagCode.ESTIMATED_HOLIDAYS
        assert notice.events and notice.events[0] in notice.message
        named = [plan[e] for e in notice.events]
        assert all(e.working_days_only and e.status == EventStatus.PLANNED for e in named)
        assert all(
            not all(calendar.is_official(d.year) for d in (e.earliest, e.latest, *e.days))
            for e in named
        )
    notices = notices_of(plan.events, calendar)
    flags = [(e.id, f.code, f.message) for e in plan.events for f in e.flags]
    assert [(n.events[0], n.code, n.message) for n in notices[bool(notice) :]] == flags
    assert (notices[0] == notice) if notice else all(len(n.events) == 1 for n in notices)


def test_an_official_table_for_every_year_leaves_no_estimate_notice():
    protocol = find_protocol("NATARS").protocol
    calendar = SiteCalendar.for_protocol_site(protocol, "PKUIH")
    plan = plan_arm(protocol, "SURGERY_ONLY", dt.date(2025, 3, 3), calendar)
    # Surgery and the month-3 to month-18 scans fall in 2025-2026, announced years; the later
    # scans reach 2027 on.
    notice = estimated_holidays(plan.events, calendar)
    assert notice is not None and notice.events[0] == "follow_up.m24"
    early = [e for e in plan.events if e.end.year <= 2026 and e.latest.year <= 2026]
    assert estimated_holidays(early, calendar) is None
