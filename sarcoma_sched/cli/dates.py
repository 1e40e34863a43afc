"""Dates on the command line: ISO ``YYYY-MM-DD``, ``today``, or ``+7d`` / ``-3d`` from today.

"Today" is the date at the trial's sites, not on the machine running the command: a server in
UTC is a day behind Beijing every morning until 08:00, so a coordinator recording a cycle given
this morning would be told the date is in the future. The zone is the site's (``--site``), or
the one zone every site of the database shares (NATARS: Asia/Shanghai); only a database whose
sites span several zones, asked without a site, falls back to the machine's own zone.

``SARCOMA_SCHED_NOW`` (an ISO 8601 instant with its offset, e.g. ``2026-12-31T17:30:00Z``)
fixes the clock: for tests, and for replaying what a command did at a given moment.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import click

__all__ = ["DATE", "EARLIEST", "LATEST", "NOW_ENV", "DateParam", "desk_zone", "now", "today"]

NOW_ENV = "SARCOMA_SCHED_NOW"

# The dates a trial's calendar can mean. Python's dates run from year 1 to 9999, but a command
# steps weeks back and months ahead of the date it is given (a report's 4 weeks before, a
# follow-up 60 months after), so a date near either end overflows the date type instead of
# being refused as what it is: a typing mistake.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2199, 12, 31)


def now() -> dt.datetime:
    """The current instant, aware: ``SARCOMA_SCHED_NOW`` when set, else the clock."""
    import pendulum  # ~50 ms: only for commands that need the date

    fixed = os.environ.get(NOW_ENV)
    if not fixed:
        return pendulum.now("UTC")
    try:
        parsed = pendulum.parse(fixed.strip(), exact=True)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        parsed = None
    # A bare date or a wall-clock time names no instant: which zone's 09:00 would it be?
    if not isinstance(parsed, dt.datetime) or not re.search(r"(Z|[+-]\d\d:?\d\d)$", fixed):
        from sarcoma_sched.errors import InputError

        raise InputError(
            f"{NOW_ENV}={fixed!r}: give an instant with its offset, e.g. 2026-12-31T17:30:00Z"
        )
    return parsed


def desk_zone() -> str:
    """The time zone "today" is taken in for the running command (see the module's note)."""
    import pendulum

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        zones = _site_zones(ctx)
        site = _site_option(ctx)
        if site is not None and site.upper() in zones:
            return zones[site.upper()]
        distinct = set(zones.values())
        if len(distinct) == 1:
            return distinct.pop()
    return str(pendulum.tz.local_timezone().name)


def _site_option(ctx: click.Context) -> str | None:
    """The command's --site, when it has one and it was given (and parsed already)."""
    probe: click.Context | None = ctx
    while probe is not None:
        value = probe.params.get("site")
        if isinstance(value, str):
            return value
        probe = probe.parent
    return None


def _site_zones(ctx: click.Context) -> dict[str, str]:
    """Each site's zone, read once per command; none without a database (`plan`, `init`)."""
    from sarcoma_sched.cli.context import open_reader
    from sarcoma_sched.errors import SarcomaSchedError
    from sarcoma_sched.services.queries.zones import site_zones

    root = ctx.find_root()
    if root.obj is None:  # parsed outside the command's main (a context made by hand): no --db
        return {}
    meta = root.meta
    key = "sarcoma_sched.site_zones"
    if key not in meta:
        try:
            # The driver alone: nearly every listing asks for today (issue 24).
            with open_reader(ctx, read_only=True) as connection:
                meta[key] = site_zones(connection)
        except SarcomaSchedError:
            meta[key] = {}
    found: dict[str, str] = meta[key]
    return found


def today() -> dt.date:
    """The date now where the trial's patients are seen (``desk_zone``)."""
    import pendulum

    return pendulum.instance(now()).in_timezone(desk_zone()).date()


class DateParam(click.ParamType):
    name = "date"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        typed = str(value).strip()
        text = typed.lower()
        if text == "today":
            return today()
        # [0-9], not \d: "+٣d" or "+３d" is not what a coordinator typed on purpose.
        match = re.fullmatch(r"([+-])([0-9]{1,4})d", text)
        if match:
            days = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            return today() + dt.timedelta(days=days)
        day = _calendar_date(typed.upper())  # 2026-w53-4 too
        if day is None:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD, today, +7d or -7d)", param, ctx)
        if not EARLIEST <= day <= LATEST:
            self.fail(f"{value!r} is outside {EARLIEST} .. {LATEST}", param, ctx)
        return day


def _calendar_date(text: str) -> dt.date | None:
    """An ISO 8601 calendar date (``2026-12-31``, ``20261231``, week ``2026-W53-4`` or ordinal
    ``2026-365`` forms), by pendulum's parser; a time of day is refused: a date is local to the
    site, and an instant would need a zone to say which day it is."""
    import pendulum

    try:
        parsed = pendulum.parse(text, exact=True, strict=True)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        return None
    if isinstance(parsed, dt.datetime) or not isinstance(parsed, dt.date):
        return None
    return dt.date(parsed.year, parsed.month, parsed.day)


DATE = DateParam()
