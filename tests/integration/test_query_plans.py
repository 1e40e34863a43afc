"""The daily queries use the indexes of migration 0005 when the database is network-sized.

A planner chooses from statistics, so a test database of a few patients says nothing about the
plan at 100,000. SQLite takes its statistics from ``sqlite_stat1``, which can be written: these
tests give an empty database the statistics ``ANALYZE`` records for a 100,000-patient, 50-site
network (``benchmarks.network``, measured at 10,000 and scaled) and read the plans of the exact
statements the services send. ``benchmarks.queries`` prints the plans on real networks, for
PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable

import pytest
from sqlalchemy import event

from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import NotFound
from sarcoma_sched.services import queries as q
from sarcoma_sched.services.lookups import find_patient
from sarcoma_sched.services.protocols import initialize

AS_OF = dt.date(2026, 11, 21)
WEEK = dt.timedelta(days=6)
SITE = "PKUIH"

# sqlite_stat1 of a 100,000-patient, 50-site network: rows, then the average rows per distinct
# value of each leading column prefix. Measured on a 10,000-patient network (190,881 events,
# 1.2% of them deviations, 218 patients a site) and scaled by ten; keyed by the indexed columns,
# because SQLite numbers its automatic (unique constraint) indexes by creation order.
EVENTS = 1_900_000
STATS: dict[str, dict[tuple[str, ...] | str, str]] = {
    "scheduled_events": {
        ("uid",): f"{EVENTS} 1",
        ("patient_id", "event_id"): f"{EVENTS} 20 1",
        ("target",): f"{EVENTS} 750",
        ("first_day",): f"{EVENTS} 1050",
        ("last_day",): f"{EVENTS} 960",
        ("span_days",): f"{EVENTS} 240000",
        ("status", "first_day"): f"{EVENTS} 477000 510",
        ("patient_id", "status", "first_day"): f"{EVENTS} 20 10 1",
        # partial indexes: their own row count
        "ix_scheduled_events_deviation_first_day": "23000 50",
        "ix_scheduled_events_deviation_patient_id_first_day": "23000 2 1",
    },
    "patients": {
        ("site_code",): "108600 2180",
        ("protocol_id", "screening_number"): "108600 36200 1",
        ("protocol_id", "study_id"): "108600 36200 1",
        ("study_id",): "108600 1",
        ("screening_number",): "108600 1",
    },
    "allocations": {
        ("patient_id",): "100000 1",
        ("protocol_id", "position"): "100000 33340 1",
    },
    "sites": {("code",): "50 1"},
}


@pytest.fixture(scope="module")
def network_statistics(tmp_path_factory) -> Database:
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    db = Database(str(path), check_schema=False)
    initialize(db, "setup")  # the sites the queries name
    db.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")  # creates sqlite_stat1
        conn.execute("DELETE FROM sqlite_stat1")
        for table, stats in STATS.items():
            for name, partial in conn.execute(
                "SELECT name, partial FROM pragma_index_list(?)", (table,)
            ).fetchall():
                columns = tuple(
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (name,)
                    )
                )
                stat = stats[name] if partial else stats[columns]
                conn.execute("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (table, name, stat))
    db = Database(str(path))  # new connections load the statistics
    yield db
    db.dispose()


def _plans(db: Database, ask: Callable) -> list[str]:
    """The query plan of every statement ``ask`` sends, one line per step."""
    sent: list[tuple[str, tuple]] = []

    def capture(_conn, _cursor, statement, params, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    with db.read() as session:
        session.connection()  # BEGIN before listening: only the service's own statements
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            ask(session)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        conn = session.connection()
        return [
            row[3]
            for statement, params in sent
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
        ]


def _assert_uses(plan: list[str], *steps: str) -> None:
    for step in steps:
        assert any(step in line for line in plan), f"{step!r} not in plan:\n" + "\n".join(plan)
    # No step reads a whole table of events or patients.
    assert not [line for line in plan if line.startswith("SCAN")], "\n".join(plan)


def test_visits_at_a_site_walk_its_patients_and_read_each_ones_week(network_statistics):
    plan = _plans(network_statistics, lambda s: q.visits(s, AS_OF, AS_OF + WEEK, site=SITE))
    _assert_uses(
        plan,
        "USING COVERING INDEX ix_scheduled_events_span_days",
        "USING INDEX ix_patients_site_code (site_code=?)",
        "USING INDEX ix_scheduled_events_patient_id_status_first_day "
        "(patient_id=? AND status=? AND first_day>? AND first_day<?)",
    )


def test_overdue_at_a_site_reads_each_patients_planned_events_before_today(network_statistics):
    plan = _plans(network_statistics, lambda s: q.overdue(s, AS_OF, site=SITE))
    _assert_uses(
        plan,
        "USING INDEX ix_patients_site_code (site_code=?)",
        "USING INDEX ix_scheduled_events_patient_id_status_first_day "
        "(patient_id=? AND status=? AND first_day<?)",
    )


def test_deviations_this_month_read_the_month_of_the_deviation_index(network_statistics):
    plan = _plans(
        network_statistics,
        lambda s: q.deviations(s, date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 11, 30)),
    )
    _assert_uses(
        plan, "USING INDEX ix_scheduled_events_deviation_first_day (first_day>? AND first_day<?)"
    )


def test_the_whole_networks_week_and_overdue_read_date_ranges(network_statistics):
    week = _plans(network_statistics, lambda s: q.visits(s, AS_OF, AS_OF + WEEK))
    _assert_uses(week, "USING INDEX ix_scheduled_events_first_day (first_day>? AND first_day<?)")
    overdue = _plans(network_statistics, lambda s: q.overdue(s, AS_OF))
    _assert_uses(
        overdue, "USING INDEX ix_scheduled_events_status_first_day (status=? AND first_day<?)"
    )


def test_a_patient_is_found_by_study_id_or_screening_number_through_an_index(
    network_statistics,
):
    def ask(session):
        with contextlib.suppress(NotFound):  # the database holds no patient
            find_patient(session, "PKUIH-NATARS-0007")

    plan = _plans(network_statistics, ask)
    _assert_uses(
        plan,
        "MULTI-INDEX OR",
        "USING INDEX ix_patients_study_id (study_id=?)",
        "USING INDEX ix_patients_screening_number (screening_number=?)",
    )
