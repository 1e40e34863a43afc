"""``init``, ``db upgrade|current|history`` and ``audit verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.output import emit_json, emit_rows, result_format, sheet_format
from sarcoma_sched.errors import AuditFailed, Conflict

if TYPE_CHECKING:
    from sarcoma_sched.db.session import Database

__all__ = ["audit", "db", "init"]


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database and load the bundled protocols and their sites.

    Safe to run again: known protocol versions and sites are left as they are; a changed
    protocol file is stored as a new version.

    \b
    Example:
      sarcoma-sched --db trial.db init
    """
    from sarcoma_sched.services.protocols import initialize

    database = open_db(ctx, check_schema=False)
    before, after, results = initialize(database, acting_user(ctx))
    click.echo(f"database {_where(database)}: schema {before or 'empty'} -> {after}")
    for result in results:
        state = "loaded" if result.new else "already loaded"
        click.echo(f"  {result.protocol_id} v{result.version} {result.content_hash[:19]}  {state}")


@click.group()
def db() -> None:
    """Schema migrations of the schedule database.

    \b
    Example:
      sarcoma-sched db current
      sarcoma-sched db upgrade
    """


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply pending migrations (in one transaction; nothing is lost).

    \b
    Example:
      sarcoma-sched --db postgresql://postgres@127.0.0.1/trials db upgrade
    """
    from sarcoma_sched.db.migrate import current_revision, history, upgrade

    database = open_db(ctx, check_schema=False)
    # Newest first. Only a revision by name: alembic's relative and branch syntax (+1, heads,
    # base) would fail inside alembic, and an older revision would silently do nothing.
    known = [r.id for r in history()]
    if revision != "head" and revision not in known:
        raise click.BadParameter(
            f"{revision!r} is not a revision (head, or one of {', '.join(known)})",
            param_hint="--revision",
        )
    current = current_revision(database.engine)
    if revision != "head" and current in known and known.index(revision) > known.index(current):
        raise Conflict(
            f"database {_where(database)} is at {current}, after {revision}: "
            "an upgrade never goes back"
        )
    before, after = upgrade(database.engine, revision)
    if before == after:
        click.echo(f"database {_where(database)} already at {after}")
    else:
        click.echo(f"database {_where(database)}: {before or 'empty'} -> {after}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's schema revision and the one this sarcoma-sched expects.

    \b
    Example:
      sarcoma-sched db current
    """
    from sarcoma_sched.db.migrate import current_revision, head_revision

    database = open_db(ctx, check_schema=False)
    current, head = current_revision(database.engine), head_revision()
    state = "up to date" if current == head else "run `sarcoma-sched db upgrade`"
    click.echo(f"{current or 'empty'} (code expects {head}: {state})")


@db.command("history")
@sheet_format
@click.pass_context
def db_history(ctx: click.Context, fmt: str) -> None:
    """List the migrations, newest first, marking the database's current one.

    \b
    Example:
      sarcoma-sched db history --format csv
    """
    from sarcoma_sched.db.migrate import history

    database = open_db(ctx, check_schema=False)
    rows = [
        {
            "revision": r.id,
            "down": r.down or "",
            "current": "*" if r.current else "",
            "message": r.message.strip().splitlines()[0] if r.message else "",
        }
        for r in history(database.engine)
    ]
    emit_rows(rows, ["revision", "down", "current", "message"], fmt)


@click.group()
def audit() -> None:
    """The tamper-evident audit trail.

    \b
    Example:
      sarcoma-sched audit verify
    """


@audit.command("verify")
@click.option(
    "--anchor",
    "anchor_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="An anchor from `audit anchor`: also fail if anything at or before it changed.",
)
@result_format
@click.pass_context
def audit_verify(ctx: click.Context, anchor_file: str | None, fmt: str) -> None:
    """Check the hash chain, every audited row against its last entry, every protocol
    version's source against its hash, and (with --anchor) the log against an outside copy.

    Only an outside copy catches a log rewritten end to end by someone with the owner's or a
    superuser's rights: take one with `audit anchor` and keep it outside the database. Exit 1
    on any problem, the first broken entry first.

    \b
    Example:
      sarcoma-sched audit verify --anchor anchors/2026-12-01.json
    """
    from sarcoma_sched.services.audit import read_anchor, verify_audit

    anchor = read_anchor(anchor_file) if anchor_file else None
    # Read-only: a monitor checks a copy they may not write, or logs in with SELECT only.
    report = verify_audit(open_db(ctx, read_only=True), anchor)
    if fmt == "json":
        emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head_hash": report.head_hash,
                "anchor": None if anchor is None else {"seq": anchor.seq, "hash": anchor.hash},
                "problems": report.problems,
            }
        )
        if not report.ok:
            # Every finding is in the document: stderr says in one line that it failed.
            raise AuditFailed([_findings(report.problems)])
        return
    if not report.ok:
        raise AuditFailed(report.problems)
    against = f"; matches the anchor at entry {anchor.seq}" if anchor else ""
    click.echo(f"audit log intact: {report.entries} entries, head {report.head_hash}{against}")


def _findings(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more, listed in the JSON)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


@audit.command("anchor")
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the anchor here (default: print it).",
)
@click.pass_context
def audit_anchor(ctx: click.Context, out: str | None) -> None:
    """Record the chain head (entry number, hash, server time) to keep outside the database.

    The log is verified first. Later, `audit verify --anchor FILE` names the first entry at or
    before the anchor that was altered, removed or inserted.

    \b
    Example:
      sarcoma-sched audit anchor --out anchors/2026-12-01.json
    """
    from sarcoma_sched.services.audit import take_anchor

    anchor = take_anchor(open_db(ctx, read_only=True))
    if out is None:
        click.echo(anchor.to_json())
        return
    from sarcoma_sched.files import write_atomic

    write_atomic(out, anchor.to_json() + "\n")
    click.echo(f"anchored entry {anchor.seq} ({anchor.hash[:16]}…) at {anchor.at} in {out}")


def _where(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=True)
