"""``site add|list|close``: the hospitals, their calendars, and days they cannot treat."""

from __future__ import annotations

import json

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.dates import DATE, today
from sarcoma_sched.cli.output import emit_rows, format_option

__all__ = ["site"]

SITE_COLUMNS = ["site", "name", "time_zone", "holidays", "allocated", "closures"]
CHANGE_COLUMNS = ["study_id", "event", "old", "new", "shift_days"]


@click.group()
def site() -> None:
    """Sites: add one, list them, record a closure.

    \b
    Example:
      sarcoma-sched site list
      sarcoma-sched site close PKUIH --from 2027-01-04 --to 2027-01-08 --reason "ward move"
    """


@site.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The hospital's name.")
@click.option("--time-zone", required=True, help="IANA zone, e.g. Asia/Shanghai.")
@click.option("--holiday-country", required=True, help="ISO country code, e.g. CN.")
@click.option("--holiday-subdivision", help="Province or state code, when holidays differ.")
@click.pass_context
def site_add(
    ctx: click.Context,
    code: str,
    name: str,
    time_zone: str,
    holiday_country: str,
    holiday_subdivision: str | None,
) -> None:
    """Add a site with its time zone and public-holiday calendar.

    \b
    Example:
      sarcoma-sched site add WCH --name "West China Hospital" \\
        --time-zone Asia/Shanghai --holiday-country CN
    """
    from sarcoma_sched.services.sites import add_site

    added = add_site(
        open_db(ctx),
        acting_user(ctx),
        code,
        name,
        time_zone=time_zone,
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
    )
    click.echo(f"site {added.code} added ({added.name}, {added.time_zone})")


@site.command("list")
@format_option
@click.pass_context
def site_list(ctx: click.Context, fmt: str) -> None:
    """Every site: zone, holiday calendar, allocated patients, closures from today on.

    \b
    Example:
      sarcoma-sched site list --format csv
    """
    from sarcoma_sched.services.sites import list_sites

    with open_db(ctx).read() as session:
        rows = list_sites(session, today())
    emit_rows(rows, SITE_COLUMNS, fmt)


@site.command("close")
@click.argument("code")
@click.option("--from", "first_day", type=DATE, required=True, help="First closed day.")
@click.option("--to", "last_day", type=DATE, help="Last closed day [default: --from].")
@click.option("--reason", required=True, help="Why the site cannot treat.")
@format_option
@click.pass_context
def site_close(ctx: click.Context, code: str, first_day, last_day, reason: str, fmt: str) -> None:
    """Record days a site cannot treat; re-plans its patients and prints what moved.

    Recorded (done, missed, skipped) events never move. A planned event with no working day
    left in its window goes to the first working day after the closure and is flagged (a
    warning line) for the coordinator to decide; a rescheduled event that now falls on a
    closed day keeps its date and is flagged.

    \b
    Example:
      sarcoma-sched site close PKUIH --from 2027-01-04 --to 2027-01-08 --reason "ward move"
    """
    from sarcoma_sched.services.sites import close_site

    outcome = close_site(
        open_db(ctx), acting_user(ctx), code, first_day, last_day or first_day, reason
    )
    rows = [
        {
            "study_id": study_id,
            "event": c.event_id,
            "old": c.old_days[0],
            "new": c.new_days[0],
            "shift_days": c.shift_days,
        }
        for study_id, changes in outcome.moved.items()
        for c in changes
    ]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "site": outcome.site_code,
                    "first_day": outcome.first_day.isoformat(),
                    "last_day": outcome.last_day.isoformat(),
                    "moved": rows,
                    "flags": outcome.flags,
                },
                indent=2,
                default=str,
                ensure_ascii=False,
            )
        )
        return
    if fmt == "table":
        click.echo(
            f"{outcome.site_code} closed {outcome.first_day} … {outcome.last_day}; "
            f"{len(rows)} event(s) of {len(outcome.moved)} patient(s) moved"
        )
    if rows or fmt == "csv":
        emit_rows(rows, CHANGE_COLUMNS, fmt)
    for study_id, problems in outcome.flags.items():
        for problem in problems:
            click.echo(f"warning: {study_id} {problem}", err=True)
