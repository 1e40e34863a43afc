"""A read command's database connection, opened by the driver alone (issue 24).

``visits``, ``overdue``, ``deviations`` and ``schedule`` run a few statements (``db.rows``); on
this machine importing SQLAlchemy took longer than the rest of such a command together. So
``reading`` opens the database with ``sqlite3`` or psycopg directly, after the checks the
engine's readers make (``db.reader``, ``db.session``), and hands out ``Rows``:

* the ``--user`` that may act (its length; on PostgreSQL, the login itself);
* an SQLite file set up as the engine sets up every connection (``sqlite_files``), read in one
  snapshot (``BEGIN``), rolled back at the end; PostgreSQL in one transaction, read-only when
  asked, as the logged-in role, so grants and row-level security apply exactly as to a session;
* the schema at this code's revision.

Whatever this path does not take for granted goes through ``CoreReader`` instead, which says
what is wrong in the words every other command uses: a URL in a form other than a file path,
``sqlite:///PATH`` or ``postgresql[+psycopg]://USER[:PASSWORD]@HOST[:PORT]/DB[?PARAMS]``; a file
that does not exist or cannot be opened; a server that refuses the connection; a schema at
another revision or not visible to the login.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sarcoma_sched.db.refusals import check_actor
from sarcoma_sched.db.revision import SCHEMA_REVISION
from sarcoma_sched.db.rows import DriverRows, EngineRows, Rows
from sarcoma_sched.db.sqlite_files import (
    BUSY_TIMEOUT_MS,
    configure_connection,
    default_sqlite_path,
    open_read_only,
    prepare_directory,
    writable,
)
from sarcoma_sched.errors import ActorMismatch

__all__ = ["reading", "target_of"]

DB_ENV = "SARCOMA_SCHED_DB"  # as db.engine.DB_ENV

# As engine.resolve_url: what looks like a URL is one (or a mistake it names).
_SCHEME = re.compile(r"^(?:sqlite|postgres|postgresql|[a-z]+\+[a-z0-9]+):", re.IGNORECASE)
_POSTGRES = ("postgresql://", "postgresql+psycopg://")


def target_of(
    value: str | None, env: Mapping[str, str] = os.environ
) -> Path | dict[str, Any] | None:
    """The SQLite file, or psycopg's connection arguments, that ``value`` (``--db``, else
    ``SARCOMA_SCHED_DB``, else the default file) names, as SQLAlchemy's URL and dialect would
    read it; None for any other form (``CoreReader`` then reads it, or says what is wrong)."""
    raw = value or env.get(DB_ENV) or str(default_sqlite_path(env))
    if "://" not in raw:
        if _SCHEME.match(raw):
            return None
        path = Path(raw).expanduser()
        return None if path.is_dir() else path.resolve()
    if raw.startswith("sqlite:///"):
        name = raw[len("sqlite:///") :]
        return Path(unquote(name)) if name and "?" not in name and name != ":memory:" else None
    if not raw.startswith(_POSTGRES):
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.fragment or "," in parts.netloc or len({k for k, _ in query}) != len(query):
        return None  # several hosts, or one parameter twice: SQLAlchemy's reading is the rule
    found = {
        "host": unquote(parts.hostname or "") or None,
        "port": port,
        "dbname": unquote(parts.path[1:]) or None,
        "user": unquote(parts.username) if parts.username is not None else None,
        "password": unquote(parts.password) if parts.password is not None else None,
    }
    return {**{k: v for k, v in found.items() if v is not None}, **dict(query)}


@contextmanager
def reading(url: str | None, *, user: str | None, read_only: bool = False) -> Iterator[Rows]:
    """``Rows`` for the database ``url`` names, for queries: rolled back when the block ends."""
    check_actor(user)
    target = target_of(url)
    opened = _open(target, read_only) if target is not None else None
    if opened is None:
        with _through_the_engine(url, user, read_only) as rows:
            yield rows
        return
    rows = opened
    try:
        if rows.dialect == "postgresql" and user is not None:
            login = rows.all("SELECT session_user")[0][0]
            if user != login:
                raise ActorMismatch(
                    f"--user {user} is not the PostgreSQL login {login}: on PostgreSQL you "
                    "act under your own login"
                )
        yield rows
    finally:
        try:
            rows.connection.rollback()
        finally:
            rows.connection.close()


def _open(target: Path | dict[str, Any], read_only: bool) -> DriverRows | None:
    """The connection at this code's schema, or None for ``CoreReader`` to try (and explain)."""
    if isinstance(target, Path):
        return _open_sqlite(target, read_only)
    return _open_postgres(target, read_only)


def _open_sqlite(file: Path, read_only: bool) -> DriverRows | None:
    import sqlite3

    if not file.is_file():
        return None  # "does not exist: run init", in CoreReader's words
    if not read_only:
        prepare_directory(file)  # as make_engine: a file this user may not write, refused alike
    timeout = BUSY_TIMEOUT_MS / 1000
    try:
        if read_only and not writable(file):
            connection = open_read_only(file, timeout=timeout)
        else:
            connection = sqlite3.connect(file, timeout=timeout)
    except sqlite3.Error:
        return None
    try:
        configure_connection(connection, BUSY_TIMEOUT_MS, read_only=read_only)
        connection.execute("BEGIN DEFERRED")  # one snapshot for every statement of the command
        if _revision(connection) == SCHEMA_REVISION:
            return DriverRows(connection, "sqlite", sqlite3)
    except sqlite3.Error:
        pass
    connection.close()
    return None


def _open_postgres(arguments: dict[str, Any], read_only: bool) -> DriverRows | None:
    try:
        import psycopg
    except ImportError:
        return None  # CoreReader names the extra to install
    if read_only:
        # The server then refuses any write in this session, whatever the login may do.
        given = arguments.get("options")
        options = [*([given] if given else []), "-c default_transaction_read_only=on"]
        arguments = {**arguments, "options": " ".join(options)}
    try:
        connection = psycopg.connect(**arguments)
    except psycopg.Error:
        return None
    try:
        if _revision(connection) == SCHEMA_REVISION:
            return DriverRows(connection, "postgresql", psycopg)
    except psycopg.Error:
        pass
    connection.close()
    return None


def _revision(connection: Any) -> str | None:
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


@contextmanager
def _through_the_engine(url: str | None, user: str | None, read_only: bool) -> Iterator[Rows]:
    from sarcoma_sched.db.reader import CoreReader

    reader = CoreReader(url, user=user, read_only=read_only)
    try:
        with reader.read() as connection:
            yield EngineRows(connection)
    finally:
        reader.dispose()
