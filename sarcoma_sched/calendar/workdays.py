"""A site's working-day calendar: weekends, public holidays with make-up working days, closures.

Precedence, strongest first: a coordinator's closure or extra working day; an official table
loaded for that year; the ``holidays`` package (which knows China's make-up Saturdays and Sundays
for the years the State Council has announced).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sarcoma_sched.calendar.holiday_table import HolidayTable
from sarcoma_sched.holiday_years import OfficialYears, official_through

if TYPE_CHECKING:
    from sarcoma_sched.protocol.model import Protocol

__all__ = ["SiteCalendar", "official_through"]

# The ``holidays`` package's answers per (country, subdivision), shared by every calendar: a
# service builds a calendar per request (the site's closures change), and the package works out
# a whole year of holidays the first time it is asked about a day in it, milliseconds a year.
# Its answers never change, so they are worked out once per process. The package fills its
# years lazily and is not safe to fill from two threads at once, hence the lock.
_PACKAGES: dict[tuple[str, str | None], tuple[Any, dict[dt.date, bool]]] = {}
_PACKAGE_LOCK = threading.RLock()


def _package_calendar(country: str, subdivision: str | None) -> tuple[Any, dict[dt.date, bool]]:
    with _PACKAGE_LOCK:
        shared = _PACKAGES.get((country, subdivision))
        if shared is None:
            import holidays

            package = holidays.country_holidays(country, subdiv=subdivision)
            shared = _PACKAGES[country, subdivision] = (package, {})
        return shared


class SiteCalendar:
    """Answers "is this local date a working day at this site?" and walks working days."""

    def __init__(
        self,
        country: str,
        subdivision: str | None = None,
        *,
        time_zone: str = "UTC",
        closures: Iterable[dt.date] = (),
        extra_working_days: Iterable[dt.date] = (),
        tables: Iterable[HolidayTable] = (),
        inpatient_over_holidays: bool = False,
    ) -> None:
        self.country = country
        # The site lets an inpatient stay run into a holiday block (``site set``).
        self.inpatient_over_holidays = inpatient_over_holidays
        self.subdivision = subdivision
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self.closures = frozenset(closures)
        self._open: SiteCalendar | None = None
        self.extra_working_days = frozenset(extra_working_days)
        overlap = self.closures & self.extra_working_days
        if overlap:
            raise ValueError(f"{min(overlap)} is both a closure and an extra working day")
        self._tables: dict[int, HolidayTable] = {}
        for table in tables:
            if table.country != country:
                raise ValueError(f"a {table.country} holiday table cannot serve a {country} site")
            self._tables[table.year] = table
        self._off: dict[dt.date, str] = {}
        self._on: dict[dt.date, str] = {}
        for table in self._tables.values():
            self._off.update(table.days_off())
            self._on.update(table.make_up_days())
        self._package, self._package_days = _package_calendar(country, subdivision)
        self._cache: dict[dt.date, bool] = {}
        self._blocks: dict[tuple[dt.date, int], tuple[dt.date, dt.date] | None] = {}
        self._official: dict[int, bool] = {}
        self._years: OfficialYears | None = None
        self._counted: dict[tuple[dt.date, int], dt.date] = {}

    @classmethod
    def for_protocol_site(
        cls, protocol: Protocol, site_code: str, **overrides: Any
    ) -> SiteCalendar:
        """The calendar of a protocol's site, its own settings overriding the study's."""
        site = protocol.site(site_code)
        study = protocol.study
        if site.holiday_country:
            country, subdivision = site.holiday_country, site.holiday_subdivision
        else:
            country = study.holiday_country
            subdivision = site.holiday_subdivision or study.holiday_subdivision
        return cls(country, subdivision, time_zone=site.time_zone or study.time_zone, **overrides)

    # -- facts about one day -------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = self._working(day)
        return cached

    def _working(self, day: dt.date) -> bool:
        if day in self.closures:
            return False
        if day in self.extra_working_days:
            return True
        if day.year in self._tables or day in self._off or day in self._on:
            if day in self._on:
                return True
            return day.weekday() < 5 and day not in self._off
        working = self._package_days.get(day)
        if working is None:
            with _PACKAGE_LOCK:
                working = self._package_days[day] = bool(self._package.is_working_day(day))
        return working

    def is_working_day_apart_from_closures(self, day: dt.date) -> bool:
        """Whether ``day`` would be a working day had no closure been recorded: the protocol's
        day rule (weekends, public holidays, make-up days), not the site's operational record.
        An event recorded done on a closed day was given, so the closure (often entered after
        the fact) says nothing about whether the day broke the protocol's rule."""
        return self.apart_from_closures().is_working_day(day)

    def apart_from_closures(self) -> SiteCalendar:
        """This calendar without its closures (the same holidays, tables and settings)."""
        if not self.closures:
            return self
        if self._open is None:
            self._open = SiteCalendar(
                self.country,
                self.subdivision,
                time_zone=self.time_zone,
                extra_working_days=self.extra_working_days,
                tables=self._tables.values(),
                inpatient_over_holidays=self.inpatient_over_holidays,
            )
        return self._open

    def why_not_working(self, day: dt.date) -> str | None:
        """A coordinator's explanation of a non-working day, or None for a working day."""
        if self.is_working_day(day):
            return None
        if day in self.closures:
            return "site closure"
        if day in self._off:
            return self._off[day]
        if day.year in self._tables:
            name = None
        else:
            with _PACKAGE_LOCK:
                name = self._package.get(day)
        if name:
            return str(name)
        return "weekend"

    def is_closed(self, day: dt.date) -> bool:
        """A closure recorded for the site (ward shut, strike): no treatment at all that day,
        weekend or not, unlike a day that is merely not a working day."""
        return day in self.closures

    def holiday_block(self, day: dt.date, min_days: int = 3) -> tuple[dt.date, dt.date] | None:
        """The run of at least ``min_days`` consecutive non-working days ``day`` lies in (a
        public holiday joined to a weekend, Golden Week, Spring Festival), or None. A weekend
        alone is two days: never a block."""
        if self.is_working_day(day):
            return None
        key = (day, min_days)
        if key in self._blocks:
            return self._blocks[key]
        first = last = day
        while not self.is_working_day(first - dt.timedelta(days=1)):
            first -= dt.timedelta(days=1)
            if (day - first).days > 366:
                break
        while not self.is_working_day(last + dt.timedelta(days=1)):
            last += dt.timedelta(days=1)
            if (last - day).days > 366:
                break
        block = (first, last) if (last - first).days + 1 >= min_days else None
        self._blocks[key] = block
        return block

    def is_official(self, year: int) -> bool:
        """Whether this year's holidays come from an announced arrangement, not an estimate."""
        official = self._official.get(year)
        if official is None:
            if self._years is None:
                self._years = OfficialYears.of(self.country)
            official = self._official[year] = year in self._tables or self._years.is_official(year)
        return official

    def estimated_years(self, days: Iterable[dt.date]) -> list[int]:
        return sorted({d.year for d in days if not self.is_official(d.year)})

    # -- walking -------------------------------------------------------------------------------

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a working day, else the next one."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def previous_working_day(self, day: dt.date) -> dt.date:
        while not self.is_working_day(day):
            day -= dt.timedelta(days=1)
        return day

    def working_day_after(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (``day`` itself not counted; n ≥ 1)."""
        key = (day, n)
        found = self._counted.get(key)
        if found is None:
            found = day
            for _ in range(n):
                found += dt.timedelta(days=1)
                while not self.is_working_day(found):
                    found += dt.timedelta(days=1)
            self._counted[key] = found
        return found

    def working_days_from(self, start: dt.date, count: int) -> tuple[dt.date, ...]:
        """``count`` consecutive working days beginning at ``start`` (itself a working day)."""
        days = [start]
        day = start
        while len(days) < count:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                days.append(day)
        return tuple(days)
