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
``sqlite:///PATH`` or ``postgresql[+psycopg]://USER[:PASSWORD]@HOST[:PORT]/DB`` with session
parameters only (``_POSTGRES``); a file that does not exist or cannot be opened; a schema at
another revision or not visible to the login. A server that cannot be reached or refuses the
login is said here, in the same line the engine's error gives, without a second attempt.
"""

from __future__ import annotations

import os
import re
import sqlite3  # what an SQLite file is opened with; sqlite_files imports it already
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from sarcoma_sched.db.locations import is_broken_url, named_database
from sarcoma_sched.db.refusals import check_actor, driver_refusal
from sarcoma_sched.db.revision import SCHEMA_REVISION
from sarcoma_sched.db.rows import DriverRows, EngineRows, Rows
from sarcoma_sched.db.sqlite_files import (
    BUSY_TIMEOUT_MS,
    configure_connection,
    open_read_only,
    prepare_directory,
    writable,
)
from sarcoma_sched.errors import ActorMismatch, DatabaseError

__all__ = ["reading", "target_of", "through_the_engine"]

# The PostgreSQL URLs taken here, strictly: one plain host name or address (as written, never
# decoded), a port of digits, user and password percent-encoded, and query parameters that
# tune the session but cannot name another login, server or database. Anything else is left to
# SQLAlchemy, whose reading is the rule (it drops a blank ``?user=``, for one, which libpq
# would read as "the OS user").
_POSTGRES = re.compile(
    r"postgresql(?:\+psycopg)?://"
    r"(?:(?P<user>[^:@/?#\[\]]*)(?::(?P<password>[^@/?#\[\]]*))?@)?"
    r"(?:(?P<host>[A-Za-z0-9._-]+)|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])?"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<dbname>[^?#/]*))?"
    r"(?:\?(?P<query>[^#]*))?"
)
_SESSION_PARAMETERS = {"options", "connect_timeout", "application_name", "sslmode"}


def target_of(
    value: str | None, env: Mapping[str, str] = os.environ
) -> Path | dict[str, Any] | None:
    """The SQLite file, or psycopg's connection arguments, that ``value`` (``--db``, else
    ``SARCOMA_SCHED_DB``, else the default file) names, as SQLAlchemy's URL and dialect would
    read it; None for any other form (``CoreReader`` then reads it, or says what is wrong)."""
    raw = named_database(value, env)
    if "://" not in raw:
        if is_broken_url(raw):
            return None  # engine.resolve_url names the mistake
        path = Path(raw).expanduser()
        return None if path.is_dir() else path.resolve()
    if raw.startswith("sqlite:///"):
        name = unquote(raw[len("sqlite:///") :])
        if not name or "?" in raw or name == ":memory:":
            return None
        # Absolute, as pysqlite makes it: a relative "file:x.db" is that file, not a URI.
        return Path(os.path.abspath(name))
    found = _POSTGRES.fullmatch(raw)
    if found is None:
        return None
    query = parse_qsl(found["query"] or "", keep_blank_values=True)
    names = [k for k, _ in query]
    if len(set(names)) != len(names) or not set(names) <= _SESSION_PARAMETERS:
        return None
    if any(v == "" for _, v in query) or found["port"] == "":
        return None
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 0 < port < 65536:
        return None
    arguments = {
        "host": found["host"] or found["ipv6"] or None,
        "port": port,
        "dbname": unquote(found["dbname"] or "") or None,
        "user": unquote(found["user"]) if found["user"] is not None else None,
        "password": unquote(found["password"]) if found["password"] is not None else None,
    }
    return {**{k: v for k, v in arguments.items() if v is not None}, **dict(query)}


@contextmanager
def reading(url: str | None, *, user: str | None, read_only: bool = False) -> Iterator[Rows]:
    """``Rows`` for the database ``url`` names, for queries: rolled back when the block ends."""
    target = target_of(url)
    opened = _open(target, read_only) if target is not None else None
    if opened is None:
        with through_the_engine(url, user, read_only) as rows:
            yield rows
        return
    rows = opened
    try:
        check_actor(user)  # where the engine's readers check it: after the schema's
        if rows.dialect == "postgresql" and user is not None:
            login = rows.all("SELECT session_user")[0][0]
            if user != login:
                raise ActorMismatch(
                    f"--user {user} is not the PostgreSQL login {login}: on PostgreSQL you "
                    "act under your own login"
                )
        yield rows
    finally:
        _close(rows)


def _close(rows: DriverRows) -> None:
    """Roll back and close; a connection the server already dropped has nothing to roll back
    (the error that said so is what the command reports)."""
    try:
        rows.connection.rollback()
    except rows.driver.Error:
        pass
    finally:
        rows.connection.close()


def _open(target: Path | dict[str, Any], read_only: bool) -> DriverRows | None:
    """The connection at this code's schema, or None for ``CoreReader`` to try (and explain)."""
    if isinstance(target, Path):
        return _open_sqlite(target, read_only)
    return _open_postgres(target, read_only)


def _open_sqlite(file: Path, read_only: bool) -> DriverRows | None:
    if not file.is_file():
        return None  # "does not exist: run init", in CoreReader's words
    if not read_only:
        prepare_directory(file)  # as make_engine: a file this user may not write, refused alike
    timeout = BUSY_TIMEOUT_MS / 1000
    try:
        if read_only and not writable(file):
            connection = open_read_only(file, timeout=timeout)
        else:
            # mode=rw: a file removed since the check above is an error, never a new empty file.
            connection = sqlite3.connect(f"{file.as_uri()}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.Error:
        return None
    try:
        configure_connection(connection, BUSY_TIMEOUT_MS, read_only=read_only)
        if _revision(connection) == SCHEMA_REVISION:
            # One snapshot for every statement of the command, taken at its first query.
            connection.execute("BEGIN DEFERRED")
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
    except psycopg.OperationalError as exc:
        # The server unreachable, or refusing the login: said once, in the words the engine's
        # error would have had (trying again through it would cost a second login, and a
        # second timeout).
        refusal = driver_refusal(exc)
        if refusal is not None:
            raise refusal from None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(f"database: {reason}") from None
    except psycopg.Error:
        return None  # arguments libpq refuses before connecting: CoreReader names them
    try:
        if _revision(connection) == SCHEMA_REVISION:
            connection.rollback()  # idle until the command's first query, as the engine's
            return DriverRows(connection, "postgresql", psycopg)
    except psycopg.Error:
        pass
    connection.close()
    return None


def _revision(connection: Any) -> str | None:
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


@contextmanager
def through_the_engine(
    url: str | None, user: str | None, read_only: bool = False
) -> Iterator[Rows]:
    """What ``CoreReader`` alone makes of ``url``: the path for everything the quick one does
    not take for granted."""
    from sarcoma_sched.db.reader import CoreReader

    reader = CoreReader(url, user=user, read_only=read_only)
    try:
        with reader.read() as connection:
            yield EngineRows(connection)
    finally:
        reader.dispose()
