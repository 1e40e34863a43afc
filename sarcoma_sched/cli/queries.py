"""The daily questions: ``visits``, ``overdue`` and ``deviations``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sarcoma_sched.cli.context import open_db, open_reader
from sarcoma_sched.cli.dates import DATE, today
from sarcoma_sched.cli.output import emit_rows, sheet_format
from sarcoma_sched.vocabulary import BOOKED_STATUSES, EVENT_KINDS, EVENT_STATUSES

__all__ = ["capacity", "deviations", "overdue", "visits"]

F = TypeVar("F", bound=Callable[..., Any])


def _filters(func: F) -> F:
    for option in reversed(
        [
            click.option("--site", help="Only this site."),
            click.option("--protocol", help="Only this trial."),
            click.option("--arm", help="Only this arm."),
        ]
    ):
        func = option(func)
    return func


def _this_week() -> tuple[dt.date, dt.date]:
    monday = today() - dt.timedelta(days=today().weekday())
    return monday, monday + dt.timedelta(days=6)


@click.command()
@click.option("--from", "date_from", type=DATE, help="First day [default: this Monday].")
@click.option("--to", "date_to", type=DATE, help="Last day [default: this Sunday].")
@_filters
@click.option("--kind", type=click.Choice(EVENT_KINDS), help="Only this kind of event.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(EVENT_STATUSES),
    help="Only these statuses (repeatable) [default: planned and done].",
)
@click.option(
    "--over-capacity", is_flag=True, help="Only events flagged over their site's capacity."
)
@sheet_format
@click.pass_context
def visits(
    ctx: click.Context,
    date_from: dt.date | None,
    date_to: dt.date | None,
    site: str | None,
    protocol: str | None,
    arm: str | None,
    kind: str | None,
    statuses: tuple[str, ...],
    over_capacity: bool,
    fmt: str,
) -> None:
    """Events with a day in a date range (default: this week), in date order.

    \b
    Example:
      sarcoma-sched visits --site PKUIH
      sarcoma-sched visits --from today --to +14d --kind surgery --format csv
    """
    from sarcoma_sched.services.queries import EVENT_COLUMNS
    from sarcoma_sched.services.queries import visits as query

    # Neither day given: this week; one given: the week from (or up to) it.
    if date_from is None:
        date_from = _this_week()[0] if date_to is None else date_to - dt.timedelta(days=6)
    if date_to is None:
        date_to = date_from + dt.timedelta(days=6)
    if date_to < date_from:
        raise click.BadParameter(f"--to {date_to} is before --from {date_from}")
    with open_reader(ctx) as connection:
        rows = query(
            connection,
            date_from,
            date_to,
            site=site,
            protocol=protocol,
            arm=arm,
            kind=kind,
            statuses=statuses or BOOKED_STATUSES,
            over_capacity=over_capacity,
        )
    emit_rows(rows, EVENT_COLUMNS, fmt)
    if fmt == "table":
        click.echo(f"{len(rows)} event(s) {date_from} … {date_to}")


@click.command()
@_filters
@click.option("--kind", type=click.Choice(EVENT_KINDS), help="Only this kind of event.")
@sheet_format
@click.pass_context
def overdue(
    ctx: click.Context,
    site: str | None,
    protocol: str | None,
    arm: str | None,
    kind: str | None,
    fmt: str,
) -> None:
    """Planned events whose day has passed with nothing recorded.

    `record due` is still inside its window; `window closed` is a deviation waiting to be
    recorded (done late, missed or skipped).

    \b
    Example:
      sarcoma-sched overdue --site PKUIH
    """
    from sarcoma_sched.services.queries import OVERDUE_COLUMNS
    from sarcoma_sched.services.queries import overdue as query

    with open_reader(ctx) as connection:
        rows = query(connection, today(), site=site, protocol=protocol, arm=arm, kind=kind)
    emit_rows(rows, OVERDUE_COLUMNS, fmt)
    if fmt == "table":
        click.echo(f"{len(rows)} overdue event(s) on {today()}")


@click.command()
@click.option("--from", "date_from", type=DATE, help="Events from this day.")
@click.option("--to", "date_to", type=DATE, help="Events up to this day.")
@_filters
@click.option(
    "--include-notes", is_flag=True, help="Add the coordinators' notes (free text: personal data)."
)
@sheet_format
@click.pass_context
def deviations(
    ctx: click.Context,
    date_from: dt.date | None,
    date_to: dt.date | None,
    site: str | None,
    protocol: str | None,
    arm: str | None,
    include_notes: bool,
    fmt: str,
) -> None:
    """Recorded protocol deviations: late, early, missed, skipped, moved outside the window.

    Each names its reason's code; --include-notes adds what the coordinator typed (free text
    that may hold personal data: do not send it on).

    \b
    Example:
      sarcoma-sched deviations --protocol NATARS --from 2026-11-01 --to 2026-11-30
    """
    from sarcoma_sched.services.queries import DEVIATION_COLUMNS
    from sarcoma_sched.services.queries import deviations as query

    with open_reader(ctx) as connection:
        rows = query(
            connection,
            date_from=date_from,
            date_to=date_to,
            site=site,
            protocol=protocol,
            arm=arm,
            include_notes=include_notes,
        )
    emit_rows(rows, [*DEVIATION_COLUMNS, *(["note"] if include_notes else [])], fmt)
    if fmt == "table":
        click.echo(f"{len(rows)} deviation(s)")


@click.command()
@click.option("--site", required=True, help="The site.")
@click.option("--from", "date_from", type=DATE, default="today", show_default=True)
@click.option("--to", "date_to", type=DATE, default="+27d", show_default=True)
@sheet_format
@click.pass_context
def capacity(ctx: click.Context, site: str, date_from: dt.date, date_to: dt.date, fmt: str) -> None:
    """Booked vs capacity per resource and day (per week for RT course slots).

    \b
    Example:
      sarcoma-sched capacity --site PKUIH --from today --to +28d
    """
    from sarcoma_sched.services.queries import USAGE_COLUMNS, capacity_usage

    if date_to < date_from:
        raise click.BadParameter(f"--to {date_to} is before --from {date_from}")
    with open_db(ctx).read() as session:
        rows = capacity_usage(session, site, date_from, date_to)
    emit_rows(rows, USAGE_COLUMNS, fmt)
    if fmt == "table":
        over = sum(1 for r in rows if r["over_capacity"])
        click.echo(
            f"{len(rows)} slot(s) {date_from} … {date_to}; {over} over capacity"
            if rows
            else f"{site.upper()} limits no resource (see `sarcoma-sched site capacity`)"
        )
