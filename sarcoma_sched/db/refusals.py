"""What both ways of opening a database refuse, and how, without importing the ORM: the ORM
``Database`` (``db.session``) and the Core reader of the daily listings (``db.reader``) share
these, and so does a read command's own driver connection (``db.quick_open``), so a refusal
reads the same whichever served the command. Standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sarcoma_sched.errors import (
    AccessDenied,
    Conflict,
    InputError,
    SarcomaSchedError,
    SchemaMismatch,
)
from sarcoma_sched.limits import ACTOR_LENGTH, shown

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

__all__ = [
    "ACTOR_LENGTH",
    "check_actor",
    "driver_refusal",
    "refuse_missing_sqlite_file",
    "server_refusal",
]


def check_actor(name: str | None) -> None:
    # Before anything is read or locked, and the same on both backends: SQLite would write a
    # longer name into every *_by column and the audit log, PostgreSQL refuse it mid-write.
    if name is not None and len(name) > ACTOR_LENGTH:
        raise InputError(
            f"--user: {shown(name)} is longer than the {ACTOR_LENGTH} characters the audit log "
            "stores for who acted"
        )


def refuse_missing_sqlite_file(url: str) -> None:
    # Connecting would create an empty file; a typo in --db should say so instead.
    from sqlalchemy import make_url  # only where SQLAlchemy serves the command already

    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        raise SchemaMismatch(f"database file {file} does not exist: run `sarcoma-sched init`")


# SQLSTATEs by which PostgreSQL refuses what a role may not do, or what the engine's own
# functions and triggers reject: a user's error, told in one line, not a bug's traceback.
_ACCESS_STATES = {"42501"}  # insufficient_privilege (grants, row-level security, the audit log)
_REFUSAL_STATES = {"22023", "42704", "23503", "P0001"}  # bad value, unknown role, no such row


def server_refusal(exc: DBAPIError) -> SarcomaSchedError | None:
    """The server's refusal as one line, or None when the error is not one."""
    return driver_refusal(exc.orig)


def driver_refusal(error: BaseException | None) -> SarcomaSchedError | None:
    """``server_refusal`` of the driver's own exception (psycopg's), as a read command's own
    connection raises it."""
    state = getattr(error, "sqlstate", None)
    if state not in _ACCESS_STATES and state not in _REFUSAL_STATES:
        return None
    diag = getattr(error, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(error)).splitlines()[0]
    if state in _ACCESS_STATES:
        return AccessDenied(f"refused by the database: {message}")
    return Conflict(f"refused by the database: {message}")
