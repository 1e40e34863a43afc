"""``site add|list|set|close|open|capacity``: the hospitals, their calendars, the days they
cannot treat and the extra days they do."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.dates import DATE, today
from sarcoma_sched.cli.numbers import CAPACITY, parse_day_capacity
from sarcoma_sched.cli.output import emit_json, emit_rows, format_option, sheet_format
from sarcoma_sched.cli.reasons import reason_options
from sarcoma_sched.limits import MAX_CAPACITY, MAX_CLOSURE_DAYS
from sarcoma_sched.vocabulary import RESOURCE_NAMES

if TYPE_CHECKING:
    from sarcoma_sched.services.events import EventChange

__all__ = ["site"]

CHANGE_COLUMNS = ["study_id", "event", "old", "new", "shift_days"]


@click.group()
def site() -> None:
    """Sites: add one, list them, record a closure or an extra working day, set capacities.

    \b
    Example:
      sarcoma-sched site list
      sarcoma-sched site close PKUIH --from 2027-01-04 --to 2027-01-08 --reason "ward move"
      sarcoma-sched site capacity PKUIH theatre --day tue=2 --day thu=1
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
@sheet_format
@click.pass_context
def site_list(ctx: click.Context, fmt: str) -> None:
    """Every site: zone, holiday calendar, allocated patients, closures from today on.

    \b
    Example:
      sarcoma-sched site list --format csv
    """
    from sarcoma_sched.services.queries import SITE_COLUMNS, list_sites

    with open_db(ctx).read() as session:
        rows = list_sites(session, today())
    emit_rows(rows, SITE_COLUMNS, fmt)


