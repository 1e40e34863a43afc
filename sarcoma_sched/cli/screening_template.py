"""``protocol fields``: the template of a protocol's screening, to fill in or to import."""

from __future__ import annotations

from pathlib import Path

import click

from sarcoma_sched.cli.context import open_db

__all__ = ["protocol_fields"]


@click.command("fields")
@click.argument("protocol")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["toml", "csv", "xlsx"]),
    default="toml",
    show_default=True,
    help="toml: one patient's --from-file, every value commented out; csv: one row per "
    "field; xlsx: a screening log to fill in (sheet screenings) and the fields described.",
)
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it here (replaced atomically) [default: print it; xlsx needs --out].",
)
@click.pass_context
def protocol_fields(ctx: click.Context, protocol: str, fmt: str, out: Path | None) -> None:
    """Every screening field of PROTOCOL with its type, unit, range and allowed values.

    Read from the database's current version of the protocol, the one `screen` checks
    against. The xlsx template is what `screen --from-file` reads back: columns site, patient,
    date, sex, then one per field, the header frozen, lists where the values are closed.

    \b
    Example:
      sarcoma-sched protocol fields NATARS > patient.toml
      sarcoma-sched protocol fields NATARS --format xlsx --out natars-screening-log.xlsx
    """
    from sarcoma_sched.services.screening_import import (
        field_template,
        template_csv,
        template_toml,
        template_xlsx,
    )

    if fmt == "xlsx" and out is None:
        raise click.UsageError("--format xlsx writes a workbook: give --out FILE", ctx)
    template = field_template(open_db(ctx, read_only=True), protocol)
    data: str | bytes
    if fmt == "toml":
        data = template_toml(template)
    elif fmt == "csv":
        data = template_csv(template)
    else:
        data = template_xlsx(template)
    if out is None:
        click.echo(data, nl=False)
        return
    from sarcoma_sched.files import write_atomic

    write_atomic(out, data)
    click.echo(
        f"{len(template.fields)} screening fields of {template.protocol_id} "
        f"v{template.version} written to {out}"
    )
