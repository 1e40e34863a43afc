"""Each arm against its sites' worst seasons, before the first patient (issue 22, item 4).

The temporal network (``protocol.temporal``) proves the rules can hold on some calendar; this
asks whether they hold on the sites' own. Every holiday block of three days or more in the years
the site calendars know (Spring Festival with its make-up Saturdays, Golden Week, …) is tried
as it is and with a three-day closure joined to either end (a ward that reopens late, or shuts
early): the arm is planned from every allocation day that puts a treatment occurrence's window
across the block, and each event is reported with how many of those allocation days left it
with no day meeting every rule (flagged ``unsatisfiable`` or ``no_valid_day``) or a stay into the
block. Follow-up visits, months out, are left to the corpus (``benchmarks.plan_corpus``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from sarcoma_sched.calendar.planner import plan_arm
from sarcoma_sched.calendar.workdays import SiteCalendar
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.vocabulary import FlagCode

__all__ = ["Finding", "holiday_stress"]

DAY = dt.timedelta(days=1)
_HARD = frozenset({FlagCode.UNSATISFIABLE, FlagCode.NO_VALID_DAY})
_CLOSURE_DAYS = 3


@dataclass
class Finding:
    """One event of one arm that a site's worst season leaves without a sound day."""

    arm: str
    event: str  # the occurrence id (ai.2)
    code: str  # the flag
    sites: set[str] = field(default_factory=set)
    seasons: dict[str, int] = field(default_factory=dict)  # season → allocation days flagged
    example: str = ""  # the first allocation day that gave it, and the flag's message
    # That allocation day and the closures of its season: the plan to look at.
    example_allocation: dt.date | None = None
    example_closures: tuple[dt.date, ...] = ()

    @property
    def allocations(self) -> int:
        return sum(self.seasons.values())

    def __str__(self) -> str:
        worst = max(self.seasons, key=lambda s: (self.seasons[s], s))
        return (
            f"{self.arm} {self.event}: {self.code} for {self.allocations} allocation day(s) in "
            f"{len(self.seasons)} season(s) at {', '.join(sorted(self.sites))}, most around "
            f"{worst} ({self.seasons[worst]}); e.g. {self.example}"
        )


def holiday_stress(protocol: Protocol, years: tuple[int, ...] = (2026, 2027)) -> list[Finding]:
    """Events some site's holiday season (with a closure beside it) leaves unplaceable."""
    found: dict[tuple[str, str, str], Finding] = {}
    seen: dict[tuple[str, str | None, str], str] = {}
    for site in protocol.sites:
        calendar = SiteCalendar.for_protocol_site(protocol, site.code)
        key = (calendar.country, calendar.subdivision, calendar.time_zone)
        if key in seen:  # one calendar tried once, credited to the first site that has it
            continue
        seen[key] = site.code
        for first, last in _blocks(calendar, years):
            for name, closures in _variants(first, last):
                shut = SiteCalendar.for_protocol_site(protocol, site.code, closures=closures)
                season = f"{first:%Y-%m-%d} … {last:%Y-%m-%d}{name}"
                _try(protocol, site.code, shut, first, last, season, found)
    return sorted(found.values(), key=lambda f: (f.arm, f.event, f.code))


def _blocks(calendar: SiteCalendar, years: tuple[int, ...]) -> Iterator[tuple[dt.date, dt.date]]:
    day, end = dt.date(min(years), 1, 1), dt.date(max(years), 12, 31)
    while day <= end:
        block = calendar.holiday_block(day)
        if block is not None:
            yield block
            day = block[1]
        day += DAY


def _variants(first: dt.date, last: dt.date) -> Iterator[tuple[str, list[dt.date]]]:
    yield "", []
    after = [last + DAY * (i + 1) for i in range(_CLOSURE_DAYS)]
    yield f" with a {_CLOSURE_DAYS}-day closure after it", after
    before = [first - DAY * (i + 1) for i in range(_CLOSURE_DAYS)]
    yield f" with a {_CLOSURE_DAYS}-day closure before it", before


def _try(
    protocol: Protocol,
    site: str,
    calendar: SiteCalendar,
    first: dt.date,
    last: dt.date,
    season: str,
    found: dict[tuple[str, str, str], Finding],
) -> None:
    for arm in protocol.arms:
        treatment = [o for o in occurrences(arm) if not o.months]
        reach = max(o.nominal.latest + o.span.days for o in treatment)
        allocation = first - (reach + _CLOSURE_DAYS) * DAY
        while allocation <= last:
            plan = plan_arm(protocol, arm.id, allocation, calendar)
            for e in plan.events:
                if e.key not in {o.key for o in treatment}:
                    continue
                for f in e.flags:
                    if f.code not in _HARD and f.code != FlagCode.HOLIDAY_BLOCK:
                        continue
                    item = found.setdefault(
                        (arm.id, e.id, str(f.code)), Finding(arm.id, e.id, str(f.code))
                    )
                    item.sites.add(site)
                    item.seasons[season] = item.seasons.get(season, 0) + 1
                    if not item.example:
                        item.example = f"allocated {allocation}: {f.message}"
                        item.example_allocation = allocation
                        item.example_closures = tuple(sorted(calendar.closures))
            allocation += DAY
