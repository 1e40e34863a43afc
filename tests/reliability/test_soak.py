"""Concurrency, short: coordinators and readers at once lose nothing and see no error; and a
write that finds the database busy waits again, says so, and never runs its body twice.

The long run is ``python -m benchmarks.reliability.soak --db PATH_OR_URL --seconds 120``.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager

import pytest
from sqlalchemy import create_engine, text

from benchmarks.reliability._common import create_schema, run_cli
from benchmarks.reliability.soak import run_soak
from sarcoma_sched.db import session as session_module
from sarcoma_sched.db.session import BUSY_RETRIES, Database
from sarcoma_sched.errors import DatabaseBusy
from sarcoma_sched.services.sites import add_site
from tests.cli.conftest import as_user
from tests.dumps import dump
from tests.reliability.databases import BACKENDS, migrated_database

TODAY = dt.date(2026, 11, 2)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_url(request, tmp_path_factory):
    """One database per backend for the busy tests: each adds its own site, so they can share
    it (and the migrations it costs)."""
    with migrated_database(request.param, tmp_path_factory.mktemp("busy")) as url:
        yield url


def test_coordinators_and_readers_together_lose_nothing_and_see_no_error(db_url, tmp_path):
    result = run_soak(db_url, 3.0, coordinators=4, readers=1, warm_up=2, work_dir=tmp_path / "soak")
    assert result.problems == []
    reported = sum(len(r.allocated) for r in result.reports)
    assert reported == result.counts["allocations"] >= 2  # the warm-up's, at least


# --- the busy path -------------------------------------------------------------------------------


@contextmanager
def write_lock(url: str) -> Iterator[Callable[[], None]]:
    """Hold the database's write lock from another connection; yields a release function."""
    if "://" not in url:
        with closing(sqlite3.connect(url, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield lambda: conn.in_transaction and conn.execute("ROLLBACK")
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # What every write transaction locks first (Database.write).
            conn.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            yield conn.rollback
    finally:
        engine.dispose()


def _add_site(db: Database, code: str) -> None:
    add_site(
        db, "nurse", code, "West China Hospital",
        time_zone="Asia/Shanghai", holiday_country="CN", holiday_subdivision=None,
    )  # fmt: skip


def test_a_write_that_finds_the_lock_held_waits_again_and_says_so(shared_url):
    db_url = shared_url
    notes: list[str] = []
    with write_lock(db_url) as release:

        def busy(line: str) -> None:
            notes.append(line)
            release()  # the other transaction ends while this one waits to retry

        db = Database(db_url, busy_timeout_ms=150, on_busy=busy)
        try:
            _add_site(db, "WCA")
        finally:
            db.dispose()
    assert notes[0] == ("database busy: waited 0.15 s for another transaction; retrying (1 of 2)")
    assert len(notes) <= BUSY_RETRIES
    assert "WCA" in dump(db_url)


def test_a_lock_held_through_every_retry_is_one_clear_error_and_changes_nothing(shared_url):
    db_url = shared_url
    before = dump(db_url)
    notes: list[str] = []
    db = Database(db_url, busy_timeout_ms=100, on_busy=notes.append)
    try:
        with write_lock(db_url), pytest.raises(DatabaseBusy) as raised:
            _add_site(db, "WCB")
    finally:
        db.dispose()
    assert str(raised.value) == (
        "database busy: another transaction held it for over 0.1 s (3 tries); "
        "nothing was changed, try again"
    )
    assert [n[-8:] for n in notes] == ["(1 of 2)", "(2 of 2)"]
    assert dump(db_url) == before


@pytest.mark.parametrize("held", ["until the first retry", "throughout"])
def test_the_command_prints_a_notice_per_retry_and_fails_only_if_the_lock_never_frees(
    shared_url, tmp_path, monkeypatch, held
):
    """The CLI's side: one ``notice:`` line per retry on stderr, exit 0 once the lock frees;
    otherwise the ``error:`` line, exit 1, nothing changed. The real timeout (30 s) is cut to
    0.15 s by wrapping the Database the command opens; the lock and the database are real."""
    db_url, code = shared_url, "WCC" if held == "throughout" else "WCD"
    before = dump(db_url)
    with write_lock(db_url) as release:

        def short_timeout(*args, on_busy=None, **kwargs):  # type: ignore[no-untyped-def]
            def busy(line: str) -> None:
                on_busy(line)
                if held == "until the first retry":
                    release()

            return Database(*args, busy_timeout_ms=150, on_busy=busy, **kwargs)

        monkeypatch.setattr(session_module, "Database", functools.wraps(Database)(short_timeout))
        status, out, err, escaped = run_cli(
            ["--db", db_url, *as_user(db_url, "nurse"), "site", "add", code, "--name", "West China",
             "--time-zone", "Asia/Shanghai", "--holiday-country", "CN"],
            {"XDG_CONFIG_HOME": str(tmp_path), "SARCOMA_SCHED_DB": None},
        )  # fmt: skip
    assert escaped is None
    notice = "notice: database busy: waited 0.15 s for another transaction; retrying"
    if held == "until the first retry":
        assert (status, out) == (0, f"site {code} added (West China, Asia/Shanghai)\n"), err
        assert err.startswith(f"{notice} (1 of 2)\n"), err
        assert code in dump(db_url)
    else:
        assert (status, out) == (1, ""), err
        assert err == (
            f"{notice} (1 of 2)\n{notice} (2 of 2)\n"
            "error: database busy: another transaction held it for over 0.15 s (3 tries); "
            "nothing was changed, try again\n"
        )
        assert dump(db_url) == before


def test_a_command_that_wrote_does_not_fail_at_exit_because_another_coordinator_committed(
    tmp_path,
):
    """On exit a writer refreshes SQLite's statistics (ANALYZE) once the schedule has grown.
    In a deferred transaction ANALYZE fails at once (SQLITE_BUSY_SNAPSHOT) if another
    coordinator committed since its first read, which turned a command that had already
    committed into ``error: database: database is locked`` (exit 1) once a network passed
    5,000 events; the moment is forced here instead of waited for in a long soak."""
    from sqlalchemy import event

    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.screening import screen
    from tests.cohort import ELIGIBLE_TNT

    path = tmp_path / "stats.db"
    path.touch()
    create_schema(str(path))
    db = Database(str(path))
    screened = screen(db, "nurse", "TNT-STS", "FJMUUH", ELIGIBLE_TNT, screened_on=TODAY)
    allocate_patient(db, "nurse", screened.screening_number, today=TODAY, consent_date=TODAY)
    with closing(sqlite3.connect(path)) as raw, raw:
        # Past the 5,000 events that make exit run ANALYZE, without planning 170 patients.
        columns = [row[1] for row in raw.execute("PRAGMA table_info(scheduled_events)")]
        copied = [
            "6000" if c == "id" else f"{c} || '-copy'" if c in ("uid", "event_id") else c
            for c in columns
        ]
        raw.execute(
            f"INSERT INTO scheduled_events ({', '.join(columns)}) "
            f"SELECT {', '.join(copied)} FROM scheduled_events LIMIT 1"
        )
    other = sqlite3.connect(path, isolation_level=None, timeout=0.05)

    @event.listens_for(db.engine, "before_cursor_execute")
    def _commit_elsewhere(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("ANALYZE"):
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("CREATE TABLE IF NOT EXISTS elsewhere (x)")
                other.execute("INSERT INTO elsewhere VALUES (1)")
                other.execute("COMMIT")
            except sqlite3.OperationalError:  # the exit holds the write lock: nothing commits
                if other.in_transaction:
                    other.execute("ROLLBACK")

    try:
        db.dispose()
    finally:
        other.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0
