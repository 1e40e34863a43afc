"""Engine and session setup: which database, and how a write transaction starts.

The same code runs on SQLite (one site, no server) and PostgreSQL (many sites). Every write
transaction is serialised: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by a row lock on the audit
chain's head (see ``sarcoma_sched.db.session``). Trials allocate a few patients a day, so one
writer at a time costs nothing and buys gap-free sequences without retry loops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError

from sarcoma_sched.db.locations import DB_ENV, default_sqlite_path, is_broken_url, named_database
from sarcoma_sched.db.sqlite_files import (
    BUSY_TIMEOUT_MS,
    configure_connection,
    open_read_only,
    prepare_directory,
    writable,
)
from sarcoma_sched.errors import DatabaseUrlError

if TYPE_CHECKING:
    import sqlite3  # the driver behind every sqlite:// URL this module builds

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_ENV",
    "default_sqlite_path",
    "make_engine",
    "resolve_url",
    "sqlite_file",
]


def resolve_url(value: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """``--db`` wins over ``SARCOMA_SCHED_DB``; a bare path means an SQLite file."""
    raw = named_database(value, env)
    if is_broken_url(raw):
        raise DatabaseUrlError(
            f"database {raw!r} looks like a URL but is not one: give a file path, "
            "sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    if "://" not in raw:
        path = Path(raw).expanduser()
        if path.is_dir():
            raise DatabaseUrlError(f"database path {raw} is a directory, not a file")
        # Quoted: a file named with "?", "%" or "#" is that file, not a URL's query.
        return URL.create("sqlite", database=str(path.resolve())).render_as_string()
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseUrlError(f"database URL {raw!r} is not a valid URL") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            f"database URL {url.render_as_string(hide_password=True)}: only sqlite and "
            "postgresql are supported"
        )
    if url.get_backend_name() == "sqlite" and not url.database:
        raise DatabaseUrlError(f"database URL {raw!r} names no file: sqlite:///PATH")
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # psycopg 3 is the driver we install and test; plain postgresql:// would want psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def sqlite_file(value: str) -> Path:
    """The file of an SQLite ``--db`` given as a path or ``sqlite:///PATH`` (the demo, which
    runs on SQLite only); anything else is refused in one line."""
    url = resolve_url(value, env={})
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise DatabaseUrlError(f"{value!r}: this command needs an SQLite file")
    return Path(parsed.database)


def make_engine(
    url: str,
    *,
    echo: bool = False,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    read_only: bool = False,
) -> Engine:
    """``busy_timeout_ms``: how long an SQLite connection waits for another's write lock.

    ``read_only``: connections that cannot write, for the checks a monitor or statistician runs
    on a copy they may only read (an archived trial file, a read-only PostgreSQL login)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        file = Path(database) if database and database != ":memory:" else None
        if file is not None and not read_only:
            prepare_directory(file)
        engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000})
        if file is not None and read_only and not writable(file):
            _connect_read_only(engine, file)
        _configure_sqlite(engine, busy_timeout_ms, read_only=read_only)
        return engine
    _require_psycopg(parsed.render_as_string(hide_password=True))
    if read_only:
        # The server then refuses any write in these sessions, whatever the login may do: a
        # check that tried to write would fail loudly instead of changing the trial.
        given = parsed.query.get("options", ())
        options = " ".join(
            [*([given] if isinstance(given, str) else given), "-c default_transaction_read_only=on"]
        )
        return create_engine(url, echo=echo, pool_pre_ping=True, connect_args={"options": options})
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _require_psycopg(where: str) -> None:
    """PostgreSQL support is an extra (``sarcoma-sched[postgres]``): a single site on SQLite
    installs no server driver. Without it, one line saying what to install, not the dialect's
    ModuleNotFoundError from inside SQLAlchemy."""
    try:
        import psycopg  # noqa: F401  (the driver SQLAlchemy's postgresql+psycopg dialect loads)
    except ImportError:
        raise DatabaseUrlError(
            f"database {where}: PostgreSQL support is not installed; "
            "pip install 'sarcoma-sched[postgres]'"
        ) from None


def _connect_read_only(engine: Engine, file: Path) -> None:
    """Open ``file``, which this user may not write, read-only (``sqlite_files.open_read_only``)."""

    @event.listens_for(engine, "do_connect")
    def _open(
        _dialect: Dialect, _record: object, _cargs: list[object], cparams: dict[str, object]
    ) -> sqlite3.Connection:
        return open_read_only(file, **cparams)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        configure_connection(dbapi_connection, busy_timeout_ms, read_only=read_only)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock at BEGIN, so two coordinators never both read the
        # sequence and then both try to write it (which would fail late with SQLITE_BUSY).
        mode = "IMMEDIATE" if conn.get_execution_options().get("sarcoma_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def refresh_statistics(engine: Engine) -> None:
    """Re-run SQLite's ANALYZE when the schedule has grown by half since the last one.

    Without statistics SQLite scans every planned event by status for "visits at site X this
    week" instead of walking the site's patients (hundreds of ms vs ~20 ms at 10,000 patients).
    A full ANALYZE costs ~0.1 s per 200,000 events, so it runs only on growth (amortised like
    a doubling array); PostgreSQL's autovacuum does the same on its own.
    """
    with engine.connect() as conn:
        events = conn.exec_driver_sql("SELECT max(rowid) FROM scheduled_events").scalar() or 0
        if events < 5000:
            return  # small databases are fast with any plan
        has_stats = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).scalar()
        analysed = 0
        if has_stats:
            stat = conn.exec_driver_sql(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'scheduled_events' LIMIT 1"
            ).scalar()
            analysed = int(str(stat).split()[0]) if stat else 0
        if events <= analysed * 1.5:
            return
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
