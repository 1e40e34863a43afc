"""``report``: what trial managers read — enrolment tables (and, later, pictures)."""

from __future__ import annotations

import click

from sarcoma_sched.cli.context import open_db
from sarcoma_sched.cli.output import emit_rows, format_option

__all__ = ["report"]


@click.group()
def report() -> None:
    """Reports for trial managers.

    \b
    Example:
      sarcoma-sched report enrollment --by protocol,site
    """


@report.command("enrollment")
@click.option("--protocol", help="Only this trial.")
@click.option(
    "--by",
    default="protocol,arm",
    show_default=True,
    help="Group by any of protocol, site, arm, stratum (comma-separated).",
)
@format_option
@click.pass_context
def report_enrollment(ctx: click.Context, protocol, by: str, fmt: str) -> None:
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
