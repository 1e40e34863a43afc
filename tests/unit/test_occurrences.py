"""One expansion of an arm into occurrences: the planner and the SDTM visits agree on it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.exports.sdtm import trial_design
from sarcoma_sched.protocol import Arm, Protocol, list_protocols
from sarcoma_sched.protocol.occurrences import DAYS_PER_MONTH, occurrences
from tests.strategies import protocols

PROTOCOLS = Path(__file__).parents[2] / "protocols"
BUNDLED = [item.protocol for item in list_protocols(PROTOCOLS)]
ARMS = [(p, arm.id) for p in BUNDLED for arm in p.arms]
# Oral dosing at home is a period in the patient's calendar, not a visit (SDTM TV leaves it out).
NOT_VISITS = ("oral",)


def tv_visits(protocol: Protocol, arm_id: str) -> list[tuple[str, int]]:
    """(occurrence id, VISITDY) of the arm's TV rows in VISITNUM order; a row with ARMCD
    empty is a visit of every arm."""
    rows = [r for r in trial_design(protocol)["TV"] if r["ARMCD"] in ("", arm_id)]
    rows.sort(key=lambda r: r["VISITNUM"])
    # TVSTRL starts with the occurrence id the schedule database uses: "ai.2: from …".
    return [(r["TVSTRL"].split(":", 1)[0], r["VISITDY"]) for r in rows]


def assert_plan_and_tv_agree(protocol: Protocol, arm_id: str, calendar: SiteCalendar) -> None:
    plan = plan_arm(protocol, arm_id, dt.date(2025, 3, 3), calendar)
    arm = protocol.arm(arm_id)
    assert [e.id for e in plan.events] == [o.id for o in occurrences(arm)]
    visits = [e.id for e in plan.events if e.kind not in NOT_VISITS]
    tv = tv_visits(protocol, arm_id)
    # TV numbers visits by nominal study day; the planner's dates move with the site calendar
    # (surgery can fall after the month-3 follow-up), so the plan's visits are put on TV's days,
    # ties kept in the planner's order, and must then read exactly as TV's VISITNUM order.
    day = dict(tv)
    assert len(day) == len(tv), "a visit id appears twice in the arm's TV"
    assert set(visits) == set(day)
    by_day = sorted(visits, key=lambda i: (day[i], visits.index(i)))
    assert by_day == [i for i, _ in tv]


@pytest.mark.parametrize(("protocol", "arm_id"), ARMS, ids=[f"{p.id}-{a}" for p, a in ARMS])
def test_every_bundled_arm_plans_the_occurrences_sdtm_lists_as_visits(protocol, arm_id):
    for site in protocol.sites:
        calendar = SiteCalendar.for_protocol_site(protocol, site.code)
        assert_plan_and_tv_agree(protocol, arm_id, calendar)


def test_tnt_sts_occurrences_carry_cycle_anchor_window_and_nominal_days():
    p = next(p for p in BUNDLED if p.id == "TNT-STS")
    occ = {o.id: o for o in occurrences(p.arm("TNT"))}
    labs = occ["labs.2"]
    assert (labs.key, labs.event, labs.cycle, labs.kind) == ("labs", "ai", 2, "labs")
    assert (labs.anchor.id, labs.anchor.start, str(labs.anchor)) == ("ai.2", True, "start of ai.2")
    assert (labs.offset, labs.earliest, labs.latest) == (-1, -3, 0)
    ai1 = occ["ai.1"]
    assert str(ai1.anchor) == "end of rt"
    # rt: offset 7 from allocation, 5 days; ai.1 14 days after rt's last day; ai.2 21 later.
    assert (occ["rt"].nominal.start, occ["rt"].nominal.end) == (7, 11)
    assert ai1.nominal.start == 25 and occ["ai.2"].nominal.start == 46
    assert labs.nominal.start == 45 and labs.study_day == 46
    m12 = occ["follow_up.m12"]
    assert (m12.month, m12.months, m12.cycle) == (12, 12, None)
    assert m12.anchor.id == "surgery"


def test_a_landmark_follow_up_visit_says_so_in_the_calendar_label_only():
    p = next(p for p in BUNDLED if p.id == "NATARS")
    occ = {o.id: o for o in occurrences(p.arm("NEOADJUVANT"))}
    m12 = occ["follow_up.m12"]
    assert m12.landmark and m12.calendar_label == f"{m12.label} (landmark)"
    assert not occ["follow_up.m3"].landmark
    assert occ["follow_up.m3"].calendar_label == occ["follow_up.m3"].label


def every_arm_agrees(protocol: Protocol) -> None:
    calendar = SiteCalendar.for_protocol_site(protocol, protocol.sites[0].code)
    for arm in protocol.arms:
        occ = occurrences(arm)
        ids = [o.id for o in occ]
        assert len(ids) == len(set(ids)), ids
        for i, o in enumerate(occ):
            # Every occurrence is timed from allocation or from one placed before it.
            assert o.anchor.index is None or o.anchor.index < i
            base = 0
            if o.anchor.index is not None:
                a = occ[o.anchor.index].nominal
                base = a.start if o.anchor.start else a.end
            base += round(o.months * DAYS_PER_MONTH)
            assert o.nominal.start == base + o.offset
            assert (o.nominal.earliest, o.nominal.latest) == (base + o.earliest, base + o.latest)
            assert o.nominal.end == o.nominal.start + o.span.days - 1
        for e in arm.events:
            if e.repeat is not None:
                cycles = [f"{e.key}.{n}" for n in range(1, e.repeat.count + 1)]
                assert [o.id for o in occ if o.key == e.key] == cycles
                for c in e.components:
                    assert [o.id for o in occ if o.key == c.key] == [
                        f"{c.key}.{n}" for n in range(1, e.repeat.count + 1)
                    ]
        assert len(arm.id) <= 20  # ARMCD is the arm id itself
        assert_plan_and_tv_agree(protocol, arm.id, calendar)


@settings(max_examples=60, deadline=None)
@given(protocols())
def test_every_generated_arm_has_unique_occurrences_the_planner_and_tv_both_use(protocol):
    every_arm_agrees(protocol)


def repeated_arm(count: int, every: int, months: list[int]) -> Arm:
    phases, until = [], 0
    for m in months:
        until += m
        phases.append({"every_months": m, "until_months": until, "window_days": 7})
    return Arm.model_validate(
        {
            "id": "A",
            "label": "arm",
            "events": [
                {
                    "key": "c",
                    "kind": "infusion",
                    "label": "Cycle",
                    "timing": {"anchor": "allocation", "offset": 0, "earliest": 0, "latest": 3},
                    "repeat": {"count": count, "every": every, "earliest": every, "latest": every},
                    "components": [
                        {
                            "key": "labs",
                            "kind": "labs",
                            "label": "Labs",
                            "timing": {"offset": -1, "earliest": -2, "latest": 0},
                        }
                    ],
                },
                {
                    "key": "fu",
                    "kind": "follow_up",
                    "label": "Follow-up",
                    "series": {"anchor": {"event": "c", "occurrence": "last"}, "phases": phases},
                },
            ],
        }
    )


@given(
    st.integers(2, 40),
    st.integers(1, 60),
    st.lists(st.integers(1, 12), min_size=1, max_size=4),
)
def test_cycle_and_visit_ids_stay_unique_for_any_repeat_count(count, every, months):
    occ = occurrences(repeated_arm(count, every, months))
    ids = [o.id for o in occ]
    assert len(ids) == len(set(ids))
    cycles = [o for o in occ if o.key == "c"]
    assert [o.cycle for o in cycles] == list(range(1, count + 1))
    assert [o.nominal.start for o in cycles] == [every * n for n in range(count)]
    visits = [o for o in occ if o.key == "fu"]
    assert [o.month for o in visits] == [sum(months[: i + 1]) for i in range(len(months))]
    assert {o.anchor.id for o in visits} == {f"c.{count}"}
    assert len(occ) == 2 * count + len(months)
