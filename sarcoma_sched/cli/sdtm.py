"""``export sdtm``: the CDISC SDTM trial design datasets of a protocol, as CSV files."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["sdtm"]


@click.command("sdtm")
@click.argument("protocol_name", metavar="PROTOCOL")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for ta.csv, te.csv, tv.csv, ti.csv and ts.csv (created if missing).",
)
def sdtm(protocol_name: str, out: Path) -> None:
    """Write the SDTM trial design datasets TA, TE, TV, TI and TS of PROTOCOL as CSV.

    PROTOCOL is a bundled protocol id (TNT-STS, NATARS, NATARS-R) or a protocol .toml file;
    no database is needed. Columns are the SDTMIG variable names; values use CDISC controlled
    terminology where it applies and ISO 8601 durations. TV windows are nominal, before
    working-day shifts, with allocation as study day 1. A summary parameter the protocol does
    not state (e.g. the indication) is written with TSVALNF = NI, never guessed.

    \b
    Example:
      sarcoma-sched export sdtm NATARS --out sdtm/natars
      sarcoma-sched export sdtm my-protocol.toml --out sdtm/mine
    """
    from sarcoma_sched.errors import Conflict
    from sarcoma_sched.exports.sdtm import trial_design, write_csv
    from sarcoma_sched.protocol import find_protocol

    protocol = find_protocol(protocol_name).protocol
    datasets = trial_design(protocol)
    try:
        paths = write_csv(datasets, out)
    except OSError as exc:
        raise Conflict(f"cannot write to {out}: {exc.strerror}") from None
    for path in paths:
        rows = len(datasets[path.stem.upper()])
        click.echo(f"{path}  {rows} rows")
