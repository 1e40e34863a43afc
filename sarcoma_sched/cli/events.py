"""``schedule``, ``record`` and ``reschedule``: one patient's calendar and what happened to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.dates import DATE, today
from sarcoma_sched.cli.output import emit_json, emit_rows, format_option
from sarcoma_sched.cli.reasons import reason_options
from sarcoma_sched.vocabulary import RECORDABLE_STATUSES, EventStatus, PinPolicy

__all__ = ["record", "reschedule", "schedule"]

CHANGE_COLUMNS = ["event", "old", "new", "shift_days", "status"]


@click.command()
@click.argument("patient")
@format_option
@click.pass_context
def schedule(ctx: click.Context, patient: str, fmt: str) -> None:
    """A patient's calendar: every event with its days, target, window, status and deviation.

    \b
    Example:
      sarcoma-sched schedule PKUIH-NATARS-0007
      sarcoma-sched schedule PKUIH-NATARS-0007 --format csv > 0007.csv
    """
    from sarcoma_sched.services.queries import SCHEDULE_COLUMNS, patient_schedule

    with open_db(ctx).read() as session:
        found, rows = patient_schedule(session, patient)
        ref = found.study_id or found.screening_number
        title = f"{ref} ({found.protocol_id}, {found.site_code})"
    if fmt == "table":
        click.echo(title)
    emit_rows(rows, SCHEDULE_COLUMNS, fmt)


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
    rows = _change_rows(outcome)
    if fmt == "json":
        emit_json(
            {
                "study_id": outcome.study_id,
                "event": outcome.event_id,
                "status": outcome.status,
                "days": [d.isoformat() for d in outcome.days],
                "target": outcome.target.isoformat(),
                "window": [outcome.earliest.isoformat(), outcome.latest.isoformat()],
                "moved": rows,
                "deviations": outcome.deviations,
                "flags": outcome.flags,
            },
        )
        return
    if fmt == "table":
        click.echo(headline)
        if rows:
            click.echo(f"re-planned, {len(rows)} event(s) moved:")
        else:
            click.echo("re-planned: no other event moved")
    if rows or fmt == "csv":
        emit_rows(rows, CHANGE_COLUMNS, fmt)
    # Deviations and flags go to stderr in csv mode so the data stays clean for a pipe.
    err = fmt == "csv"
    for deviation in outcome.deviations:
        click.echo(f"deviation: {deviation}", err=err)
    for flag in outcome.flags:
        click.echo(f"warning: {flag}", err=True)


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
    reason_code: str | None,
    reason: str | None,
    correct: bool,
    fmt: str,
) -> None:
    """Record what happened to an event; re-plans and prints what moved and any deviation.

    EVENT is the occurrence id shown by `schedule` (rt, ai.2, surgery, follow_up.m12). Events
    timed from it move with it; a done date outside the window is a recorded deviation.

    \b
    Example:
      sarcoma-sched record PKUIH-NATARS-0007 ai.1 --status done --date 2026-11-20
      sarcoma-sched record PKUIH-NATARS-0007 ai.2 --status done --date +0d \\
        --reason-code toxicity --reason "neutropenia, delayed 7 days"
      sarcoma-sched record PKUIH-NATARS-0007 follow_up.m3 --status missed
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
    )
    when = f" {outcome.days[0]}" if status == EventStatus.DONE else ""
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
