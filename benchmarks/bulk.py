"""Write audited rows in bulk: the same rows and audit entries the ORM path writes, minus the ORM.

``benchmarks.network`` builds 100,000-patient networks with it. The engine's services add rows
as ORM objects and ``audit.record_flush`` chains one entry per inserted row from the object's
snapshot; here every row is a complete dict (every column, explicit primary key), inserted by
``executemany`` (``COPY`` on PostgreSQL), and its audit entry is chained from the same dict with
the same functions (``audit.canonical``, ``audit.entry_hash``), so ``audit verify`` checks a bulk
network exactly as it checks one written by coordinators. ``tests/integration/
test_network_builder.py`` builds one network both ways and compares every row.

Only for building a fresh network: explicit ids assume no other writer, which ``Database.write``
guarantees for the length of the transaction and ``build_network`` for the whole build.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text, update

from sarcoma_sched.db.audit import canonical, entry_hash
from sarcoma_sched.db.models import AUDITED, AuditEntry, AuditHead

__all__ = ["BulkWriter"]

# Parents before children (foreign keys); the audit log lists them in ``AUDITED`` order anyway.
ORDER = (
    "patients",
    "screenings",
    "enrollments",
    "allocations",
    "scheduled_events",
    "participation_ends",
)


class BulkWriter:
    """Hands out primary keys and writes batches of rows with their audit entries."""

    def __init__(self, conn: Connection) -> None:
        self._next: dict[str, int] = {}
        for name in ORDER:
            table = AUDITED[name].__table__
            self._next[name] = (conn.scalar(select(func.max(table.c.id))) or 0) + 1
        self._checked: set[str] = set()

    def next_id(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value

    def write(
        self,
        conn: Connection,
        rows: Mapping[str, Sequence[dict[str, Any]]],
        actor: str,
        action: str,
    ) -> int:
        """Insert ``rows`` (table name -> complete rows) and chain their audit entries; returns
        how many entries were appended. Call inside ``Database.write``: it holds the head lock."""
        for name, batch in rows.items():
            if batch and name not in self._checked:
                self._check_columns(AUDITED[name].__table__, batch[0])
                self._checked.add(name)
        if conn.dialect.name == "postgresql":
            # The server's triggers chain one entry per inserted row (migration 0006), with the
            # login as actor and the action Database.write declared; nothing to write here.
            for name in ORDER:
                if rows.get(name):
                    _insert(conn, AUDITED[name].__table__, rows[name])
            return sum(len(rows.get(name, ())) for name in ORDER)
        seq, prev = conn.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
        ).one()
        at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        entries = []
        # One flush's order: audited tables in AUDITED order, rows by id (record_flush's sort).
        for name in AUDITED:
            for row in sorted(rows.get(name, ()), key=lambda r: r["id"]):
                seq += 1
                change = canonical({"op": "insert", "before": None, "after": row})
                entity_id = str(row["id"])
                digest = entry_hash(seq, at, actor, action, name, entity_id, change, prev)
                entries.append((seq, at, actor, action, name, entity_id, change, prev, digest))
                prev = digest
        for name in ORDER:
            if rows.get(name):
                _insert(conn, AUDITED[name].__table__, rows[name])
        _insert(
            conn, AuditEntry.__table__, [dict(zip(_AUDIT_COLUMNS, e, strict=True)) for e in entries]
        )
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
        return len(entries)

    def finish(self, conn: Connection) -> None:
        """PostgreSQL: move each id sequence past the explicit ids, so the engine's own inserts
        (a coordinator's next ``screen``) do not collide with the bulk ones; and gather the
        planner's statistics of the loaded tables.

        Without ANALYZE the planner keeps the statistics of the empty tables the migrations
        made (6 rows expected of a range holding 16,000) and picks plans 10x slower until
        autovacuum comes by; a server gets there within minutes of a load, a benchmark run
        straight after the build would not. SQLite's statistics are refreshed by
        ``Database.dispose`` after writes (``db.engine.refresh_statistics``).
        """
        if conn.dialect.name != "postgresql":
            return
        for name in ORDER:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
                )
            )
        for name in (*ORDER, "audit_log", "audit_head"):
            conn.execute(text(f"ANALYZE {name}"))

    @staticmethod
    def _check_columns(table: Table, row: Mapping[str, Any]) -> None:
        # A column the schema gained (a later migration) must be written here too, or the rows
        # would silently take defaults that their audit entries do not record.
        expected = set(table.c.keys())
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise RuntimeError(f"{table.name}: bulk rows lack {missing}, have unknown {extra}")


_AUDIT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "change",
    "prev_hash",
    "hash",
)


def _insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
    else:
        conn.execute(insert(table), list(rows))


def _copy(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``COPY ... FROM STDIN``: PostgreSQL's bulk path, several times ``executemany``'s rate.

    Values go through each column's own bind processing (``UtcDateTime`` to naive UTC, JSON to
    text) so the stored values are those an ``INSERT`` would have stored.
    """
    columns = list(table.c)
    dialect = conn.dialect
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    json_columns = {i for i, c in enumerate(columns) if c.type._type_affinity.__name__ == "JSON"}
    names = ", ".join(f'"{c.name}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = []
            for i, column in enumerate(columns):
                value = row[column.name]
                if value is not None and i in json_columns:
                    value = json.dumps(value)
                elif processors[i] is not None:
                    value = processors[i](value)
                values.append(value)
            copy.write_row(values)
