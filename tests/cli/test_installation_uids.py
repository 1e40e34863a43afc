"""iCalendar UIDs carry the database's installation id (issue 21, item 5): stable for one
database, different for another, so two trial databases' calendars never collide in a client."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from icalendar import Calendar

from tests.cli.conftest import SCRUBBED, query
from tests.cohort import ELIGIBLE_NATARS

STUDY_ID = "PKUIH-NATARS-0001"


def _trial(run, db: str) -> None:
    run("--db", db, "init", check=True)
    values = [arg for k, v in ELIGIBLE_NATARS.items() for arg in ("--field", f"{k}={v}")]
    run("--db", db, "screen", "NATARS", "--site", "PKUIH", *values, "--date", "2026-03-02",
        check=True)  # fmt: skip
    run("--db", db, "allocate", "PKUIH-NATARS-S0001", "--consent-date", "2026-03-03",
        "--date", "2026-03-04", "--arm", "NEOADJUVANT", "--basis", "mdt_decision",
        "--reason", "MDT", check=True)  # fmt: skip


def _uids(run, db: str, out: Path) -> list[str]:
    run("--db", db, "export", "ical", STUDY_ID, "--out", str(out), check=True)
    calendar = Calendar.from_ical(out.read_bytes())
    return sorted(str(v["UID"]) for v in calendar.walk("VEVENT"))


def test_uids_are_the_same_on_every_export_and_differ_between_two_databases(run, tmp_path):
    first, second = str(tmp_path / "site.db"), str(tmp_path / "network.db")
    _trial(run, first)
    _trial(run, second)
    [(installation,)] = query(first, "SELECT uid FROM installation")
    short = installation.replace("-", "")[:12]

    once = _uids(run, first, tmp_path / "a.ics")
    again = _uids(run, first, tmp_path / "b.ics")
    assert once == again and len(once) > 20
    assert all(re.fullmatch(rf"pkuih-natars-0001\.[a-z0-9_.]+@{short}\.sarcoma-sched", u)
               for u in once), once[:3]  # fmt: skip
    # The same patient and events in another database: not one UID in common.
    other = _uids(run, second, tmp_path / "c.ics")
    assert len(other) == len(once) and not set(other) & set(once)
    # A re-plan keeps the UIDs (a client updates its entries by them).
    run("--db", first, "record", STUDY_ID, "labs.1", "--status", "missed", check=True)
    assert _uids(run, first, tmp_path / "d.ics") == once


def test_a_database_upgraded_from_0011_without_an_installation_row_gets_one_once(command, tmp_path):
    """A database set up with `db upgrade` alone has no installation row until 0012 writes it
    (audited, chain intact); it is not made again by a later `init`."""
    db = tmp_path / "old.db"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")

    def sched(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([command, "--db", str(db), *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    from sarcoma_sched.db.migrate import upgrade
    from sarcoma_sched.db.models import Site
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.db.types import utc_now

    database = Database(str(db), check_schema=False)
    try:
        upgrade(database.engine, "0011")
        # A trial's site, written through the engine (audited) as the code of 0011 did.
        with database.write("setup", "site add") as session:
            session.add(Site(code="PKUIH", name="PKUIH", time_zone="Asia/Shanghai",
                             holiday_country="CN", created_at=utc_now()))  # fmt: skip
    finally:
        database.dispose()
    assert query(db, "SELECT count(*) FROM installation") == [(0,)]
    sched("db", "upgrade")
    rows = query(db, "SELECT id, purpose FROM installation")
    assert rows == [(1, "trial")]
    [(made,)] = query(db, "SELECT uid FROM installation")
    assert query(db, "SELECT actor, action FROM audit_log WHERE entity = 'installation'") == [
        ("migration", "migrate 0012")
    ]
    sched("audit", "verify")
    sched("init")
    assert query(db, "SELECT uid FROM installation") == [(made,)]
