"""Each arm planned across its sites' holiday blocks before the first patient (issue 22, item 4).

Every finding is one the planner really gives (re-planned from its example), a protocol with
room around every block gives none, and one with a window too short for Spring Festival is
caught there.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.calendar.stress import holiday_stress
from sarcoma_sched.protocol import find_protocol
from sarcoma_sched.protocol.loader import parse_protocol
from tests.unit.test_planner_oracle import TEMPLATE

ROOM = {"offset": 7, "first_latest": 14, "shift": "forward", "stay": 1, "cycles": 2,
        "every": 21, "every_earliest": 20, "every_latest": 28, "labs_before": 3,
        "surgery_offset": 28, "surgery_latest": 56, "washout": 14}  # fmt: skip


@pytest.mark.parametrize("name", ["NATARS", "TNT-STS"])
def test_every_finding_is_what_the_planner_gives_on_its_example_day(name):
    protocol = find_protocol(name).protocol
    findings = holiday_stress(protocol)
    assert findings  # the bundled windows are tight around Golden Week and Spring Festival
    for f in findings:
        assert f.allocations == sum(f.seasons.values()) > 0
        site = sorted(f.sites)[0]
        calendar = SiteCalendar.for_protocol_site(protocol, site, closures=f.example_closures)
        assert f.example_allocation is not None
        plan = plan_arm(protocol, f.arm, f.example_allocation, calendar)
        assert f.code in {str(flag.code) for flag in plan[f.event].flags}, str(f)


def test_an_arm_with_room_around_every_block_has_no_finding():
    protocol = parse_protocol(TEMPLATE.format(**ROOM), "<room>")
    assert holiday_stress(protocol) == []


def test_a_five_day_stay_with_no_room_is_caught_at_spring_festival():
    tight = {**ROOM, "offset": 0, "first_latest": 0, "stay": 5, "every_earliest": 21,
             "every_latest": 21}  # fmt: skip
    protocol = parse_protocol(TEMPLATE.format(**tight), "<tight>")
    findings = holiday_stress(protocol)
    codes = {(f.event, f.code) for f in findings}
    assert ("cycle.1", "holiday_block") in codes or ("cycle.1", "unsatisfiable") in codes
    spring = [f for f in findings if any(s.startswith("2026-02-15") for s in f.seasons)]
    assert spring
    assert all(dt.date(2025, 10, 1) < f.example_allocation < dt.date(2028, 1, 1) for f in findings)
