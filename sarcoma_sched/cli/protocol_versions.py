"""``protocol load``, ``protocol versions`` and ``protocol diff``: a trial's own protocol and its
amendments, stored in the database."""

from __future__ import annotations

from pathlib import Path

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.output import emit_json, emit_rows, format_option, sheet_format

__all__ = ["diff", "load", "versions"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@format_option
@click.pass_context
def load(ctx: click.Context, file: Path, fmt: str) -> None:
    """Validate a protocol file and register it: a new trial, or a new version of one.

    The same file loaded again changes nothing; a changed file needs a new [study] version
    (one already loaded with other content is refused). Patients enrolled keep the version
    they were enrolled under. Trial admins only (the database refuses anyone else).

    \b
    Example:
      sarcoma-sched protocol load my-trial.toml
      sarcoma-sched protocol load natars-1.3.toml --format json
    """
    from sarcoma_sched.protocol import load_protocol
    from sarcoma_sched.services.protocols import load_protocols

    loaded = load_protocol(file)
    [result] = load_protocols(open_db(ctx), acting_user(ctx), [loaded])
    if fmt == "json":
        emit_json(
            {
                "protocol": result.protocol_id,
                "version": result.version,
                "content_hash": result.content_hash,
                "new": result.new,
            }
        )
        return
    what = "loaded" if result.new else "already loaded, unchanged"
    click.echo(f"{result.protocol_id} v{result.version} {what} ({result.content_hash[:19]})")


VERSION_COLUMNS = ["version", "content_hash", "file", "loaded_at", "loaded_by", "enrolled"]


@click.command()
@click.argument("protocol_id")
@sheet_format
@click.pass_context
def versions(ctx: click.Context, protocol_id: str, fmt: str) -> None:
    """List the versions of a protocol as loaded, oldest first, with the patients under each.

    \b
    Example:
      sarcoma-sched protocol versions NATARS
    """
    from sarcoma_sched.services.queries.protocol_versions import protocol_versions

    with open_db(ctx).read() as session:
        rows = protocol_versions(session, protocol_id)
    emit_rows(
        [
            {
                "version": r.version,
                "content_hash": r.content_hash[:19] if fmt == "table" else r.content_hash,
                "file": r.source_name,
                "loaded_at": r.loaded_at.isoformat(timespec="seconds"),
                "loaded_by": r.loaded_by,
                "enrolled": r.enrolled,
            }
            for r in rows
        ],
        VERSION_COLUMNS,
        fmt,
    )


@click.command()
@click.argument("protocol_id")
@click.argument("old")
@click.argument("new")
@format_option
@click.pass_context
def diff(ctx: click.Context, protocol_id: str, old: str, new: str, fmt: str) -> None:
    """What version NEW of a protocol changes from version OLD: events added or removed,
    windows, constraints, criteria, allocation, sites, one line each.

    \b
    Example:
      sarcoma-sched protocol diff NATARS 1.2 1.3
      sarcoma-sched protocol diff NATARS 1.2 1.3 --format json
    """
    from sarcoma_sched.services.queries.protocol_versions import version_diff

    with open_db(ctx).read() as session:
        changes = version_diff(session, protocol_id, old, new)
    if fmt == "json":
        emit_json([c.as_json() for c in changes])
        return
    if fmt == "csv":
        emit_rows(
            [c.as_json() | {"text": str(c)} for c in changes],
            ["area", "path", "change", "text"],
            fmt,
        )
        return
    if not changes:
        click.echo(f"{protocol_id.upper()} {old} and {new} define the same protocol")
        return
    click.echo(f"{protocol_id.upper()} {old} → {new}: {len(changes)} change(s)")
    for c in changes:
        click.echo(f"  {c.area}: {c}")
