"""``db.driver_insert.insert_rows`` stores what Core's ``insert`` stores, byte for byte.

It skips Core's per-row parameter handling and applies each column's bind processor itself, so
the one thing to prove is that nothing it binds differs: for rows of every type the models use
(text, integers, booleans, dates, ``UtcDateTime`` instants, JSON of any shape, None), two
identical tables on a real SQLite file, one written each way, hold the same values with the
same SQLite storage classes.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
)

from sarcoma_sched.db.driver_insert import insert_rows
from sarcoma_sched.db.types import UtcDateTime


def _table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("label", String(64)),
        Column("note", Text, nullable=True),
        Column("count", Integer, nullable=True),
        Column("flag", Boolean, nullable=True),
        Column("day", Date, nullable=True),
        Column("at", UtcDateTime, nullable=True),
        Column("doc", JSON, nullable=True),
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
_instants = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
_rows = st.lists(
    st.fixed_dictionaries(
        {
            "label": st.text(max_size=20),
            "note": st.none() | st.text(max_size=40),
            "count": st.none() | st.integers(-(2**31), 2**31 - 1),
            "flag": st.none() | st.booleans(),
            "day": st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)),
            "at": st.none() | _instants,
            "doc": _json,
        }
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def file(tmp_path_factory):
    return tmp_path_factory.mktemp("driver-insert") / "rows.db"


@settings(max_examples=60, deadline=None)
@given(rows=_rows)
def test_insert_rows_stores_what_core_stores(file, rows):
    metadata = MetaData()
    core, driver = _table(metadata, "by_core"), _table(metadata, "by_driver")
    engine = create_engine(f"sqlite:///{file}")
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(core), rows)
            last = insert_rows(conn, driver, rows)
        if len(rows) == 1:
            assert last == 1  # the id SQLite chose for the one row
    finally:
        engine.dispose()
    with sqlite3.connect(file) as raw:
        columns = "id, label, note, count, flag, day, at, doc"
        typed = ", ".join(f"typeof({c})" for c in columns.split(", "))
        query = "SELECT {0}, {1} FROM {2} ORDER BY id"
        assert (
            raw.execute(query.format(columns, typed, "by_driver")).fetchall()
            == raw.execute(query.format(columns, typed, "by_core")).fetchall()
        )


def test_rows_with_different_columns_are_refused(tmp_path):
    table = _table(MetaData(), "t")
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    table.metadata.create_all(engine)
    try:
        with engine.begin() as conn, pytest.raises(RuntimeError, match="differ in their columns"):
            insert_rows(conn, table, [{"label": "a"}, {"label": "b", "count": 1}])
    finally:
        engine.dispose()
