"""A read's statements as the driver takes them, and their rows as the driver gives them.

The daily read commands (``visits``, ``overdue``, ``deviations``, ``schedule``) are what a
coordinator waits for, and importing SQLAlchemy alone cost them more than their queries and
their output together (issue 24). Their statements are therefore written once as SQL text with
``:name`` parameters, and run through ``Rows``: either the driver's own connection
(``DriverRows``, opened by ``db.quick_open`` with nothing but ``sqlite3`` or ``psycopg``) or an
SQLAlchemy connection a use case or a test already holds (``EngineRows``, through
``exec_driver_sql``: the same text, the same transaction, the engine's events see it).

Either way a row holds what the driver hands over, so the statements' readers convert what
SQLite stores as text: ``day`` for a ``DATE`` column (``day_or_none`` if nullable), ``decoded``
for a ``JSON`` one (psycopg hands PostgreSQL's over already converted). Standard library only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

__all__ = ["DriverRows", "EngineRows", "Rows", "day", "day_or_none", "decoded", "native", "rows_of"]

Row = tuple[Any, ...]


class Rows(Protocol):
    """Where a read's statements run: ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    dialect: str

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...


@lru_cache(maxsize=256)
def native(sql: str, dialect: str) -> str:
    """``sql`` in the driver's parameter style: ``sqlite3`` takes ``:name`` as written;
    psycopg takes ``%(name)s``, and every ``%`` of the text doubled. A ``::`` cast, and a ``:``
    inside a quoted literal or name, a comment or a dollar-quoted string, is left alone, as the
    server's own parser leaves it."""
    if dialect != "postgresql":
        return sql
    return _TOKENS.sub(_pyformat, sql)


# What may hold a colon that is no parameter, longest first: an escape string (backslashes
# escape quotes), a literal or a quoted name (doubled quotes inside), a comment, a dollar-quoted
# string; then a cast, a parameter, a percent sign.
_TOKENS = re.compile(
    r"(?<!\w)[Ee]'(?:[^'\\]|\\.|'')*'"
    r"|'(?:[^']|'')*'"
    r'|"(?:[^"]|"")*"'
    r"|--[^\n]*"
    r"|/\*[\s\S]*?\*/"
    r"|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$[\s\S]*?\$(?P=tag)\$"
    r"|::"
    r"|(?<!\w):(?P<name>[A-Za-z_]\w*)"
    r"|%",
    re.DOTALL,
)


def _pyformat(match: re.Match[str]) -> str:
    if match["name"]:
        return f"%({match['name']})s"
    return match.group(0).replace("%", "%%")


def _bound(params: Mapping[str, Any] | None, dialect: str) -> Mapping[str, Any]:
    if not params:
        return {}
    if dialect != "sqlite":
        return params
    # SQLite stores a DATE as its ISO text (SQLAlchemy's Date writes the same); sqlite3's own
    # date adapter is deprecated.
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in params.items()}


class DriverRows:
    """A DB-API connection (``sqlite3`` or psycopg's). A driver error the user can act on is
    raised as one line: the server's refusal of what the login may not read, or the database
    itself unusable; any other stays the driver's (a bug to report)."""

    def __init__(self, connection: Any, dialect: str, driver: Any) -> None:
        self.connection = connection
        self.dialect = dialect
        self.driver = driver

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        try:
            return list(
                self.connection.execute(native(sql, self.dialect), _bound(params, self.dialect))
            )
        except self.driver.Error as exc:
            said = _one_line(exc, self.driver)
            if said is exc:
                raise
            raise said from exc


def _one_line(exc: Exception, driver: Any) -> Exception:
    from sarcoma_sched.db.refusals import driver_refusal
    from sarcoma_sched.errors import DatabaseError

    refusal = driver_refusal(exc)
    if refusal is not None:
        return refusal
    # As the command line's last resort says of SQLAlchemy's: the server or the file, not a bug.
    if isinstance(exc, driver.OperationalError) or type(exc) is driver.DatabaseError:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return DatabaseError(f"database: {reason}")
    return exc


class EngineRows:
    """An SQLAlchemy connection: the statement goes to its driver as written here."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = self.connection.exec_driver_sql(
            native(sql, self.dialect), dict(_bound(params, self.dialect))
        )
        return [tuple(r) for r in result]


def rows_of(where: Rows | Session | Connection) -> Rows:
    """``Rows`` for a read command's connection, an SQLAlchemy ``Connection``, or a session
    (its connection, after the flush ``Session.execute`` would make: the read sees the rows
    the transaction changed)."""
    if isinstance(getattr(where, "dialect", None), str):
        return where  # type: ignore[return-value]
    from sqlalchemy.orm import Session

    if isinstance(where, Session):
        if where.autoflush:
            where.flush()
        return EngineRows(where.connection())
    return EngineRows(where)  # type: ignore[arg-type]


def day(value: Any) -> dt.date:
    """A ``DATE NOT NULL`` column's value: SQLite's text, or the driver's date."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def day_or_none(value: Any) -> dt.date | None:
    """A nullable ``DATE`` column's value."""
    return None if value is None else day(value)


def decoded(value: Any) -> Any:
    """A ``JSON`` column's value: SQLite's text, or psycopg's decoded value."""
    return json.loads(value) if isinstance(value, str) else value
