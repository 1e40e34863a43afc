"""``report``: what trial managers read — enrolment tables, the CONSORT flow, patient
timelines, site workload and an offline HTML report."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from sarcoma_sched.cli.context import open_db
from sarcoma_sched.cli.dates import DATE
from sarcoma_sched.cli.output import check_picture_or_sheet, emit_rows, sheet_format
from sarcoma_sched.errors import Conflict
from sarcoma_sched.limits import MAX_REPORT_DAYS

__all__ = ["report"]


@click.group()
def report() -> None:
    """Reports for trial managers: tables, pictures (SVG or PNG) and an HTML report.

    \b
    Example:
      sarcoma-sched report enrollment --by protocol,site
      sarcoma-sched report consort NATARS --out natars-consort.svg
      sarcoma-sched report html --out report/
    """


@report.command("enrollment")
@click.option("--protocol", help="Only this trial.")
@click.option(
    "--by",
    default="protocol,arm",
    show_default=True,
    help="Group by any of protocol, site, arm, stratum (comma-separated).",
)
@sheet_format
@click.pass_context
def report_enrollment(ctx: click.Context, protocol: str | None, by: str, fmt: str) -> None:
    """Allocated patients by arm, site and/or stratum, with withdrawals and exclusions.

    Grouped by protocol and/or site only, the screening counts (screened, eligible,
    enrolled) are shown too; they exist before any arm or stratum does.

    \b
    Example:
      sarcoma-sched report enrollment --by protocol,site
      sarcoma-sched report enrollment --protocol NATARS-R --by site,arm,stratum
    """
    from sarcoma_sched.services.queries import enrollment_columns, enrollment_report

    groups = [b.strip() for b in by.split(",") if b.strip()]
    with open_db(ctx).read() as session:
        rows = enrollment_report(session, protocol=protocol, by=groups)
    emit_rows(rows, enrollment_columns(groups), fmt)


def _out_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    from sarcoma_sched.reports.style import check_out_path

    return None if value is None else check_out_path(value)


def _picture_or_sheet(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    # A workbook (--format xlsx) is checked against the format by the command.
    if value is not None and value.suffix.lower() == ".xlsx":
        return value
    return _out_file(ctx, param, value)


OUT_FILE = click.option(
    "--out",
    type=click.Path(path_type=Path),
    callback=_picture_or_sheet,
    help="Write the picture to this file: .svg or .png; with --format xlsx, the table to this "
    "workbook (.xlsx). Replaced atomically.",
)
TODAY = click.option(
    "--today",
    type=DATE,
    default="today",
    show_default=True,
    help="The day the report is as of (fix it for reproducible pictures).",
)


@report.command("consort")
@click.argument("protocol_id", metavar="PROTOCOL")
@OUT_FILE
@TODAY
@sheet_format(own_out=True)
@click.pass_context
def report_consort(
    ctx: click.Context, protocol_id: str, out: Path | None, today: dt.date, fmt: str
) -> None:
    """CONSORT flow of a trial: assessed, excluded (per failed criterion), allocated per arm,
    received the intervention, discontinued, analysed.

    With --out, draws the flow diagram; without it, prints the numbers (--format).
    "Received" means at least one of the arm's treatment events (radiotherapy, infusion, oral,
    surgery) recorded done; "lost to follow-up" is not recorded by the engine and is shown as
    such; the analysis is intention to treat (every allocated patient).

    \b
    Example:
      sarcoma-sched report consort NATARS --out natars-consort.svg
      sarcoma-sched report consort NATARS-R --format json
    """
    from sarcoma_sched.reports.consort import consort_rows, draw_consort
    from sarcoma_sched.services.queries import consort_flow

    check_picture_or_sheet(ctx, fmt, out)
    with open_db(ctx).read() as session:
        flow = consort_flow(session, protocol_id)
    if out is None or fmt == "xlsx":
        emit_rows(consort_rows(flow), ["stage", "arm", "item", "n"], fmt, out=out)
        return
    draw_consort(flow, out, as_of=str(today))
    click.echo(f"wrote {out}")


@report.command("timeline")
@click.argument("patient")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    callback=_out_file,
    required=True,
    help="Write the picture to this file: .svg or .png (replaced atomically).",
)
@TODAY
@click.option("--from", "date_from", type=DATE, help="First day shown [default: first event].")
@click.option(
    "--to",
    "date_to",
    type=DATE,
    help="Last day shown [default: 120 days after today or the last treatment event].",
)
@click.pass_context
def report_timeline(
    ctx: click.Context,
    patient: str,
    out: Path,
    today: dt.date,
    date_from: dt.date | None,
    date_to: dt.date | None,
) -> None:
    """A patient's schedule as a Gantt chart: one row per event, its window shaded, the days it
    takes as a bar (solid once done), actual dates as diamonds, deviations in red, and lines at
    allocation, withdrawal and today.

    By default the chart covers the treatment phase and what is due soon; later follow-up
    visits are counted in a note (show them with --to).

    \b
    Example:
      sarcoma-sched report timeline PKUIH-NATARS-0007 --out 0007.png
      sarcoma-sched report timeline FJMUUH-TNT-STS-0002 --to 2029-12-31 --out 0002.svg
    """
    from sarcoma_sched.reports.timeline import draw_timeline
    from sarcoma_sched.services.queries import patient_timeline

    if date_from and date_to and date_to < date_from:
        raise Conflict(f"--to {date_to} is before --from {date_from}")
    with open_db(ctx).read() as session:
        timeline = patient_timeline(session, patient)
    draw_timeline(timeline, out, today=today, date_from=date_from, date_to=date_to)
    click.echo(f"wrote {out}")


@report.command("workload")
@click.option("--site", help="One site [default: every site].")
@click.option("--protocol", help="One trial [default: every trial].")
@click.option(
    "--from", "date_from", type=DATE, default="today", show_default=True, help="First day."
)
@click.option(
    "--to",
    "date_to",
    type=DATE,
    help=f"Last day, at most {MAX_REPORT_DAYS:,} days from --from [default: 8 weeks from --from].",
)
@click.option(
    "--by",
    type=click.Choice(["day", "week"]),
    default="day",
    show_default=True,
    help="Count per day, or per week (Monday to Sunday).",
)
@OUT_FILE
@sheet_format(own_out=True)
@click.pass_context
def report_workload(
    ctx: click.Context,
    site: str | None,
    protocol: str | None,
    date_from: dt.date,
    date_to: dt.date | None,
    by: str,
    out: Path | None,
    fmt: str,
) -> None:
    """Event-days per day or week by kind: the ward, theatre and clinic load a site has ahead.

    Each RT fraction and each infusion day counts on its own day; a surgery or a visit once.
    Planned and done events count, missed/skipped/cancelled ones do not. Oral dosing at home
    (anlotinib D1-D14) is not ward load and is left out. With --out, draws a stacked bar
    chart (with --site, the site's weekends, holidays and closures shaded); without it,
    prints the table (--format).

    \b
    Example:
      sarcoma-sched report workload --site PKUIH --from today --to +56d --by week
      sarcoma-sched report workload --site FJMUUH --to +28d --out fjmuuh.png
    """
    from sarcoma_sched.reports.workload import draw_workload
    from sarcoma_sched.services.queries import non_working_days, workload, workload_columns

    check_picture_or_sheet(ctx, fmt, out)
    date_to = date_to or date_from + dt.timedelta(weeks=8, days=-1)
    drawn = out is not None and fmt != "xlsx"
    with open_db(ctx).read() as session:
        rows = workload(session, date_from, date_to, site=site, protocol=protocol, by=by)
        days_off = non_working_days(session, site, date_from, date_to) if site and drawn else None
    if out is None or fmt == "xlsx":
        emit_rows(rows, workload_columns(by), fmt, out=out)
        return
    draw_workload(
        rows,
        out,
        by=by,
        date_from=date_from,
        date_to=date_to,
        site=site,
        protocol=protocol,
        days_off=days_off,
    )
    click.echo(f"wrote {out}")


@report.command("html")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for index.html, one page per trial and timelines/ (created if missing).",
)
@click.option("--protocol", "protocols", multiple=True, help="Only this trial (repeatable).")
@TODAY
@click.option(
    "--timelines",
    is_flag=True,
    help="Also write every patient's timeline to timelines/ and link it from the patient table.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes drawing the timelines (--timelines): up to one per core.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar on stderr [default: when stderr is a terminal].",
)
@click.pass_context
def report_html(
    ctx: click.Context,
    out: Path,
    protocols: tuple[str, ...],
    today: dt.date,
    timelines: bool,
    jobs: int,
    progress: bool | None,
) -> None:
    """An offline HTML report: an index and one self-contained page per trial with the
    enrollment tables, the CONSORT diagram, the workload chart (4 weeks back, 12 ahead) and an
    overview of every patient (one row each, by site); with --timelines, also every patient's
    timeline picture (written to timelines/ and linked from the patient table).

    Nothing is loaded from the network: pictures are embedded in the pages.

    \b
    Example:
      sarcoma-sched report html --out report/
      sarcoma-sched report html --protocol NATARS --today 2026-11-21 --out natars-report/
      sarcoma-sched report html --timelines --jobs 4 --out report/
    """
    from sarcoma_sched.reports.html import write_html_report
    from sarcoma_sched.services.queries import trial_reports

    show = sys.stderr.isatty() if progress is None else progress
    with _progress_bar(show) as bar:
        bar("reading the database", 0, 0)
        with open_db(ctx).read() as session:
            trials = trial_reports(session, today=today, protocols=protocols or None)
        written = write_html_report(
            trials,
            out,
            today=today,
            timelines=timelines,
            jobs=jobs,
            progress=lambda done, total: bar("drawing pictures", done, total),
        )
    click.echo(f"wrote {written.index}")
    for page in written.trials:
        click.echo(f"wrote {page}")
    if timelines:
        click.echo(f"wrote {len(written.timelines)} timelines in {out / 'timelines'}")


@contextmanager
def _progress_bar(show: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A callback (what, done, total) drawing one bar on stderr, or doing nothing."""
    if not show:

        def ignore(what: str, done: int, total: int) -> None:
            return None

        yield ignore
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("report html", total=None)

        def update(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total or None)

        yield update
