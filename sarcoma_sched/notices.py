"""What a coordinator must look at in a calendar, as codes with a message: every event's flags
and the notices about the plan as a whole (holidays that are still an estimate).

One list for every output: ``plan``, ``allocate``, ``record`` and ``schedule`` hand the events
they show (a fresh plan's, or the stored rows') to ``notices_of`` and print what it returns in
each format, so a warning cannot reach the table and miss the JSON. Pure: no database.

Outside ``calendar`` so that reading a stored schedule needs neither the planner nor the
``holidays`` package (``calendar``'s package imports both): of a calendar the notices read only
which years are official and the country (``HolidayYears``), which ``holiday_years`` answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sarcoma_sched.vocabulary import EventStatus, FlagCode

__all__ = ["Coded", "HolidayYears", "Notice", "Placed", "estimated_holidays", "notices_of"]


@dataclass(frozen=True)
class Notice:
    """A warning: a flag of one event (``events`` names it), or a fact about the plan that
    touches several (``estimated_holidays``: the events that rely on the estimate)."""

    code: str  # a FlagCode; a stored row keeps whatever code it was written with
    message: str
    events: tuple[str, ...] = ()


class Coded(Protocol):
    """A flag: the planner's ``Flag``, or one read back from a stored row."""

    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...


class Placed(Protocol):
    """An event as the notices read it: a ``PlannedEvent``, or a stored row seen through its
    protocol (``services.queries.schedule``)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def working_days_only(self) -> bool: ...
    @property
    def earliest(self) -> dt.date: ...
    @property
    def latest(self) -> dt.date: ...
    @property
    def days(self) -> tuple[dt.date, ...]: ...
    @property
    def flags(self) -> Sequence[Coded]: ...


class HolidayYears(Protocol):
    """What the notices ask of a calendar: a ``SiteCalendar``, or a stored schedule's
    ``holiday_years.OfficialYears``."""

    @property
    def country(self) -> str: ...
    def is_official(self, year: int) -> bool: ...
    def estimated_years(self, days: Iterable[dt.date]) -> list[int]: ...


def estimated_holidays(events: Iterable[Placed], calendar: HolidayYears) -> Notice | None:
    """The planned working-day events whose window or days fall in a year whose holidays the
    ``holidays`` package only estimates (no announced make-up working days), in one notice.

    The rule and the words of the planner's ``Plan.warnings``: tests/unit/test_notices.py holds
    the two equal for every plan, so a stored schedule says what its plan said.
    """
    relying: list[Placed] = []
    years: set[int] = set()
    official = calendar.is_official
    for e in events:
        if e.status != EventStatus.PLANNED or not e.working_days_only:
            continue
        days = e.days
        first = min(e.earliest, e.latest, days[0]).year
        last = max(e.earliest, e.latest, days[-1]).year
        if first == last:
            estimated = [] if official(first) else [first]
        elif last == first + 1:
            estimated = [y for y in (first, last) if not official(y)]
        else:
            estimated = calendar.estimated_years((e.earliest, e.latest, *days))
        if estimated:
            relying.append(e)
            years.update(estimated)
    if not relying:
        return None
    first_year, last_year = min(years), max(years)
    span = str(first_year) if first_year == last_year else f"{first_year}–{last_year}"
    first_event = relying[0]
    return Notice(
        FlagCode.ESTIMATED_HOLIDAYS,
        f"{len(relying)} working-day event(s) from {first_event.id} ({first_event.days[0]}) on "
        f"rely on estimated {calendar.country} holidays for {span} (no announced make-up "
        f"working days); re-plan with the official table when a year is announced",
        tuple(e.id for e in relying),
    )


def notices_of(events: Sequence[Placed], calendar: HolidayYears) -> tuple[Notice, ...]:
    """Every warning of a calendar, in the order the outputs print them: the notice about the
    plan first, then each event's flags in plan order. A cancelled event's flags are left out:
    they were about a date that is no longer kept."""
    found = [estimated_holidays(events, calendar)]
    found += [
        Notice(flag.code, flag.message, (e.id,))
        for e in events
        if e.status != EventStatus.CANCELLED
        for flag in e.flags
    ]
    return tuple(n for n in found if n is not None)
