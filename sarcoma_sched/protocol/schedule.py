"""Arms and their events: timing relative to anchors, multi-day elements, cycles, follow-up series.

The timing model follows CDISC trial design (SDTM TA/TE/TV) and USDM timings: every event is
placed relative to an anchor (allocation, or another event's first or last day) by an offset with
an earliest/latest window, then moved to a working day if its day rule says so. All offsets are in
calendar days, so "D1" of a cycle is offset 0 and "D14" is offset 13.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator

from sarcoma_sched.limits import EVENT_LABEL_LENGTH, MAX_CYCLES, MAX_SPAN_DAYS
from sarcoma_sched.protocol.base import (
    ArmId,
    Days,
    Key,
    Model,
    Months,
    NonNegativeDays,
    PositiveDays,
)
from sarcoma_sched.vocabulary import EVENT_KINDS

__all__ = [
    "ALLOCATION",
    "Arm",
    "Component",
    "Constraint",
    "DayRule",
    "Event",
    "EventKind",
    "EventRef",
    "Repeat",
    "Series",
    "SeriesPhase",
    "Shift",
    "Span",
    "Timing",
    "Window",
]

# The one anchor that is not an event: the day the patient was allocated (day 0 of the study).
ALLOCATION = "allocation"

EventKind = Literal[EVENT_KINDS]  # type: ignore[valid-type]
DayRule = Literal["working_day", "any_day"]
# "nearest" prefers the earlier day on a tie: for a clinic visit, earlier is the safer miss.
Shift = Literal["forward", "backward", "nearest"]


class EventRef(Model):
    """A point on the study clock: allocation, or the first/last day of an event's occurrence."""

    event: str = Field(min_length=1)
    occurrence: Literal["first", "last"] = "last"
    point: Literal["start", "end"] = "start"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `anchor = "allocation"` reads better in TOML than a one-key table.
        if isinstance(data, str):
            return {"event": data}
        return data


class Window(Model):
    """Target offset and window (both in days from the anchor) plus the day rule."""

    offset: Days
    earliest: Days
    latest: Days
    day_rule: DayRule = "any_day"
    shift: Shift = "forward"
    # How earliest and latest count: calendar days from the anchor, or the site's working days
    # after it (5 … 10: from the 5th to the 10th working day after, so a window stays a week
    # of work long across Golden Week). The target offset is always in calendar days; a target
    # outside a working-day window is moved to its nearer edge.
    window_counting: Literal["calendar_days", "working_days"] = "calendar_days"
    # A wall-clock time makes the event a timed one in the site's zone; without it, all-day.
    time: dt.time | None = None


class Timing(Window):
    anchor: EventRef


class Span(Model):
    """How many days one occurrence occupies.

    RT: 5 fractions on consecutive *working* days. Inpatient infusion D1-D5: 5 consecutive
    *calendar* days (the ward works weekends). Oral anlotinib D1-D14: 14 calendar days shown as one
    period, not 14 visits.
    """

    days: int = Field(default=1, ge=1, le=MAX_SPAN_DAYS)
    day_counting: Literal["calendar_days", "working_days"] = "calendar_days"
    show_as: Literal["days", "period"] = "days"


class Repeat(Model):
    """Cycles: occurrence n+1 is timed from occurrence n's actual D1 (so delays chain)."""

    count: int = Field(ge=2, le=MAX_CYCLES)
    every: PositiveDays
    earliest: PositiveDays
    latest: PositiveDays
    # Beyond target + this many days a late cycle needs a documented reason (toxicity delay).
    reason_required_after: NonNegativeDays | None = None


class SeriesPhase(Model):
    every_months: Months
    until_months: Months
    window_days: NonNegativeDays


class Series(Model):
    """Follow-up visits on a fixed clock: every N months until month M, then the next phase."""

    anchor: EventRef
    phases: list[SeriesPhase] = Field(min_length=1)
    day_rule: DayRule = "working_day"
    shift: Shift = "nearest"
    landmarks_months: list[Months] = Field(default_factory=list)


class Component(Model):
    """Part of every occurrence of a repeated event, timed from that occurrence's D1."""

    key: Key
    kind: EventKind
    label: str = Field(min_length=1, max_length=EVENT_LABEL_LENGTH)
    description: str = ""
    timing: Window
    span: Span = Field(default_factory=Span)


class Event(Model):
    key: Key
    kind: EventKind
    label: str = Field(min_length=1, max_length=EVENT_LABEL_LENGTH)
    description: str = ""
    # Exactly one of timing (a single or repeated event) and series (follow-up visits).
    timing: Timing | None = None
    series: Series | None = None
    span: Span = Field(default_factory=Span)
    repeat: Repeat | None = None
    components: list[Component] = Field(default_factory=list)


class Constraint(Model):
    """A hard gap between two points: ``min_days <= to - from <= max_days``, and, with
    ``not_between = [a, b]``, ``to - from`` not in ``a … b`` (no scan in the 14 days after
    surgery: before it, or from day 15 on)."""

    id: Key
    description: str = Field(min_length=1)
    from_: EventRef = Field(alias="from")
    to: EventRef
    min_days: Days | None = None
    max_days: Days | None = None
    not_between: tuple[Days, Days] | None = None


class Arm(Model):
    id: ArmId
    label: str = Field(min_length=1)
    description: str = ""
    events: list[Event] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
