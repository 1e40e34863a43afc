"""Dates on the command line: ISO ``YYYY-MM-DD``, ``today``, or ``+7d`` / ``-3d`` from today."""

from __future__ import annotations

import datetime as dt
import re

import click

__all__ = ["DATE", "DateParam", "today"]


def today() -> dt.date:
    # The coordinator's local date: what "today" means at the desk.
    return dt.date.today()


class DateParam(click.ParamType):
    name = "date"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, dt.date):
            return value
        text = str(value).strip().lower()
        if text == "today":
            return today()
        match = re.fullmatch(r"([+-])(\d{1,4})d", text)
        if match:
            days = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            return today() + dt.timedelta(days=days)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD, today, +7d or -7d)", param, ctx)


DATE = DateParam()
