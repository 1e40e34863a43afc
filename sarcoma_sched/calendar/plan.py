"""What the planner returns: planned events, flags, violations, deviations, changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sarcoma_sched.vocabulary import UNSAFE_FLAGS, DeviationKind, EventStatus, FlagCode

__all__ = [
    "Actual",
    "Change",
    "Deviation",
    "Flag",
    "Pin",
    "Plan",
    "PlannedEvent",
    "Violation",
]


@dataclass(frozen=True)
class Actual:
    """What happened to one planned event, as a coordinator records it."""

    status: EventStatus  # one of RECORDABLE_STATUSES
    date: dt.date | None = None
    # The days actually used, when they differ from the protocol's span (an interrupted course).
    days: tuple[dt.date, ...] | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status == EventStatus.DONE and self.date is None:
            raise ValueError("a done event needs its actual date")
        if self.days is not None and (not self.days or self.date not in (None, self.days[0])):
            raise ValueError("actual days must start on the actual date")


@dataclass(frozen=True)
class Pin:
    """A coordinator's chosen start for a still-planned event (``reschedule``): the planner keeps
    it through every later re-plan, and events timed from it follow it."""

    date: dt.date
    reason: str = ""
    # A date that must stand even when a later re-plan makes it break a hard constraint
    # (PinPolicy.KEEP); by default the planner releases such a pin to the first valid day.
    keep: bool = False


@dataclass(frozen=True)
class Flag:
    """Something a coordinator must look at."""

    code: FlagCode
    message: str


@dataclass(frozen=True)
class PlannedEvent:
    id: str  # "rt", "ai.2", "labs.2", "follow_up.m12"
    key: str  # the protocol's event key
    kind: str
    label: str
    cycle: int | None
    anchor: str  # id of the occurrence it is timed from, or "allocation"
    anchor_date: dt.date
    target: dt.date
    earliest: dt.date
    latest: dt.date
    days: tuple[dt.date, ...]  # actual days once done
    show_as: str  # "days" (each a visit) or "period" (one span, e.g. oral dosing)
    working_days_only: bool  # the start must be a working day
    consecutive_working_days: bool  # every day a working day, none skipped (an RT course)
    time: dt.time | None = None
    status: EventStatus = EventStatus.PLANNED
    reason: str = ""
    flags: tuple[Flag, ...] = ()
    pinned: bool = False  # placed on a coordinator's date, not searched

    @property
    def start(self) -> dt.date:
        return self.days[0]

    @property
    def end(self) -> dt.date:
        return self.days[-1]

    @property
    def unsatisfiable(self) -> bool:
        """Its date breaks a hard rule, said by a flag: no day in the window meets them all,
        or a coordinator's date that must stand breaks one (``UNSAFE_FLAGS``)."""
        return any(f.code in UNSAFE_FLAGS for f in self.flags)

    @property
    def fixed(self) -> bool:
        """Done, missed and skipped events are history: re-planning never moves them."""
        return self.status != EventStatus.PLANNED

    def starts_at(self, time_zone: str) -> dt.datetime | None:
        """The zoned start of a timed event: the same wall-clock time whatever the DST offset."""
        if self.time is None:
            return None
        import pendulum

        t = self.time
        return pendulum.datetime(
            self.start.year,
            self.start.month,
            self.start.day,
            t.hour,
            t.minute,
            t.second,
            tz=time_zone,
        )


def _planned_event(values: dict[str, object]) -> PlannedEvent:
    """A PlannedEvent from every field's value, given in field order, without ``__init__``.

    The planner makes one per occurrence, and a frozen dataclass's ``__init__`` sets its 19
    fields one ``object.__setattr__`` call at a time: that was a third of a plan's cost. The
    event takes ``values`` as its ``__dict__`` (the caller hands it over): the same object
    ``PlannedEvent(**values)`` builds, as an unpickle rebuilds one (tests/unit/
    test_planner_fast_paths.py holds the two equal, field order included).
    """
    event = _new(PlannedEvent)
    _set(event, "__dict__", values)
    return event


_new = object.__new__
_set = object.__setattr__


@dataclass(frozen=True)
class Violation:
    """A broken rule: a declared gap, a window, a day rule, a span or the treatment order."""

    rule: str  # constraint id, or "window", "working_day", "span", "order"
    events: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Deviation:
    event: str
    code: DeviationKind
    days: int | None
    message: str


@dataclass(frozen=True)
class Change:
    event: str
    old: tuple[dt.date, ...]
    new: tuple[dt.date, ...]

    @property
    def shift_days(self) -> int:
        return (self.new[0] - self.old[0]).days

    def __str__(self) -> str:
        sign = "+" if self.shift_days >= 0 else ""
        return f"{self.event}: {self.old[0]} → {self.new[0]} ({sign}{self.shift_days} days)"


@dataclass(frozen=True)
class Plan:
    protocol_id: str
    protocol_hash: str
    arm_id: str
    allocation_date: dt.date
    time_zone: str
    events: tuple[PlannedEvent, ...]
    warnings: tuple[str, ...] = ()
    violations: tuple[Violation, ...] = ()
    deviations: tuple[Deviation, ...] = ()
    _index: dict[str, PlannedEvent] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({e.id: e for e in self.events})

    def __getitem__(self, event_id: str) -> PlannedEvent:
        return self._index[event_id]

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._index

    def occurrences(self, key: str) -> list[PlannedEvent]:
        return [e for e in self.events if e.key == key]

    @property
    def unsatisfiable(self) -> list[PlannedEvent]:
        return [e for e in self.events if e.unsatisfiable]
