"""What every database command needs: the database and the acting user."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sarcoma_sched.db.rows import Rows
    from sarcoma_sched.db.session import Database

__all__ = ["acting_user", "open_db", "open_reader"]


def open_db(ctx: click.Context, *, check_schema: bool = True, read_only: bool = False) -> Database:
    """``read_only`` for the checks a monitor or statistician runs on a database they may only
    read: an SQLite file without write permission, a PostgreSQL login with SELECT only."""
    from sarcoma_sched.db.session import Database

    root = ctx.find_root().obj
    database = Database(
        root.get("db_url"),
        check_schema=check_schema,
        on_busy=_busy_notice,
        user=root.get("user"),
        read_only=read_only,
    )
    ctx.call_on_close(database.dispose)
    return database


def open_reader(ctx: click.Context, *, read_only: bool = False) -> AbstractContextManager[Rows]:
    """For a read whose statements are the driver's (``visits``, ``overdue``, ``deviations``,
    ``schedule``; ``db.rows``): the same checks as ``open_db(ctx).read()``, without importing
    SQLAlchemy where the driver alone can serve it (``db.quick_open``)."""
    from sarcoma_sched.db.quick_open import reading

    root = ctx.find_root().obj
    return reading(root.get("db_url"), user=root.get("user"), read_only=read_only)


def _busy_notice(line: str) -> None:
    # stderr, so a listing piped to a file stays clean; the command goes on and exits 0.
    click.echo(f"notice: {line}", err=True)


def acting_user(ctx: click.Context) -> str:
    user = ctx.find_root().obj.get("user")
    if user:
        return str(user)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
