"""``sarcoma-sched export``: calendars (iCalendar) for patients and sites; SDTM trial design."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

import click

from sarcoma_sched.cli.context import open_db
from sarcoma_sched.cli.dates import DATE
from sarcoma_sched.cli.sdtm import sdtm
from sarcoma_sched.errors import SarcomaSchedError

__all__ = ["export"]


@click.group()
def export() -> None:
    """Export calendars (iCalendar) and the trial design (CDISC SDTM TA/TE/TV/TI/TS).

    \b
    Example:
      sarcoma-sched export ical PKUIH-NATARS-0007 --out patient.ics
      sarcoma-sched export sdtm NATARS --out sdtm/
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
    from sarcoma_sched.services.export import patient_calendar, site_calendar_export

    with open_db(ctx).read() as session:
        if patient is not None:
            events, name = patient_calendar(session, patient)
        else:
            assert site_code is not None
            events, name = site_calendar_export(session, site_code, date_from, date_to)
    calendar = build_calendar(events, name)
    data = calendar.to_ical()
    if out is None:
        stdout = click.get_binary_stream("stdout")
        stdout.write(data)
        stdout.flush()
        return
    try:
        _write_atomically(out, data)
    except OSError as exc:
        raise SarcomaSchedError(f"cannot write {out}: {exc.strerror or exc}") from None
    count = len(calendar.walk("VEVENT"))
    click.echo(f"wrote {count} event{'' if count == 1 else 's'} to {out}", err=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (a calendar client polling the file) sees the old file or the new, never half.

    The temporary file sits beside the target so the final rename stays on one file system.
    """
    if path.exists() and not path.is_file():
        _write_into(path, data)
        return
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates mode 600; give the file the mode a plain write would have.
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_into(path: Path, data: bytes) -> None:
    """A device or named pipe (``/dev/null``, ``/dev/stdout``, a FIFO) is written into, as a
    shell redirection would: renaming over it would replace the device with a plain file."""
    # Non-blocking open: a FIFO nobody reads fails (ENXIO) instead of hanging the command.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
    finally:
        os.close(fd)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
