"""Dates on the command line: ISO ``YYYY-MM-DD``, ``today``, or ``+7d`` / ``-3d`` from today."""

from __future__ import annotations

import datetime as dt
import re

import click

__all__ = ["DATE", "EARLIEST", "LATEST", "DateParam", "today"]

# The dates a trial's calendar can mean. Python's dates run from year 1 to 9999, but a command
# steps weeks back and months ahead of the date it is given (a report's 4 weeks before, a
# follow-up 60 months after), so a date near either end overflows the date type instead of
# being refused as what it is: a typing mistake.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2199, 12, 31)


def today() -> dt.date:
    # The coordinator's local date: what "today" means at the desk.
    return dt.date.today()


class DateParam(click.ParamType):
    name = "date"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        text = str(value).strip().lower()
        if text == "today":
            return today()
        # [0-9], not \d: "+٣d" or "+３d" is not what a coordinator typed on purpose.
        match = re.fullmatch(r"([+-])([0-9]{1,4})d", text)
        if match:
            days = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            return today() + dt.timedelta(days=days)
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD, today, +7d or -7d)", param, ctx)
        if not EARLIEST <= day <= LATEST:
            self.fail(f"{value!r} is outside {EARLIEST} .. {LATEST}", param, ctx)
        return day


DATE = DateParam()
