"""``export usdm`` and ``protocol from-usdm``: a protocol version as a CDISC USDM v4 study
design, and back (the ``usdm`` extra: the ``usdm4`` package)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["from_usdm", "usdm"]


@click.command("usdm")
@click.argument("protocol_name", metavar="PROTOCOL")
@click.option("--version", "version", help="The stored version to export (with a database).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The USDM JSON file to write (replaced atomically).",
)
@click.pass_context
def usdm(ctx: click.Context, protocol_name: str, version: str | None, out: Path) -> None:
    """Write a protocol version as a CDISC USDM v4 study (JSON), checked by usdm4's rules.

    Arms, epochs, an encounter and an activity per event, and one schedule timeline per arm:
    each event's anchor, offset and window as a USDM Timing. Hard constraints, working-day
    rules, cycles, follow-up series, sites and the allocation method travel in extension
    attributes (docs/usdm.md), so `protocol from-usdm` reads back the same schedule. Without
    a database PROTOCOL is a bundled protocol or a .toml file (--version must then be its
    own); with one, a stored protocol, its current version unless --version names another.
    The file is refused, and not kept, if usdm4's validation finds an error.

    \b
    Example:
      sarcoma-sched export usdm NATARS --out natars-usdm.json
      sarcoma-sched --db trial.db export usdm NATARS --version 1.2 --out natars-1.2.json
    """
    from sarcoma_sched.errors import Conflict, NotFound
    from sarcoma_sched.exports.extras import require

    require("export usdm", "usdm4", "simple_error_log", extra="usdm")
    from sarcoma_sched.exports.usdm import validate_usdm, write_usdm

    root = ctx.find_root().obj or {}
    if root.get("db_url"):
        from sarcoma_sched.cli.context import open_db
        from sarcoma_sched.services.queries.protocol_definition import protocol_definition

        with open_db(ctx).read() as session:
            protocol = protocol_definition(session, protocol_name, version)
    else:
        from sarcoma_sched.protocol import find_protocol

        protocol = find_protocol(protocol_name).protocol
        if version is not None and version != protocol.version:
            raise NotFound(
                f"{protocol_name} is version {protocol.version}, not {version} "
                "(name a database for stored versions)"
            )
    try:
        write_usdm(protocol, out)
    except OSError as exc:
        raise Conflict(f"cannot write to {out}: {exc.strerror}") from None
    findings = validate_usdm(out)
    if not findings.passed:
        out.unlink(missing_ok=True)
        raise Conflict(
            f"usdm4 validation of {protocol.id} v{protocol.version} failed: {findings.failed[0]}"
            + (f" (and {len(findings.failed) - 1} more)" if len(findings.failed) > 1 else "")
        )
    click.echo(
        f"{out}  {protocol.id} v{protocol.version}: {len(protocol.arms)} arms, "
        f"usdm4 rules passed ({findings.rules_run} run, {findings.warnings} warnings)"
    )


@click.command("from-usdm")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The protocol TOML file to write (replaced atomically).",
)
def from_usdm(file: Path, out: Path) -> None:
    """Write the protocol a USDM v4 file describes as a protocol TOML file.

    Reads the arms, their events and each event's anchor, offset and window from the USDM
    elements, and what USDM cannot hold from the extension attributes `export usdm` writes
    (docs/usdm.md). The result is validated as any protocol file is, before it is written.

    \b
    Example:
      sarcoma-sched protocol from-usdm natars-usdm.json --out natars.toml
    """
    from sarcoma_sched.errors import Conflict
    from sarcoma_sched.exports.extras import require

    require("protocol from-usdm", "usdm4", extra="usdm")
    from sarcoma_sched.files import write_atomic
    from sarcoma_sched.protocol import dump_protocol
    from sarcoma_sched.protocol.usdm_import import read_usdm

    protocol = read_usdm(file)
    try:
        write_atomic(out, dump_protocol(protocol))
    except OSError as exc:
        raise Conflict(f"cannot write to {out}: {exc.strerror}") from None
    click.echo(f"{out}  {protocol.id} v{protocol.version}: {len(protocol.arms)} arms")
