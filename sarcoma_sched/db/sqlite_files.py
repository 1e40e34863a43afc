"""An SQLite database file: whether this user may use it, and how a connection
to it is set up. Standard library only, so the read commands' own connections (``quick_open``)
and the engine's (``engine``) open a file the same way without one importing SQLAlchemy.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from sarcoma_sched.errors import DatabaseUrlError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "configure_connection",
    "open_read_only",
    "prepare_directory",
    "writable",
]

# A coordinator waits at most this long for another coordinator's transaction.
BUSY_TIMEOUT_MS = 30_000


def prepare_directory(path: Path) -> None:
    """Create the file's directory, or say in one line why the database cannot live there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUrlError(
            f"database {path}: cannot create its directory {path.parent} ({exc.strerror})"
        ) from None
    if path.is_dir():
        raise DatabaseUrlError(f"database {path} is a directory, not an SQLite file")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.R_OK | os.W_OK)
    ):
        raise DatabaseUrlError(f"database {path}: not writable by this user")


def writable(file: Path) -> bool:
    return os.access(file, os.W_OK) and os.access(file.parent, os.W_OK | os.X_OK)


def open_read_only(file: Path, **params: Any) -> sqlite3.Connection:
    """Open ``file``, which this user may not write, with SQLite's ``mode=ro``: the connection
    then never tries to (a plain one fails setting up WAL mode or its index).

    A WAL database needs its ``-shm`` index, which a read-only reader cannot create when the
    directory is read-only too (an archived copy; a file the owner closed, which removes it).
    Then, and only if no ``-wal`` file holds commits the main file lacks, the file is opened
    ``immutable``: without a log the main file is the whole database, read without locks.
    (Only the file's owner could start writing meanwhile, into a new log; the check reads the
    file as it was, and a checkpoint rewriting it mid-read would show as a failure, not pass.)
    """
    uri = file.resolve().as_uri()
    wal = file.with_name(file.name + "-wal")
    params = {**params, "uri": True}
    connection = sqlite3.connect(f"{uri}?mode=ro", **params)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as exc:
        connection.close()
        if not _WAL_INDEX_REFUSED.search(str(exc)):
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise DatabaseUrlError(
                f"database {file} is read-only here and its write-ahead log {wal.name} "
                "holds changes not yet in the file: ask its owner to open it once with "
                "sarcoma-sched, which folds them in"
            ) from None
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", **params)


# How SQLite says a read-only connection could not create or map a WAL database's index.
_WAL_INDEX_REFUSED = re.compile(r"readonly database|unable to open database file")


def configure_connection(
    connection: sqlite3.Connection, busy_timeout_ms: int, *, read_only: bool = False
) -> None:
    """Every new connection, before its first statement."""
    # The sqlite3 module's own transaction handling would defer BEGIN until the first write
    # and ignore our choice of BEGIN IMMEDIATE; take control of it.
    connection.isolation_level = None
    cursor = connection.cursor()
    if read_only:
        # No statement may change the database. A file this user could write is opened as
        # usual (mode=ro would leave the WAL index files behind, as only a connection that may
        # write removes them), so this pragma is what keeps it read-only.
        cursor.execute("PRAGMA query_only=ON")
    else:
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # FULL: a commit the coordinator saw is on disk, even after a power cut (WAL with NORMAL
    # may lose the last transactions).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
