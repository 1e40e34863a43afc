"""``sarcoma-sched protocol …``: validate, list and show protocol definitions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sarcoma_sched.cli.output import emit_rows, sheet_format

__all__ = ["protocol"]


@click.group()
def protocol() -> None:
    """Protocol definitions (the TOML files in protocols/).

    \b
    Example:
      sarcoma-sched protocol list
      sarcoma-sched protocol show NATARS
    """


@protocol.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--seasons/--no-seasons",
    default=True,
    help="Also plan each arm across its sites' holiday blocks (about a second per file).",
)
def validate(files: tuple[Path, ...], seasons: bool) -> None:
    """Check protocol files; print every problem as FILE: FIELD.PATH: MESSAGE.

    Besides each field, every arm's windows, spans, cycle order and hard constraints are laid
    out as a simple temporal network: rules that cannot all hold, on any calendar, are refused
    with the few that clash named (drop any one and the rest can hold). Then each arm is
    planned from every allocation day that puts a treatment window across one of its sites'
    holiday blocks of 2026-2027, as it is and with a 3-day closure beside it: each event left
    with no sound day (or a stay into the block) is listed under its file, with how often.
    Exits 1 when any file is invalid; every file is checked either way.

    \b
    Example:
      sarcoma-sched protocol validate protocols/*.toml
    """
    from sarcoma_sched.errors import Problem, ProtocolError
    from sarcoma_sched.protocol import load_protocol

    problems: list[Problem] = []
    for path in files:
        try:
            loaded = load_protocol(path)
        except ProtocolError as exc:
            problems.extend(exc.problems)
            continue
        p = loaded.protocol
        click.echo(f"ok  {path}  {p.id} v{p.version}  {p.content_hash[:19]}")
        if seasons:
            from sarcoma_sched.calendar.stress import holiday_stress

            for finding in holiday_stress(p):
                click.echo(f"    season: {finding}")
    if problems:
        raise ProtocolError(problems)


@protocol.command("list")
@sheet_format
def list_(fmt: str) -> None:
    """List the bundled protocols.

    \b
    Example:
      sarcoma-sched protocol list --format csv
    """
    from sarcoma_sched.protocol import list_protocols

    rows = []
    for item in list_protocols():
        p = item.protocol
        rows.append(
            {
                "id": p.id,
                "version": p.version,
                "registry": p.study.registry_id,
                "design": p.study.design,
                "allocation": p.allocation.method,
                "arms": ", ".join(a.id for a in p.arms),
                "sites": len(p.sites),
                "variant_of": p.study.variant_of or "",
                "content_hash": p.content_hash,
                "file": item.path.name if item.path else "",
            }
        )
    columns = [
        "id",
        "version",
        "registry",
        "design",
        "allocation",
        "arms",
        "sites",
        "variant_of",
        "content_hash",
        "file",
    ]
    if fmt == "table":
        for r in rows:
            r["content_hash"] = str(r["content_hash"])[:19]
    emit_rows(rows, columns, fmt)


@protocol.command()
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "toml"]),
    default="text",
    show_default=True,
    help="text for people; json or toml for the normalised definition.",
)
def show(name: str, fmt: str) -> None:
    """Show a protocol: arms, every event with its timing and window, constraints, criteria.

    NAME is a protocol id (NATARS, TNT-STS, NATARS-R), a bundled file name, or a path.

    \b
    Example:
      sarcoma-sched protocol show NATARS
    """
    from sarcoma_sched.protocol import dump_protocol, find_protocol
    from sarcoma_sched.protocol.describe import describe_protocol

    p = find_protocol(name).protocol
    if fmt == "json":
        click.echo(
            json.dumps(p.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False)
        )
    elif fmt == "toml":
        click.echo(dump_protocol(p), nl=False)
    else:
        click.echo(describe_protocol(p))


def _register() -> None:
    # Commands on the stored versions live beside the ones on files; registered here so that
    # `sarcoma-sched protocol --help` lists them all.
    from sarcoma_sched.cli.protocol_versions import diff, load, versions

    for command in (load, versions, diff):
        protocol.add_command(command)


_register()
