"""How a listing shows an event's days: one day, a run of consecutive days, or each day."""

from __future__ import annotations

import datetime as dt
import json
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.services.queries.days import days_text as _days_text


def _reference(days: list[str], time: str | None) -> str:
    # The definition: consecutive when each day is the day after the one before it.
    if len(days) == 1:
        text = days[0]
    elif all(
        (dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days == 1 for a, b in pairwise(days)
    ):
        text = f"{days[0]}..{days[-1]}"
    else:
        text = ", ".join(days)
    return f"{text} {time}" if time else text


@st.composite
def day_lists(draw):
    start = draw(st.dates(dt.date(2024, 1, 1), dt.date(2030, 12, 31)))
    steps = draw(st.lists(st.sampled_from([-1, 0, 1, 1, 1, 2, 3]), max_size=14))
    days = [start]
    for step in steps:
        days.append(days[-1] + dt.timedelta(days=step))
    return [d.isoformat() for d in days]


@given(
    day_lists(),
    st.sampled_from([None, "08:30"]),
    # As a list (PostgreSQL's driver decodes json), as the engine's JSON text, as other JSON.
    st.sampled_from(["list", "engine", "compact", "indented"]),
)
def test_the_shortcut_shows_the_days_as_the_definition_does(days, time, form):
    given_days = {
        "list": days,
        "engine": json.dumps(days),
        "compact": json.dumps(days, separators=(",", ":")),
        "indented": json.dumps(days, indent=1),
    }[form]
    assert _days_text(given_days, time) == _reference(days, time)


def test_radiotherapy_over_a_weekend_names_each_day():
    days = ["2027-03-04", "2027-03-05", "2027-03-08", "2027-03-09", "2027-03-10"]
    assert _days_text(days, None) == ", ".join(days)
    assert _days_text(json.dumps(days[2:]), None) == "2027-03-08..2027-03-10"
