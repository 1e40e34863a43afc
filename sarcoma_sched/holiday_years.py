"""Which years of a country's holidays are official, not an estimate: the one rule both the
site calendar (``calendar.workdays``) and a stored schedule's warnings (``notices``) follow.

Light on purpose: ``schedule`` reads a stored calendar and needs only this of the holidays, so
neither this module nor the answer it is handed imports the ``holidays`` package, which only
``official_through`` opens, and only for a country whose holidays are announced year by year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["OfficialYears", "announcements_of", "official_through"]

# Countries whose holidays are announced year by year rather than following fixed rules, with
# the module of the ``holidays`` package that carries the announcements; for the others the
# package's rules are the official calendar for every year.
_ANNOUNCED_YEARLY = {"CN": "holidays.countries.china"}


def announcements_of(country: str) -> str | None:
    """The module of the ``holidays`` package ``official_through(country)`` reads, or None for
    a country whose every year is official (its answer is None without reading anything)."""
    return _ANNOUNCED_YEARLY.get(country)


@lru_cache(maxsize=16)
def official_through(country: str) -> int | None:
    """Last year for which the ``holidays`` package holds the announced (official) arrangement.

    None means the country's holidays follow fixed rules, so every year is official. For China
    the package carries each State Council notice as special holidays keyed by year; beyond the
    last of them it only estimates, without make-up working days.
    """
    if announcements_of(country) is None:
        return None
    try:
        from holidays.countries.china import ChinaStaticHolidays

        return max(ChinaStaticHolidays.special_public_holidays)
    except (ImportError, AttributeError, ValueError):  # pragma: no cover - package layout change
        return 2026


@dataclass(frozen=True)
class OfficialYears:
    """A country's official years: every year up to ``through`` (``official_through``), all of
    them when it is None. What ``notices`` reads of a calendar (``notices.HolidayYears``)."""

    country: str
    through: int | None

    @classmethod
    def of(cls, country: str) -> OfficialYears:
        return cls(country, official_through(country))

    def is_official(self, year: int) -> bool:
        return self.through is None or year <= self.through

    def estimated_years(self, days: Iterable[dt.date]) -> list[int]:
        return sorted({d.year for d in days if not self.is_official(d.year)})
