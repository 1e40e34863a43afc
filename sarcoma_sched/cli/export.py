"""``sarcoma-sched export``: calendars (iCalendar) for patients and sites; CDISC SDTM and ODM."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from sarcoma_sched.cli.context import open_db
from sarcoma_sched.cli.dates import DATE
from sarcoma_sched.cli.sdtm import sdtm

__all__ = ["export"]


@click.group()
def export() -> None:
    """Export calendars (iCalendar), CDISC SDTM datasets and CDISC ODM for an EDC.

    \b
    Example:
      sarcoma-sched export ical PKUIH-NATARS-0007 --out patient.ics
      sarcoma-sched export sdtm NATARS --format xpt --out sdtm/
      sarcoma-sched export odm NATARS --out natars-odm.xml
    """


export.add_command(sdtm)


@export.command()
@click.argument("patient", required=False)
@click.option("--site", "site_code", help="A site's master calendar instead of one patient's.")
@click.option("--from", "date_from", type=DATE, help="With --site: events on or after this day.")
@click.option("--to", "date_to", type=DATE, help="With --site: events on or before this day.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (replaced atomically) instead of standard output.",
)
@click.pass_context
def ical(
    ctx: click.Context,
    patient: str | None,
    site_code: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    out: Path | None,
) -> None:
    """Export a patient's calendar, or a site's, as an iCalendar (.ics) file.

    Each event keeps its UID across exports and its SEQUENCE rises when it changes, so
    importing a new export updates the calendar in place; cancelled, missed and skipped events
    stay in the file as cancelled so a client removes them. Multi-day visits (RT fractions,
    infusion days) are one entry per day; oral courses one entry for the whole period. A
    reminder comes the day before each planned visit. The file names patients by study id
    only: no name, no birth date.

    \b
    Example:
      sarcoma-sched export ical PKUIH-NATARS-0007 --out patient.ics
      sarcoma-sched export ical --site PKUIH --from today --to +28d > pkuih.ics
    """
    if (patient is None) == (site_code is None):
        raise click.UsageError("give exactly one of PATIENT and --site")
    if patient is not None and (date_from or date_to):
        raise click.UsageError("--from and --to select a site's events; use them with --site")
    if date_from and date_to and date_from > date_to:
        raise click.BadParameter(f"{date_to} is before --from {date_from}", param_hint="--to")

    from sarcoma_sched.exports.ical import build_calendar
    from sarcoma_sched.services.queries import patient_calendar, site_calendar_export

    with open_db(ctx).read() as session:
        if patient is not None:
            events, name = patient_calendar(session, patient)
        else:
            assert site_code is not None
            events, name = site_calendar_export(session, site_code, date_from, date_to)
    calendar = build_calendar(events, name)
    data = calendar.to_ical()
    if out is None:
        # Bytes: click.echo writes them unchanged to the binary stdout and flushes it.
        # (click.get_binary_stream is deprecated since click 8.5.)
        click.echo(data, nl=False)
        return
    from sarcoma_sched.exports.files import write_atomic

    # Atomic: a calendar client polling the file sees the old calendar or the new, never half.
    write_atomic(out, data)
    count = len(calendar.walk("VEVENT"))
    click.echo(f"wrote {count} event{'' if count == 1 else 's'} to {out}", err=True)


@export.command()
@click.argument("protocol_id", metavar="PROTOCOL")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The ODM XML file to write (replaced atomically).",
)
@click.pass_context
def odm(ctx: click.Context, protocol_id: str, out: Path) -> None:
    """Export a trial's schedule as CDISC ODM 1.3.2, to set up an EDC.

    The study's visits (one StudyEventDef per SDTM TV visit, same number and name), its sites,
    and per allocated patient the user may read: every scheduled visit with its planned day,
    window and status, and the actual days once done. Patients are named by study id only:
    no name, no birth date, no free-text note.

    \b
    Example:
      sarcoma-sched export odm NATARS --out natars-odm.xml
    """
    from sarcoma_sched.errors import Conflict
    from sarcoma_sched.exports.extras import require

    require("export odm", "odmlib")
    from sarcoma_sched.exports.odm import write_odm
    from sarcoma_sched.services.queries.subjects import trial_subjects

    with open_db(ctx).read() as session:
        data = trial_subjects(session, protocol_id)
    try:
        events = write_odm(data, out)
    except OSError as exc:
        raise Conflict(f"cannot write to {out}: {exc.strerror}") from None
    click.echo(f"{out}  {len(data.subjects)} subjects, {events} study events")
