"""Rows into one table through the driver's ``executemany``, bound as Core would bind them.

Core's ``Connection.execute(insert(table), rows)`` recompiles nothing (its statement cache holds
the SQL) but still builds a parameter dict per row and runs each value through a generic path;
for the two dozen rows an allocation writes (its calendar's events, their audit entries) that
per-row machinery cost more than SQLite took to store them (BENCHMARKS.md, issue 24). Here the
statement is compiled once per table, dialect and column set, each column's own bind processor
(``TypeEngine.bind_processor``: a date's text, a JSON column's serializer, ``UtcDateTime``) is
looked up once, and each row becomes one tuple for ``Connection.exec_driver_sql``, which still
runs through the engine's events and the transaction in progress.

Positional drivers only (SQLite's ``qmark``): the PostgreSQL writes go through the server's
audit triggers and ``RETURNING`` instead (``audit.insert_audited``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect

__all__ = ["insert_rows"]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the row keys, in the statement's parameter order
    processors: tuple[Callable[[Any], Any] | None, ...]


_COMPILED: dict[tuple[Table, str, frozenset[str]], _Compiled] = {}


def _compiled(table: Table, dialect: Dialect, names: frozenset[str]) -> _Compiled:
    key = (table, dialect.name, names)
    found = _COMPILED.get(key)
    if found is None:
        if not dialect.positional:
            raise RuntimeError(f"{dialect.name}: insert_rows needs a positional paramstyle")
        statement = insert(table).values({name: bindparam(name) for name in sorted(names)})
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ())
        if set(order) != names:  # pragma: no cover - every value is one bind parameter
            raise RuntimeError(f"{table.name}: compiled parameters {order} differ from {names}")
        processors = tuple(
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
        )
        found = _COMPILED[key] = _Compiled(compiled.string, order, processors)
    return found


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int | None:
    """Insert ``rows`` (each with the same keys, all columns of ``table`` or some of them) in
    one statement; returns the row id the driver reports for the last row (SQLite's
    ``lastrowid``: the new id of a single row inserted without one)."""
    if not rows:
        return None
    names = frozenset(rows[0])
    if any(len(row) != len(names) for row in rows):
        raise RuntimeError(f"{table.name}: rows differ in their columns")
    compiled = _compiled(table, conn.dialect, names)
    # Column by column: one map() per column instead of a Python step per value.
    columns = []
    for name, process in zip(compiled.names, compiled.processors, strict=True):
        values = [row[name] for row in rows]
        # None too: a JSON column stores it as JSON null, as Core would.
        columns.append(values if process is None else list(map(process, values)))
    params = list(zip(*columns, strict=True))
    if len(params) == 1:
        return conn.exec_driver_sql(compiled.sql, params[0]).lastrowid
    conn.exec_driver_sql(compiled.sql, params)
    return None
