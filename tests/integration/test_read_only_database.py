"""A ``Database(read_only=True)`` reads like any other and cannot write, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.session import Database
from tests.dumps import dump


def test_a_read_only_database_verifies_and_refuses_every_write(database, db_url):
    before = dump(db_url)
    reader = Database(db_url, read_only=True)
    try:
        with reader.read() as session:
            assert verify(session).ok
        # Below the session's own guards: the connection itself refuses (SQLite's query_only,
        # PostgreSQL's read-only transactions).
        with reader.engine.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.exec_driver_sql("UPDATE audit_head SET seq = seq")
        assert "read" in str(refused.value.orig).lower()  # readonly / read-only transaction
        with pytest.raises(RuntimeError, match="opened read-only"), reader.write("t", "screen"):
            pass
    finally:
        reader.dispose()
    assert dump(db_url) == before
