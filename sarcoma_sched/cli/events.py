"""``schedule``, ``record`` and ``reschedule``: one patient's calendar and what happened to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from sarcoma_sched.cli.context import acting_user, open_db, open_reader
from sarcoma_sched.cli.dates import DATE, today
from sarcoma_sched.cli.output import emit_json, emit_rows, format_option, sheet_format
from sarcoma_sched.cli.reasons import reason_options
from sarcoma_sched.cli.schedule_output import (
    STORED_COLUMNS,
    emit_calendar,
    notice_json,
    notice_text,
    stored_rows,
)
from sarcoma_sched.vocabulary import RECORDABLE_STATUSES, EventStatus, PinPolicy

__all__ = ["record", "reschedule", "schedule"]

CHANGE_COLUMNS = ["event", "old", "new", "shift_days", "status"]


@click.command()
@click.argument("patient")
@sheet_format
@click.pass_context
def schedule(ctx: click.Context, patient: str, fmt: str) -> None:
    """A patient's calendar: every event with its days, target, window, status and deviation.

    \b
    Example:
      sarcoma-sched schedule PKUIH-NATARS-0007
      sarcoma-sched schedule PKUIH-NATARS-0007 --format csv > 0007.csv
    """
    from sarcoma_sched.services.queries import patient_schedule

    # The driver's own connection (db.quick_open): a read many times a day needs no SQLAlchemy.
    with open_reader(ctx) as connection:
        found = patient_schedule(connection, patient)
    emit_calendar(
        fmt,
        title=f"{found.ref} ({found.protocol_id}, {found.site_code})",
        facts={
            "study_id": found.ref,
            "protocol": found.protocol_id,
            "arm": found.arm,
            "site": found.site_code,
            "time_zone": found.time_zone,
            "allocation_date": found.allocation_date.isoformat() if found.allocation_date else None,
        },
        rows=stored_rows(found.events),
        warnings=found.warnings,
        columns=STORED_COLUMNS,
    )


def _change_rows(outcome: Any) -> list[dict[str, Any]]:
    return [
        {
            "event": c.event_id,
            "old": c.old_days[0],
            "new": c.new_days[0],
            "shift_days": c.shift_days,
            "status": c.new_status,
        }
        for c in outcome.moved
    ]


def _report(outcome: Any, headline: str, fmt: str) -> None:
    """What ``record`` and ``reschedule`` print: the event, what moved, the deviations, and
    every warning of the re-planned calendar (as ``schedule`` would show them)."""
    rows = _change_rows(outcome)
    if fmt == "json":
        emit_json(
            {
                "study_id": outcome.study_id,
                "event": outcome.event_id,
                "label": outcome.label,
                "status": outcome.status,
                "days": [d.isoformat() for d in outcome.days],
                "target": outcome.target.isoformat(),
                "window": {
                    "earliest": outcome.earliest.isoformat(),
                    "latest": outcome.latest.isoformat(),
                },
                "moved": rows,
                "deviations": outcome.deviations,
                "warnings": [notice_json(n) for n in outcome.warnings],
            },
        )
        return
    if fmt == "csv":
        # One table for a spreadsheet: what moved, then a row per warning (its event, if it is
        # about one, and ``code: message``). Deviations go to stderr, as before.
        warned = [
            {
                "event": n.events[0] if len(n.events) == 1 else "",
                "warning": f"{n.code}: {n.message}",
            }
            for n in outcome.warnings
        ]
        emit_rows([*rows, *warned], [*CHANGE_COLUMNS, "warning"], fmt)
        for deviation in outcome.deviations:
            click.echo(f"deviation: {deviation}", err=True)
        return
    click.echo(headline)
    if rows:
        click.echo(f"re-planned, {len(rows)} event(s) moved:")
        emit_rows(rows, CHANGE_COLUMNS, fmt)
    else:
        click.echo("re-planned: no other event moved")
    for deviation in outcome.deviations:
        click.echo(f"deviation: {deviation}")
    # On stderr, as a command that changed something reports what needs a look.
    for notice in outcome.warnings:
        click.echo(f"warning: {notice_text(notice)}", err=True)


@click.command()
@click.argument("patient")
@click.argument("event")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RECORDABLE_STATUSES]),
    required=True,
    help="What happened.",
)
@click.option("--date", "day", type=DATE, help="The day it was done (done only).")
@click.option(
    "--day",
    "day_number",
    type=int,
    help="Which day of a course --date is (an RT fraction, an infusion day; 1 is its start).",
)
@click.option(
    "--with-components",
    is_flag=True,
    help="Also record the cycle's planned components (its dosing period, its labs) done.",
)
@reason_options("Why (a delay, a skipped cycle, a correction).")
@click.option("--correct", is_flag=True, help="Replace what was recorded before (needs --reason).")
@format_option
@click.pass_context
def record(
    ctx: click.Context,
    patient: str,
    event: str,
    status: str,
    day: dt.date | None,
    day_number: int | None,
    with_components: bool,
    reason_code: str | None,
    reason: str | None,
    correct: bool,
    fmt: str,
) -> None:
    """Record what happened to an event; re-plans and prints what moved and any deviation.

    EVENT is the occurrence id shown by `schedule` (rt, ai.2, surgery, follow_up.m12). Events
    timed from it move with it; a done date outside the window is a recorded deviation. Only
    deviations this record makes or changes are printed; `deviations` lists them all.

    \b
    Example:
      sarcoma-sched record PKUIH-NATARS-0007 ai.1 --status done --date 2026-11-20
      sarcoma-sched record PKUIH-NATARS-0007 ai.2 --status done --date +0d \\
        --reason-code toxicity --reason "neutropenia, delayed 7 days"
      sarcoma-sched record PKUIH-NATARS-0007 follow_up.m3 --status missed
      sarcoma-sched record FJMUUH-TNT-STS-0003 rt --status done --day 3 --date 2026-11-26
      sarcoma-sched record PKUIH-NATARS-0007 ai.1 --status done --date 2026-11-20 \\
        --with-components

    A fraction or infusion day given on another day than planned is recorded with --day N
    once the course is recorded done: the days after it that no longer follow it move with it.
    --with-components records the cycle's at-home dosing period and labs done on their planned
    days; record one apart (anlotinib.1 with its own --date) when it differs.
    """
    from sarcoma_sched.services.events import record_event

    outcome = record_event(
        open_db(ctx),
        acting_user(ctx),
        patient,
        event,
        status,
        date=day,
        reason=reason,
        today=today(),
        correct=correct,
        reason_code=reason_code,
        day_number=day_number,
        with_components=with_components,
    )
    when = f" {outcome.days[0]}" if status == EventStatus.DONE else ""
    if day_number is not None and len(outcome.days) > 1:
        when = f" {', '.join(map(str, outcome.days))}"
    window = f"target {outcome.target}, window {outcome.earliest} … {outcome.latest}"
    _report(outcome, f"{outcome.study_id} {outcome.event_id}: {status}{when} ({window})", fmt)


@click.command()
@click.argument("patient")
@click.argument("event")
@click.option("--to", "day", type=DATE, required=True, help="The new date.")
@reason_options("Why; required to move outside the window (a deviation).")
@click.option(
    "--pin-policy",
    type=click.Choice([p.value for p in PinPolicy]),
    default=PinPolicy.RELEASE.value,
    show_default=True,
    help="If a later re-plan makes this date break a hard constraint: release it (the planner "
    "places the event again), or keep it (flagged pin_breaks_constraint, TENTATIVE in "
    "calendars).",
)
@format_option
@click.pass_context
def reschedule(
    ctx: click.Context,
    patient: str,
    event: str,
    day: dt.date,
    reason_code: str | None,
    reason: str | None,
    pin_policy: str,
    fmt: str,
) -> None:
    """Move a planned event to another date; events timed from it follow.

    Inside the window the move is free; outside it needs --reason and is recorded as a
    deviation. A move that breaks a hard protocol constraint (e.g. the washout before
    surgery) is refused. The date then stands through re-plans until one makes it break a
    hard constraint (a delay upstream): then the pin is released and the event moves to the
    day the planner chooses, printed old -> new, unless --pin-policy keep.

    \b
    Example:
      sarcoma-sched reschedule PKUIH-NATARS-0007 surgery --to 2027-01-12 \\
        --reason-code capacity --reason "theatre list full"
    """
    from sarcoma_sched.services.events import reschedule_event

    outcome = reschedule_event(
        open_db(ctx),
        acting_user(ctx),
        patient,
        event,
        day,
        reason=reason,
        today=today(),
        reason_code=reason_code,
        pin_policy=pin_policy,
    )
    window = f"target {outcome.target}, window {outcome.earliest} … {outcome.latest}"
    _report(
        outcome,
        f"{outcome.study_id} {outcome.event_id}: rescheduled to {outcome.days[0]} ({window})",
        fmt,
    )
