"""No audited table changes through the one write path without its audit entry.

`site capacity` once replaced a resource's rows by a bulk DELETE, which the audit hook never
saw: `audit verify` then failed (`site_resources 1: deleted without an audit entry`). The write
path now refuses every write that would bypass the log (bulk UPDATE or DELETE, a Core INSERT,
a textual statement) against every audited table, on both backends, and changes nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, text, update

from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.models import AUDITED
from sarcoma_sched.services.capacity import set_capacity
from tests.dumps import dump

WRITES = {
    "bulk update": lambda table: update(table).values({_column(table): None}),
    "bulk delete": lambda table: delete(table),
    "core insert": lambda table: insert(table).values({}),
    "text update": lambda table: text(f"UPDATE {table.name} SET {_column(table)} = NULL"),
    "text delete": lambda table: text(f"  delete from {table.name}"),
    "text insert": lambda table: text(f'INSERT INTO "{table.name}" DEFAULT VALUES'),
}


def _column(table) -> str:
    return next(c.name for c in table.columns if not c.primary_key)


def _verified(database) -> list[str]:
    with database.read() as session:
        return verify(session).problems


@pytest.mark.parametrize("kind", list(WRITES))
def test_every_write_that_bypasses_the_audit_log_is_refused_on_every_audited_table(database, kind):
    before = dump(database.url)
    for name in [*AUDITED, "audit_log", "audit_head"]:
        table = AUDITED[name].__table__ if name in AUDITED else None
        if table is None:
            from sarcoma_sched.db.models import AuditEntry, AuditHead

            table = (AuditEntry if name == "audit_log" else AuditHead).__table__
        with (
            pytest.raises(RuntimeError, match=f"{name} would bypass the audit log"),
            database.write("mallory", "bulk") as session,
        ):
            session.execute(WRITES[kind](table))
    assert dump(database.url) == before
    assert _verified(database) == []


def test_replacing_a_sites_capacity_twice_and_clearing_it_keeps_the_audit_log_whole(database):
    set_capacity(database, "coordinator", "PKUIH", "theatre", per_weekday={"tue": 2})
    set_capacity(database, "coordinator", "PKUIH", "theatre", per_weekday={"tue": 3, "thu": 1})
    assert _verified(database) == []
    set_capacity(database, "coordinator", "PKUIH", "theatre")
    assert _verified(database) == []
    with database.read() as session:
        deleted = session.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE entity = 'site_resources' "
                "AND change LIKE '%delete%'"
            )
        ).scalar_one()
    # tue=2 replaced, then tue=3 and thu=1 cleared: each row's end is in the log.
    assert deleted == 3
