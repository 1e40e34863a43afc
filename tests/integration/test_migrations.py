"""Migrations: they match the models, go down and up again, keep data, and guard the schema."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from contextlib import ExitStack

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select, text

from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.migrate import (
    SCHEMA_REVISION,
    current_revision,
    downgrade,
    head_revision,
    history,
    upgrade,
)
from sarcoma_sched.db.models import AuditEntry, Base, ScheduledEvent
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import SchemaMismatch
from sarcoma_sched.protocol import list_protocols
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.enrollment import enroll
from sarcoma_sched.services.protocols import load_protocols
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS
from tests.databases import pg_schema_url

VIEWS = {"v_visit_schedule", "v_enrollment_by_arm_site", "v_screening_log"}


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def _views(db: Database) -> set[str]:
    return set(inspect(db.engine).get_view_names())


def test_the_migrations_create_exactly_what_the_models_declare(db_url):
    db = Database(db_url, check_schema=False)
    upgrade(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert _tables(db) == set(Base.metadata.tables)
    db.dispose()


def test_the_revision_the_code_expects_is_the_scripts_head():
    assert head_revision() == SCHEMA_REVISION


def test_upgrade_downgrade_to_base_and_upgrade_again(db_url):
    db = Database(db_url, check_schema=False)
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _views(db) == VIEWS
    downgrade(db.engine, "base")
    assert current_revision(db.engine) is None
    assert _tables(db) == set()
    assert _views(db) == set()
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _tables(db) == set(Base.metadata.tables)
    assert _views(db) == VIEWS
    db.dispose()


def _dump(db: Database) -> dict[str, list[tuple]]:
    with db.engine.connect() as conn:
        return {
            name: sorted(tuple(r) for r in conn.execute(select(table)))
            for name, table in Base.metadata.tables.items()
        }


def _populate(db: Database) -> None:
    """Today's services write a small trial: screenings (one failing), enrolment, allocation
    with its calendar."""
    load_protocols(db, "dm", list_protocols())
    outcome = screen(
        db, "nurse", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=dt.date(2026, 3, 2)
    )
    enroll(db, "nurse", outcome.screening_number, dt.date(2026, 3, 1), today=dt.date(2026, 3, 2))
    allocate_patient(
        db,
        "nurse",
        outcome.screening_number,
        today=dt.date(2026, 3, 2),
        arm="NEOADJUVANT",
        basis="mdt_decision",
        reason="MDT 2026-03-02",
    )
    screen(
        db,
        "nurse",
        "NATARS",
        "BJFH",
        {**ELIGIBLE_NATARS, "age_years": "15"},
        screened_on=dt.date(2026, 3, 3),
    )


def _copy_rows(source: Database, target: Database) -> None:
    """Copy every row into ``target`` through the columns its (older) schema has."""
    old = MetaData()
    old.reflect(target.engine)
    with source.engine.connect() as src, target.engine.begin() as dst:
        dst.execute(text("DELETE FROM audit_head"))
        for table in Base.metadata.sorted_tables:
            if table.name not in old.tables:
                continue  # a table a later revision adds
            columns = [c.name for c in old.tables[table.name].columns]
            rows = [dict(r._mapping) for r in src.execute(select(*(table.c[c] for c in columns)))]
            if rows:
                dst.execute(old.tables[table.name].insert(), rows)


def test_data_written_at_the_first_revision_survives_every_upgrade(db_url, tmp_path):
    """A database populated at revision 0001 upgrades to head with every record intact, the
    back-filled columns equal to what today's code writes, and a valid audit chain."""
    with ExitStack() as stack:
        if db_url.startswith("postgresql"):
            current_url = stack.enter_context(pg_schema_url())
        else:
            current_url = str(tmp_path / "current.db")
        current = Database(current_url, check_schema=False)
        upgrade(current.engine)
        _populate(current)
        old = Database(db_url, check_schema=False)
        upgrade(old.engine, history()[-1].id)
        _copy_rows(current, old)

        upgrade(old.engine)

        expected, got = _dump(current), _dump(old)
        assert sum(len(rows) for rows in expected.values()) > 40
        unequal = {"audit_log", "audit_head", "protocol_activations", "installation"}
        for name in expected.keys() - unequal:
            assert got[name] == expected[name], name
        # 0001 had no installation table: 0012 gives the trial its id (the events stored before
        # keep the UIDs they were stored with, compared above).
        assert [row[::2] for row in got["installation"]] == [(1, "trial")]

        # 0011 back-fills each trial's baseline (the version it ran everywhere) as `protocol
        # load` writes it today; only when and by whom differ.
        def baseline(rows: list[tuple]) -> list[tuple]:
            return sorted(row[1:5] for row in rows)

        assert baseline(got["protocol_activations"]) == baseline(expected["protocol_activations"])
        assert {row[3] for row in got["protocol_activations"]} == {None}
        trials = len(expected["protocol_activations"])
        # Multi-day events (chemotherapy cycles) make the back-filled span_days worth comparing.
        with current.read() as session:
            assert session.scalar(select(func.max(ScheduledEvent.span_days))) > 0
        # The log keeps every entry and gains one per event row for each back-fill (0003: the
        # first and last day, 0005: the span), written by the migration.
        assert got["audit_log"][: len(expected["audit_log"])] == expected["audit_log"]
        added = got["audit_log"][len(expected["audit_log"]) :]
        events = len(expected["scheduled_events"])
        with old.read() as session:
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            # On PostgreSQL the server's triggers (0006) write 0011's entries as the login.
            by = "migration" if old.backend == "sqlite" else str(old.engine.url.username)
            assert Counter((e.actor, e.action) for e in entries[-len(added) :]) == {
                ("migration", "migrate 0003"): events,
                ("migration", "migrate 0005"): events,
                (by, "migrate 0011"): trials,
                (by, "migrate 0012"): 1,
            }
            assert verify(session).ok, verify(session).problems
            log = session.execute(
                text("SELECT site_code, eligible, enrolled FROM v_screening_log ORDER BY site_code")
            ).all()
        assert [(r.site_code, bool(r.eligible), r.enrolled) for r in log] == [
            ("BJFH", False, 0),
            ("PKUIH", True, 1),
        ]
        current.dispose()
        old.dispose()


def test_a_database_behind_the_code_is_refused_with_the_command_that_fixes_it(db_url):
    db = Database(db_url, check_schema=False)
    upgrade(db.engine, history()[-1].id)
    newest = Database(db_url)
    with pytest.raises(SchemaMismatch, match=r"older .* run `sarcoma-sched db upgrade`"):
        newest.read().__enter__()
    db.dispose()


def test_a_database_ahead_of_the_code_is_refused_and_not_downgraded(db_url):
    db = Database(db_url, check_schema=False)
    upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'fffffff'"))
    newest = Database(db_url)
    with pytest.raises(SchemaMismatch, match=r"newer than this sarcoma-sched.*upgrade sarcoma"):
        newest.write("nurse", "anything").__enter__()
    assert current_revision(db.engine) == "fffffff"
    db.dispose()


def test_an_empty_database_is_refused_with_the_init_command(db_url):
    with pytest.raises(SchemaMismatch, match="sarcoma-sched init"), Database(db_url).read():
        pass