@site.command("close")
@click.argument("code")
@click.option("--from", "first_day", type=DATE, required=True, help="First closed day.")
@click.option(
    "--to",
    "last_day",
    type=DATE,
    help=f"Last closed day, at most {MAX_CLOSURE_DAYS} days from --from [default: --from].",
)
@click.option(
    "--revoke",
    is_flag=True,
    help="Take back the closure --from … --to recorded by mistake; re-plans without it.",
)
@reason_options("Why the site cannot treat (or --reason-code; default code: site_closed).")
@format_option
@click.pass_context
def site_close(
    ctx: click.Context,
    code: str,
    first_day: dt.date,
    last_day: dt.date | None,
    revoke: bool,
    reason_code: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Record days a site cannot treat; re-plans its patients and prints what moved.

    Recorded (done, missed, skipped) events never move. A planned event with no working day
    left in its window keeps its target date and is flagged (a warning line) for the
    coordinator to decide; a rescheduled event that now falls on a closed day keeps its date
    and is flagged. A closure entered after the fact never changes a done event nor makes it
    a deviation (it was given that day): each done event on the closure is listed instead.

    With --revoke, the closure from --from to --to (exactly as recorded) is taken back: the
    audit log keeps it, and the events it pushed are re-planned, printed old → new.

    \b
    Example:
      sarcoma-sched site close PKUIH --from 2027-01-04 --to 2027-01-08 --reason "ward move"
      sarcoma-sched site close PKUIH --from 2027-01-04 --to 2027-01-08 --revoke
    """
    from sarcoma_sched.services.sites import close_site, revoke_closure

    if revoke:
        outcome = revoke_closure(
            open_db(ctx), acting_user(ctx), code, first_day, last_day or first_day
        )
    else:
        outcome = close_site(
            open_db(ctx),
            acting_user(ctx),
            code,
            first_day,
            last_day or first_day,
            reason or "",
            reason_code=reason_code,
        )
    rows = _moved_rows(outcome.moved)
    if fmt == "json":
        emit_json(
            {
                "site": outcome.site_code,
                "first_day": outcome.first_day.isoformat(),
                "last_day": outcome.last_day.isoformat(),
                "revoked": revoke,
                "moved": rows,
                "flags": outcome.flags,
                "done_on_closure": [
                    {
                        "study_id": d.study_id,
                        "event": d.event_id,
                        "days": [day.isoformat() for day in d.days],
                    }
                    for d in outcome.done
                ],
            },
        )
        return
    if fmt == "table":
        what = "closure revoked" if revoke else "closed"
        click.echo(
            f"{outcome.site_code} {what} {outcome.first_day} … {outcome.last_day}; "
            f"{len(rows)} event(s) of {len(outcome.moved)} patient(s) moved"
        )
    _emit_moves(rows, outcome.flags, fmt)
    if outcome.done:
        n = len(outcome.done)
        # A table reader sees it with the rest; a CSV's stdout stays one table.
        click.echo(
            f"{n} done event{'s' if n > 1 else ''} fall{'' if n > 1 else 's'} on the new "
            f"closure, kept as recorded: {'; '.join(map(str, outcome.done))}",
            err=fmt == "csv",
        )


@site.command("open")
@click.argument("code")
@click.argument("day", metavar="DATE", type=DATE)
@click.option(
    "--revoke", is_flag=True, help="Take back the extra working day DATE recorded by mistake."
)
@reason_options("Why the site works that day (or --reason-code; default code: other).")
@format_option
@click.pass_context
def site_open(
    ctx: click.Context,
    code: str,
    day: dt.date,
    revoke: bool,
    reason_code: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Record an extra working day (a Sunday or holiday the site works); re-plans its patients.

    Planned events that may now take that day, or days nearer their target, move; what moved
    is printed old → new. Recorded events never move. A day already a working day, or one
    recorded closed, is refused. With --revoke, the extra day is taken back (the audit log
    keeps it) and the events it let move are re-planned.

    \b
    Example:
      sarcoma-sched site open PKUIH 2027-02-14 --reason-code capacity --reason "extra list"
      sarcoma-sched site open PKUIH 2027-02-14 --revoke
    """
    from sarcoma_sched.services.sites import open_site, revoke_open_day

    if revoke:
        outcome = revoke_open_day(open_db(ctx), acting_user(ctx), code, day)
    else:
        outcome = open_site(
            open_db(ctx), acting_user(ctx), code, day, reason, reason_code=reason_code
        )
    rows = _moved_rows(outcome.moved)
    if fmt == "json":
        emit_json(
            {
                "site": outcome.site_code,
                "day": outcome.first_day.isoformat(),
                "revoked": revoke,
                "moved": rows,
                "flags": outcome.flags,
            },
        )
        return
    if fmt == "table":
        what = "extra working day revoked" if revoke else "open (extra working day)"
        click.echo(
            f"{outcome.site_code} {what} {outcome.first_day}; "
            f"{len(rows)} event(s) of {len(outcome.moved)} patient(s) moved"
        )
    _emit_moves(rows, outcome.flags, fmt)


def _moved_rows(moved: dict[str, list[EventChange]]) -> list[dict[str, object]]:
    return [
        {
            "study_id": study_id,
            "event": c.event_id,
            "old": c.old_days[0],
            "new": c.new_days[0],
            "shift_days": c.shift_days,
        }
        for study_id, changes in moved.items()
        for c in changes
    ]


def _emit_moves(rows: list[dict[str, object]], flags: dict[str, list[str]], fmt: str) -> None:
    if rows or fmt == "csv":
        emit_rows(rows, CHANGE_COLUMNS, fmt)
    for study_id, problems in flags.items():
        for problem in problems:
            click.echo(f"warning: {study_id} {problem}", err=True)


@site.command("set")
@click.argument("code")
@click.option(
    "--inpatient-over-holidays",
    type=click.Choice(["allow", "avoid"]),
    required=True,
    help="May a multi-day inpatient course run into a holiday block of 3+ days off (its ward "
    "runs through holidays)? Default for every site: avoid.",
)
@format_option
@click.pass_context
def site_set(ctx: click.Context, code: str, inpatient_over_holidays: str, fmt: str) -> None:
    """Change how the planner treats a site; re-plans its patients and prints what moved.

    By default an inpatient stay (ifosfamide D1-5) is kept clear of a holiday block (Spring
    Festival, Golden Week): it moves inside its window, or is flagged holiday_block when no day
    avoids one. A site whose ward runs through holidays allows it: stays then keep their target.

    \b
    Example:
      sarcoma-sched site set PKUIH --inpatient-over-holidays allow
    """
    from sarcoma_sched.services.sites import set_site

    outcome = set_site(
        open_db(ctx),
        acting_user(ctx),
        code,
        inpatient_over_holidays=inpatient_over_holidays == "allow",
    )
    rows = _moved_rows(outcome.moved)
    if fmt == "json":
        emit_json(
            {
                "site": outcome.site_code,
                "inpatient_over_holidays": inpatient_over_holidays,
                "changed": outcome.changed,
                "moved": rows,
                "flags": outcome.flags,
            },
        )
        return
    if fmt == "table":
        what = "unchanged" if not outcome.changed else "set"
        click.echo(
            f"{outcome.site_code}: inpatient stays over holiday blocks {inpatient_over_holidays} "
            f"({what}); {len(rows)} event(s) of {len(outcome.moved)} patient(s) moved"
        )
    _emit_moves(rows, outcome.flags, fmt)


@site.command("capacity")
@click.argument("code")
@click.argument("resource", required=False, type=click.Choice(RESOURCE_NAMES))
@click.option(
    "--day",
    "days",
    multiple=True,
    metavar="DAY=N",
    help=f"Capacity on a weekday (mon..sun), 0..{MAX_CAPACITY}, repeatable; days not given "
    "have none.",
)
@click.option("--week", "per_week", type=CAPACITY, help="Capacity per week.")
@click.option("--clear", is_flag=True, help="Remove the limit (the resource is then unlimited).")
@format_option
@click.pass_context
def site_capacity(
    ctx: click.Context,
    code: str,
    resource: str | None,
    days: tuple[str, ...],
    per_week: int | None,
    clear: bool,
    fmt: str,
) -> None:
    """Show or set a site's resource capacities, which the planner places events by.

    Resources: theatre (a surgery takes one session on its day), infusion (an infusion cycle
    takes one chair on each of its days), rt_course (an RT course takes one new-course slot in
    the week of its first fraction). Without RESOURCE, lists the site's limits. Booked
    patients keep their days when a capacity changes; `capacity` shows any overbooking.

    \b
    Example:
      sarcoma-sched site capacity PKUIH theatre --day tue=2 --day thu=1
      sarcoma-sched site capacity PKUIH infusion --day mon=6 --day tue=6 --day wed=6 \\
        --day thu=6 --day fri=6
      sarcoma-sched site capacity FJMUUH rt_course --week 4
      sarcoma-sched site capacity PKUIH
    """
    from sarcoma_sched.services.capacity import set_capacity
    from sarcoma_sched.services.lookups import get_site
    from sarcoma_sched.services.queries import site_limits

    database = open_db(ctx)
    if resource is not None:
        if not (days or per_week is not None or clear):
            raise click.UsageError("give --day DAY=N (repeatable), --week N or --clear")
        if clear and (days or per_week is not None):
            raise click.UsageError("--clear takes no --day or --week")
        per_weekday: dict[str, int] = {}
        for item in days:
            name, value = parse_day_capacity(item)
            per_weekday[name] = value
        limit = set_capacity(
            database,
            acting_user(ctx),
            code,
            resource,
            per_weekday=per_weekday or None,
            per_week=per_week,
        )
        state = limit.describe() if limit else "not limited"
        click.echo(f"{code.upper()} {resource}: {state}", err=fmt != "table")
    with database.read() as session:
        site_code = get_site(session, code).code
        limits = site_limits(session, site_code)
    rows = [
        {"site": site_code, "resource": name, "capacity": limit.describe()}
        for name, limit in sorted(limits.items())
    ]
    if resource is None or fmt != "table":
        emit_rows(rows, ["site", "resource", "capacity"], fmt)
