"""``export sdtm``: CDISC SDTM datasets of a trial (trial design, and the subjects' with a
database) as CSV, SAS transport (XPT) or Dataset-JSON, with define.xml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sarcoma_sched.exports.sdtm.writers import Format

__all__ = ["sdtm"]


@click.command("sdtm")
@click.argument("protocol_name", metavar="PROTOCOL")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the dataset files and define.xml (created if missing).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xpt", "json"]),
    default="csv",
    show_default=True,
    help="CSV, SAS transport v5 (.xpt) or CDISC Dataset-JSON 1.1 (.json).",
)
@click.option(
    "--design-only",
    is_flag=True,
    help="Only TA, TE, TV, TI and TS, even when a database is named.",
)
@click.option(
    "--include-notes",
    is_flag=True,
    help="Add the coordinators' free-text notes (SUPPDS, SUPPDV): personal data.",
)
@click.pass_context
def sdtm(
    ctx: click.Context, protocol_name: str, out: Path, fmt: Format, design_only: bool,
    include_notes: bool,
) -> None:  # fmt: skip
    """Write the SDTM datasets of PROTOCOL (with XPT and JSON, define.xml 2.1 describing them).

    Without a database (no --db, no SARCOMA_SCHED_DB) or with --design-only: the trial design
    datasets TA, TE, TV, TI and TS; PROTOCOL is a bundled protocol id (TNT-STS, NATARS,
    NATARS-R) or a protocol .toml file. With a database: also DM, SE, SV (every planned
    visit, with its actual dates once done; the planned day and window in SUPPSV), DS and DV
    of the trial's allocated patients the user may read, and TS's study start and subject
    count; PROTOCOL is then a stored protocol id. Columns are the SDTMIG 3.4 variable names;
    values use CDISC controlled terminology where it applies and ISO 8601. A summary
    parameter the protocol does not state (e.g. the indication) is written with TSVALNF = NI,
    never guessed. No name or birth date is ever exported; free-text notes only with
    --include-notes.

    \b
    Example:
      sarcoma-sched export sdtm NATARS --out sdtm/natars
      sarcoma-sched --db trial.db export sdtm NATARS --format xpt --out sdtm/natars
    """
    from sarcoma_sched.errors import Conflict
    from sarcoma_sched.exports.extras import require
    from sarcoma_sched.exports.sdtm import submission, trial_design
    from sarcoma_sched.exports.sdtm.define import write_define
    from sarcoma_sched.exports.sdtm.writers import write_datasets

    if fmt == "xpt":
        require("--format xpt", "pyreadstat", "pandas", "odmlib")
    elif fmt == "json":
        require("--format json", "odmlib")  # for define.xml
    root = ctx.find_root().obj or {}
    if root.get("db_url") and not design_only:
        from sarcoma_sched.cli.context import open_db
        from sarcoma_sched.services.queries.subjects import trial_subjects

        with open_db(ctx).read() as session:
            data = trial_subjects(session, protocol_name, notes=include_notes)
        protocol = data.protocol
        datasets = submission(data, notes=include_notes)
    else:
        if include_notes:
            raise click.UsageError("--include-notes needs the subject datasets: name a --db")
        from sarcoma_sched.protocol import find_protocol

        protocol = find_protocol(protocol_name).protocol
        datasets = trial_design(protocol)
    try:
        paths = write_datasets(datasets, out, fmt, study=protocol.id)
        # define.xml goes with the submission formats; CSV is for people and spreadsheets.
        define = None if fmt == "csv" else write_define(datasets, out, fmt, protocol)
    except OSError as exc:
        raise Conflict(f"cannot write to {out}: {exc.strerror}") from None
    for path in paths:
        rows = len(datasets[path.stem.upper()])
        click.echo(f"{path}  {rows} rows")
    if define is not None:
        click.echo(f"{define}  {len(datasets)} datasets")
