"""The registers: ``patients``, ``screenings`` and ``audit log``, filtered and paged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sarcoma_sched.cli.context import open_db
from sarcoma_sched.cli.dates import DATE
from sarcoma_sched.cli.output import check_out, emit_rows, table_width, wide_option
from sarcoma_sched.cli.table_fit import cut, display_width
from sarcoma_sched.vocabulary import PatientStatus

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.registers import Page

__all__ = ["audit_log", "patients", "screenings"]

F = TypeVar("F", bound=Callable[..., Any])

# Kept here, not imported from the queries: --help stays fast (no SQLAlchemy at start-up);
# tests/cli/test_listings.py holds them equal to the queries' own tuples.
LISTED_STATUSES = tuple(
    status.value
    for status in (
        PatientStatus.SCREENED,
        PatientStatus.ELIGIBLE,
        PatientStatus.ENROLLED,
        PatientStatus.ALLOCATED,
        PatientStatus.ON_STUDY,
        PatientStatus.WITHDRAWN,
        PatientStatus.EXCLUDED,
    )
)
SCREENING_RESULTS = ("eligible", "not_eligible", "incomplete")
VOIDED_CHOICES = ("include", "exclude", "only")
# services.queries.audit_log.AUDIT_COLUMNS, which tests/cli/test_listings.py holds it equal to.
AUDIT_COLUMN_ORDER = ("seq", "at", "actor", "action", "entity", "entity_id", "op", "changes")


def paging(func: F) -> F:
    func = click.option(
        "--offset",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Skip this many rows (the next page starts where the last one ended).",
    )(func)
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        help="At most this many rows [default: all].",
    )(func)


def listing_format(func: F) -> F:
    """``--format table|csv|json|xlsx``, ``--wide`` and ``--out``, which a spreadsheet needs."""
    func = wide_option(func)
    func = click.option(
        "--out",
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="--format xlsx: the workbook to write (replaced atomically).",
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json", "xlsx"]),
        default="table",
        show_default=True,
        help="Output format; xlsx: typed cells (dates as dates), header frozen, needs --out.",
    )(func)


def _emit_page(
    page: Page, columns: list[str], fmt: str, out: Path | None = None, sheet: str = ""
) -> None:
    if fmt == "xlsx":
        from sarcoma_sched.cli.spreadsheets import write_xlsx

        assert out is not None
        write_xlsx(out, sheet, page.rows, columns)
        first, last = page.offset + 1, page.offset + len(page.rows)
        rows = f"rows {first}-{last} of {page.total}" if page.rows else f"no rows (of {page.total})"
        click.echo(f"{rows} written to {out}")
        return
    emit_rows(page.rows, columns, fmt)
    if fmt == "table":
        _footer(page)


def _footer(page: Page) -> None:
    # Only under a table: CSV and JSON stay exactly the rows, for scripts.
    if not page.rows:
        click.echo(f"no rows (of {page.total})" if page.total else "no rows")
        return
    first, last = page.offset + 1, page.offset + len(page.rows)
    more = f"; next page: --offset {page.next_offset}" if page.next_offset else ""
    click.echo(f"rows {first}-{last} of {page.total}{more}")


@click.command()
@click.option("--site", help="Only this site.")
@click.option("--protocol", help="Only this trial.")
@click.option("--arm", help="Only patients allocated to this arm.")
@click.option(
    "--status",
    type=click.Choice(LISTED_STATUSES),
    help="Only patients standing here (allocated: on_study, withdrawn or excluded).",
)
@click.option("--enrolled-from", type=DATE, help="Enrolled (consent date) on or after.")
@click.option("--enrolled-to", type=DATE, help="Enrolled (consent date) on or before.")
@paging
@listing_format
@click.pass_context
def patients(
    ctx: click.Context,
    site: str | None,
    protocol: str | None,
    arm: str | None,
    status: str | None,
    enrolled_from: dt.date | None,
    enrolled_to: dt.date | None,
    offset: int,
    limit: int | None,
    fmt: str,
    out: Path | None,
) -> None:
    """List patients: numbers, site, where each stands, arm and dates; never a name.

    The status is the latest screening that counts (a voided one does not): screened (not
    passed), eligible, enrolled, then on_study, withdrawn or excluded once allocated. On
    PostgreSQL a site role sees only its own sites' patients.

    \b
    Example:
      sarcoma-sched patients --site PKUIH --status on_study
      sarcoma-sched patients --protocol NATARS --enrolled-from 2026-01-01 --limit 20 --offset 20
    """
    from sarcoma_sched.services.queries.registers import PATIENT_COLUMNS, patient_listing

    check_out(ctx, fmt, out)
    with open_db(ctx, read_only=True).read() as session:
        page = patient_listing(
            session,
            site=site,
            protocol=protocol,
            arm=arm,
            status=status,
            enrolled_from=enrolled_from,
            enrolled_to=enrolled_to,
            offset=offset,
            limit=limit,
        )
    _emit_page(page, PATIENT_COLUMNS, fmt, out, "patients")


@click.command()
@click.option("--site", help="Only this site.")
@click.option("--protocol", help="Only this trial.")
@click.option("--result", type=click.Choice(SCREENING_RESULTS), help="Only this result.")
@click.option("--failed", metavar="CRITERION", help="Only screenings that failed it (INC-03).")
@click.option(
    "--voided",
    type=click.Choice(VOIDED_CHOICES),
    default="include",
    show_default=True,
    help="Voided screenings: listed, left out, or the only ones listed.",
)
@click.option("--from", "screened_from", type=DATE, help="Screened on or after.")
@click.option("--to", "screened_to", type=DATE, help="Screened on or before.")
@paging
@listing_format
@click.pass_context
def screenings(
    ctx: click.Context,
    site: str | None,
    protocol: str | None,
    result: str | None,
    failed: str | None,
    voided: str,
    screened_from: dt.date | None,
    screened_to: dt.date | None,
    offset: int,
    limit: int | None,
    fmt: str,
    out: Path | None,
) -> None:
    """List screenings: result, the criteria failed or left missing, and voids.

    A result is eligible, not_eligible (a criterion failed) or incomplete (a value missing);
    `voided` shows the void's reason code. The screening column is the number
    `screen void` takes.

    \b
    Example:
      sarcoma-sched screenings --site PKUIH --result not_eligible
      sarcoma-sched screenings --failed INC-03 --voided exclude --format csv
    """
    from sarcoma_sched.services.queries.registers import SCREENING_COLUMNS, screening_listing

    check_out(ctx, fmt, out)
    with open_db(ctx, read_only=True).read() as session:
        page = screening_listing(
            session,
            site=site,
            protocol=protocol,
            result=result,
            failed=failed,
            voided=voided,
            screened_from=screened_from,
            screened_to=screened_to,
            offset=offset,
            limit=limit,
        )
    _emit_page(page, SCREENING_COLUMNS, fmt, out, "screenings")


@click.command("log")
@click.option("--entity", help="Only this table (patients, screenings, scheduled_events, ...).")
@click.option("--entity-id", help="Only this row of --entity (its id).")
@click.option("--actor", help="Only what this user did.")
@click.option("--action", help="Only this action (screen, allocate, record, ...).")
@click.option("--from", "date_from", type=DATE, help="On or after this day (UTC).")
@click.option("--to", "date_to", type=DATE, help="On or before this day (UTC).")
@click.option("--include-notes", is_flag=True, help="Show the notes typed beside reason codes.")
@paging
@listing_format
@click.pass_context
def audit_log(
    ctx: click.Context,
    entity: str | None,
    entity_id: str | None,
    actor: str | None,
    action: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    include_notes: bool,
    offset: int,
    limit: int | None,
    fmt: str,
    out: Path | None,
) -> None:
    """List audit entries in chain order, each change as column: old → new.

    An insert lists what it set (column=value); a table fits the terminal's width
    (--wide: every change in full). A birth date is never shown; notes only with
    --include-notes. On PostgreSQL the log is readable by data managers, statisticians and
    trial admins only.

    \b
    Example:
      sarcoma-sched audit log --entity screenings --action void
      sarcoma-sched audit log --actor nurse.li --from 2026-12-01 --format json
    """
    from sarcoma_sched.services.queries.audit_log import (
        AUDIT_COLUMNS,
        audit_listing,
        change_text,
    )

    check_out(ctx, fmt, out)
    with open_db(ctx, read_only=True).read() as session:
        page = audit_listing(
            session,
            entity=entity,
            entity_id=entity_id,
            actor=actor,
            action=action,
            date_from=date_from,
            date_to=date_to,
            include_notes=include_notes,
            offset=offset,
            limit=limit,
        )
    if fmt != "json":
        # One cell per entry for a table, a CSV or a sheet; JSON keeps the list of changes.
        for row in page.rows:
            row["changes"] = change_text(row["op"], row["changes"])
    if fmt == "xlsx":
        for row in page.rows:
            # A typed instant (UTC) in the sheet; the log's own text everywhere else.
            row["at"] = dt.datetime.fromisoformat(row["at"])
    width = table_width()
    if fmt == "table" and width is not None:
        _emit_fitted(page, width)
        return
    _emit_page(page, AUDIT_COLUMNS, fmt, out, "audit log")


def _emit_fitted(page: Page, width: int) -> None:
    """The log as a table that fits the terminal: the instant to the second (UTC), and the
    changes cut at the right edge with an ellipsis; when the other columns leave them too
    little room, on a line of their own under each entry (--wide, CSV, JSON: everything)."""
    rows = page.rows
    for row in rows:
        row["at"] = str(row["at"])[:19].replace("T", " ")
    fixed = [c for c in AUDIT_COLUMN_ORDER if c != "changes"]
    used = sum(max([len(c), *(display_width(str(r[c])) for r in rows)]) + 2 for c in fixed)
    if width - used >= 30:
        for row in rows:
            row["changes"] = cut(str(row["changes"]), width - used)
        _emit_page(page, list(AUDIT_COLUMN_ORDER), "table")
        return
    # Each entry on two lines: who did what to which row, then "op: changes" indented.
    head = [c for c in fixed if c != "op"]
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in head}
    click.echo(cut("  ".join(c.ljust(widths[c]) for c in head).rstrip(), width - 1))
    for row in rows:
        click.echo(cut("  ".join(str(row[c]).ljust(widths[c]) for c in head).rstrip(), width - 1))
        click.echo(cut(f"     {row['op']}: {row['changes']}", width - 1))
    _footer(page)
