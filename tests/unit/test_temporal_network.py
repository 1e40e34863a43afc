"""An arm's windows and hard constraints as a simple temporal network (issue 22, item 4).

A protocol whose rules cannot all hold is refused at validation, naming the few rules that
clash; every bundled protocol passes. The network is checked against the planner: whenever it
says the rules clash, no allocation day gives a plan free of hard-rule flags, and the set it
names is irreducible (drop any one rule and the rest can hold).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.errors import ProtocolError
from sarcoma_sched.protocol import list_protocols
from sarcoma_sched.protocol.loader import parse_protocol
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.protocol.temporal import _bounds, _consistent, conflicts
from sarcoma_sched.vocabulary import UNSAFE_FLAGS
from tests.unit.test_planner_oracle import TEMPLATE

ROOT = Path(__file__).parents[2]
SURGERY = (
    'timing = { anchor = { event = "ai", occurrence = "last", point = "start" }, offset = 35, '
    'earliest = 28, latest = 56, day_rule = "working_day", shift = "forward" }'
)


def test_every_bundled_arm_can_meet_all_its_rules():
    for item in list_protocols():
        for arm in item.protocol.arms:
            assert conflicts(arm) == [], (item.protocol.id, arm.id)


def _natars(surgery: str) -> str:
    text = (ROOT / "protocols" / "natars.toml").read_text(encoding="utf-8")
    assert SURGERY in text
    return text.replace(SURGERY, surgery)


def test_a_surgery_window_inside_the_anlotinib_washout_is_refused_with_the_rules_that_clash():
    text = _natars(SURGERY.replace("offset = 35, earliest = 28, latest = 56",
                                   "offset = 22, earliest = 20, latest = 25"))  # fmt: skip
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text, "natars-amended.toml")
    [problem] = caught.value.problems
    assert problem.source == "natars-amended.toml"
    assert problem.path == "arms[NEOADJUVANT]"
    rules = problem.message.split(": ", 1)[1].split(" vs ")
    # The dosing period (its start window and its 14 days), the surgery window and the
    # washout; not the ifosfamide washout, which the window alone still allows.
    assert rules == [
        "anlotinib.3 window: start of ai.3 +0 … +2 days",
        "anlotinib.3 lasts 14 days",
        "surgery window: start of ai.3 +20 … +25 days",
        "anlotinib_washout: start of surgery at least 14 days after end of last anlotinib",
    ]


@st.composite
def small_protocols(draw):
    every = draw(st.integers(7, 21))
    first_latest = draw(st.integers(0, 4))
    stay = draw(st.integers(1, 5))
    params = {
        "offset": draw(st.integers(0, first_latest)),
        "first_latest": first_latest,
        "shift": "forward",
        "stay": stay,
        "cycles": draw(st.integers(2, 3)),
        "every": every,
        "every_earliest": max(every - draw(st.integers(0, 2)), stay),
        "every_latest": every + draw(st.integers(0, 3)),
        "labs_before": draw(st.integers(1, 3)),
        "surgery_offset": draw(st.integers(3, 21)),
        "washout": draw(st.integers(0, 30)),
    }
    params["surgery_latest"] = params["surgery_offset"] + draw(st.integers(0, 7))
    return TEMPLATE.format(**params), params


@settings(max_examples=300, deadline=None)
@given(small_protocols(), st.dates(dt.date(2026, 1, 5), dt.date(2027, 10, 1)))
def test_a_clash_the_network_finds_is_one_no_plan_escapes(drawn, allocated):
    text, params = drawn
    named = conflicts(_unchecked(params).arm("A"))
    event("rules clash" if named else "rules can hold")
    try:
        parse_protocol(text, "<small>")
    except ProtocolError as error:
        [problem] = error.problems
        assert problem.path == "arms[A]" and "cannot all be met" in problem.message
        assert problem.message.endswith(" vs ".join(b.rule for b in named))
    else:
        assert named == []
        return
    arm = _unchecked(params).arm("A")
    nodes = 2 * len(occurrences(arm)) + 1
    assert not _consistent(named, nodes)
    for bound in named:  # irreducible: each rule named is needed for the clash
        assert _consistent([b for b in named if b is not bound], nodes)
    assert set(named) <= set(_bounds(arm, occurrences(arm)))
    # The planner cannot place it cleanly either, on a calendar with no closure.
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai")
    plan = plan_arm(_unchecked(params), "A", allocated, calendar)
    assert plan.violations or any(f.code in UNSAFE_FLAGS for e in plan.events for f in e.flags)


def _unchecked(params: dict[str, object]):
    """The drawn protocol without the checks that would refuse it: parsed with a surgery far
    out and no washout (always consistent), then given the drawn rules unvalidated."""
    loose = parse_protocol(
        TEMPLATE.format(**{**params, "surgery_offset": 60, "surgery_latest": 60, "washout": 0}),
        "<loose>",
    )
    arm = loose.arms[0]
    surgery = arm.events[1]
    timing = surgery.timing.model_copy(
        update={"offset": params["surgery_offset"], "earliest": params["surgery_offset"],
                "latest": params["surgery_latest"]}
    )  # fmt: skip
    washout = arm.constraints[0].model_copy(update={"min_days": params["washout"]})
    arm = arm.model_copy(
        update={
            "events": [arm.events[0], surgery.model_copy(update={"timing": timing})],
            "constraints": [washout],
        }
    )
    return loose.model_copy(update={"arms": [arm]})
