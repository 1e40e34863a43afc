"""``sarcoma-sched plan``: preview a patient's calendar without touching any database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sarcoma_sched.cli.dates import EARLIEST, LATEST
from sarcoma_sched.cli.output import sheet_format
from sarcoma_sched.cli.schedule_output import emit_calendar, plan_rows
from sarcoma_sched.limits import MAX_CLOSURE_DAYS
from sarcoma_sched.vocabulary import EventStatus

if TYPE_CHECKING:
    from sarcoma_sched.calendar import Actual

__all__ = ["plan"]


def _date(value: str, what: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=what) from None
    if not EARLIEST <= day <= LATEST:
        # Five years of follow-up from 9999-12-01 would overflow the date type.
        raise click.BadParameter(f"{value!r} is outside {EARLIEST} .. {LATEST}", param_hint=what)
    return day


def _closures(values: tuple[str, ...]) -> list[dt.date]:
    days: list[dt.date] = []
    for value in values:
        first, _, last = value.partition("..")
        start = _date(first, "--closure")
        end = _date(last, "--closure") if last else start
        if end < start:
            raise click.BadParameter(f"{value!r} ends before it starts", param_hint="--closure")
        if (end - start).days + 1 > MAX_CLOSURE_DAYS:
            raise click.BadParameter(
                f"{value!r} lasts {(end - start).days + 1:,} days; a closure lasts at most "
                f"{MAX_CLOSURE_DAYS}",
                param_hint="--closure",
            )
        days.extend(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return days


def _actuals(
    done: tuple[str, ...], missed: tuple[str, ...], skipped: tuple[str, ...]
) -> dict[str, Actual]:
    from sarcoma_sched.calendar import Actual

    actuals: dict[str, Actual] = {}
    for item in done:
        event, sep, day = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not EVENT=DATE", param_hint="--done")
        actuals[event] = Actual(EventStatus.DONE, _date(day, "--done"))
    for event in missed:
        actuals[event] = Actual(EventStatus.MISSED)
    for event in skipped:
        actuals[event] = Actual(EventStatus.SKIPPED)
    return actuals


@click.command()
@click.argument("protocol_name", metavar="PROTOCOL")
@click.argument("arm")
@click.option("--anchor", required=True, help="Allocation date, YYYY-MM-DD.")
@click.option("--site", "site_code", help="Site code (default: the protocol's first site).")
@click.option(
    "--closure",
    multiple=True,
    metavar="DATE[..DATE]",
    help=f"A site closure of at most {MAX_CLOSURE_DAYS} days (repeatable).",
)
@click.option(
    "--holiday-table",
    "tables",
    multiple=True,
    type=click.Path(path_type=Path),
    help="An official holiday table (TOML) for a year the holidays package estimates.",
)
@click.option("--done", multiple=True, metavar="EVENT=DATE", help="Record an actual date.")
@click.option("--missed", multiple=True, metavar="EVENT", help="Record a missed event.")
@click.option("--skipped", multiple=True, metavar="EVENT", help="Record a skipped event.")
@sheet_format
def plan(
    protocol_name: str,
    arm: str,
    anchor: str,
    site_code: str | None,
    closure: tuple[str, ...],
    tables: tuple[Path, ...],
    done: tuple[str, ...],
    missed: tuple[str, ...],
    skipped: tuple[str, ...],
    fmt: str,
) -> None:
    """Preview the calendar of one patient: every event, its window and the days it occupies.

    With --done/--missed/--skipped it re-plans from what happened and lists what moved.

    \b
    Example:
      sarcoma-sched plan NATARS NEOADJUVANT --anchor 2026-02-10 --site PKUIH
      sarcoma-sched plan TNT-STS TNT --anchor 2026-09-24 --done rt=2026-10-09
    """
    from sarcoma_sched.calendar import (
        SiteCalendar,
        diff_plans,
        load_holiday_table,
        notices_of,
        plan_arm,
    )
    from sarcoma_sched.protocol import find_protocol

    protocol = find_protocol(protocol_name).protocol
    code = site_code or protocol.sites[0].code
    calendar = SiteCalendar.for_protocol_site(
        protocol,
        code,
        closures=_closures(closure),
        tables=[load_holiday_table(t) for t in tables],
    )
    allocation = _date(anchor, "--anchor")
    actuals = _actuals(done, missed, skipped)
    result = plan_arm(protocol, arm, allocation, calendar, actuals)
    moved = diff_plans(plan_arm(protocol, arm, allocation, calendar), result) if actuals else []
    # Broken rules that involve recorded events are listed as deviations.
    problems = [
        v
        for v in result.violations
        if all(result[i].status == EventStatus.PLANNED for i in v.events)
    ]
    emit_calendar(
        fmt,
        title=f"{protocol.id} {result.arm_id} at {code} ({calendar.time_zone}), allocated "
        f"{allocation} · protocol {protocol.content_hash[:19]}",
        facts={
            "protocol": protocol.id,
            "protocol_hash": protocol.content_hash,
            "arm": result.arm_id,
            "site": code,
            "time_zone": calendar.time_zone,
            "allocation_date": allocation.isoformat(),
        },
        rows=plan_rows(result),
        warnings=notices_of(result.events, calendar),
        extra={
            "moved": [
                {
                    "event": c.event,
                    "old": [d.isoformat() for d in c.old],
                    "new": [d.isoformat() for d in c.new],
                    "shift_days": c.shift_days,
                }
                for c in moved
            ],
            "deviations": [
                {"event": d.event, "code": d.code, "days": d.days, "message": d.message}
                for d in result.deviations
            ],
            "constraint_problems": [
                {"rule": v.rule, "events": list(v.events), "message": v.message} for v in problems
            ],
        },
        sections=[
            *(
                [(f"Moved by what happened ({len(moved)})", [str(c) for c in moved])]
                if actuals
                else []
            ),
            ("Deviations", [d.message for d in result.deviations]),
            ("Constraint problems", [v.message for v in problems]),
        ],
    )
