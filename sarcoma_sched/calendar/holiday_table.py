"""Official holiday tables a site can load when the ``holidays`` package only estimates a year.

China announces each year's holidays *and* its weekend make-up working days (调休) in a State
Council notice, usually in November for the next year. Until the ``holidays`` package carries
that year, its dates are an estimate without make-up days; a coordinator types the notice into a
small TOML file:

    country = "CN"
    year = 2027
    source = "State Council General Office notice on the 2027 holiday arrangements"

    [[holidays]]
    name = "Spring Festival"
    from = 2027-02-05
    to = 2027-02-11          # optional: a single day without it

    [[working_days]]
    name = "Make-up working day (Spring Festival)"
    date = 2027-02-13

Loaded, the table replaces the package's data for that country and year entirely.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sarcoma_sched.errors import HolidayTableError
from sarcoma_sched.input_errors import validation_problems
from sarcoma_sched.input_files import parse_toml, read_text

__all__ = ["HolidayTable", "load_holiday_table"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HolidayRange(_Strict):
    name: str = Field(min_length=1)
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> HolidayRange:
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' ({self.to}) is before 'from' ({self.from_})")
        return self

    def dates(self) -> list[dt.date]:
        last = self.to or self.from_
        return [self.from_ + dt.timedelta(days=i) for i in range((last - self.from_).days + 1)]


class MakeUpDay(_Strict):
    name: str = Field(min_length=1)
    date: dt.date


class HolidayTable(_Strict):
    country: str = Field(min_length=2, max_length=3)
    year: int = Field(ge=1950, le=2100)
    source: str = Field(min_length=1)
    holidays: list[HolidayRange] = Field(default_factory=list)
    working_days: list[MakeUpDay] = Field(default_factory=list)

    @model_validator(mode="after")
    def _in_year(self) -> HolidayTable:
        # A holiday block may run over New Year; its days outside the year are kept, but every
        # block must start in the table's year so two tables never claim the same block.
        for h in self.holidays:
            if h.from_.year != self.year:
                raise ValueError(f"holiday {h.name!r} starts {h.from_}, outside {self.year}")
        for w in self.working_days:
            if w.date.year != self.year:
                raise ValueError(f"working day {w.name!r} on {w.date} is outside {self.year}")
        off = {d for h in self.holidays for d in h.dates()}
        for w in self.working_days:
            if w.date in off:
                raise ValueError(f"{w.date} is both a holiday and a make-up working day")
        return self

    def days_off(self) -> dict[dt.date, str]:
        return {d: h.name for h in self.holidays for d in h.dates()}

    def make_up_days(self) -> dict[dt.date, str]:
        return {w.date: w.name for w in self.working_days}


def load_holiday_table(path: str | Path) -> HolidayTable:
    path = Path(path)
    source = str(path)
    data = parse_toml(read_text(path, HolidayTableError), source, HolidayTableError)
    try:
        return HolidayTable.model_validate(data)
    except ValidationError as exc:
        raise HolidayTableError(validation_problems(exc, data, source)) from None
