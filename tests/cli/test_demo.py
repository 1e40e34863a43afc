"""The README's first command: ``sarcoma-sched demo``, run as a new user would.

One module-scoped run with a fixed ``--as-of`` (so the numbers are known); the tests read what
it left behind: the database, the calendars, and what the other commands say about them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import stat
from pathlib import Path

import icalendar
import pytest

from tests import icaljs
from tests.cli.conftest import invoke, query

AS_OF = "2026-11-21"


@pytest.fixture(scope="module")
def demo(command, tmp_path_factory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("demo")
    done = invoke(command, cwd, "demo", "--as-of", AS_OF)
    return cwd, done.stdout


def test_the_demo_screens_allocates_and_summarises(demo):
    cwd, out = demo
    db = cwd / "sarcoma-demo" / "demo.db"
    assert db.is_file()
    screened = query(
        db, "SELECT count(*), sum(CASE WHEN eligible THEN 1 ELSE 0 END) FROM screenings"
    )
    assert screened == [(32, 27)]
    assert "screened   32 synthetic patients; 5 not eligible:" in out
    arms = dict(
        ((p, a), n)
        for p, a, n in query(
            db, "SELECT protocol_id, arm, count(*) FROM allocations GROUP BY protocol_id, arm"
        )
    )
    assert sum(arms.values()) == 27
    assert set(arms) >= {("TNT-STS", "TNT"), ("NATARS", "NEOADJUVANT"), ("NATARS-R", "NEOADJUVANT")}
    for (protocol, arm), n in arms.items():
        assert re.search(rf"{protocol}\s+{arm}\s+{n}\b", out), (protocol, arm, n)
    # Positions are gap-free per trial; every patient has a calendar.
    for protocol, positions, top in query(
        db, "SELECT protocol_id, count(*), max(position) FROM allocations GROUP BY protocol_id"
    ):
        assert positions == top, protocol
    assert query(
        db,
        "SELECT count(*) FROM allocations a WHERE NOT EXISTS "
        "(SELECT 1 FROM scheduled_events e WHERE e.patient_id = a.patient_id)",
    ) == [(0,)]


def test_recorded_delays_moved_later_events_and_left_deviations(demo, command):
    cwd, out = demo
    db = cwd / "sarcoma-demo" / "demo.db"
    # A late cycle moves what is timed from it (its anlotinib, and the next cycle where the
    # re-plan needs to): the re-plan raised those rows' revision.
    assert re.search(r"ai\.1 done \d+ days late .*moved: anlotinib\.1 \+\d+d", out)
    assert re.search(r"ai\.2 done \d+ days late .*moved: anlotinib\.2 \+\d+d, ai\.3 \+\d+d", out)
    moved = query(
        db, "SELECT count(*) FROM scheduled_events WHERE status = 'planned' AND revision > 0"
    )
    assert moved[0][0] > 10
    statuses = dict(query(db, "SELECT status, count(*) FROM scheduled_events GROUP BY status"))
    assert statuses["done"] > 80
    assert statuses["missed"] == 1 and statuses["skipped"] == 1
    assert statuses["cancelled"] > 10  # the withdrawal
    assert query(db, "SELECT kind FROM participation_ends") == [("withdrawn",)]
    assert query(db, "SELECT count(*) FROM scheduled_events WHERE pinned IS NOT NULL") == [(1,)]
    assert query(db, "SELECT count(*) FROM site_closures WHERE site_code = 'PKUIH'") == [(1,)]
    devs = json.loads(
        invoke(command, cwd, "--db", str(db), "deviations", "--format", "json").stdout
    )
    assert {"missed", "skipped"} <= {d["status"] for d in devs}


def test_the_demo_database_passes_audit_verify(demo, command):
    cwd, _ = demo
    done = invoke(command, cwd, "--db", "sarcoma-demo/demo.db", "audit", "verify")
    assert done.stdout.startswith("audit log intact:")


def test_the_demo_keeps_its_key_owner_only_and_the_verify_it_prints_confirms_every_draw(
    demo, command
):
    cwd, out = demo
    key = cwd / "sarcoma-demo" / "demo.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    printed = (
        "sarcoma-sched --db sarcoma-demo/demo.db allocation verify NATARS-R "
        "--secret-file sarcoma-demo/demo.key"
    )
    assert f"  {printed}" in out.splitlines()
    [(allocated,)] = query(
        cwd / "sarcoma-demo" / "demo.db",
        "SELECT count(*) FROM allocations WHERE protocol_id = 'NATARS-R'",
    )
    done = invoke(command, cwd, *shlex.split(printed)[1:])
    assert done.stdout == f"NATARS-R (minimization): all {allocated} allocations confirmed\n"


def test_every_calendar_parses_with_icalendar_and_ical_js(demo):
    cwd, _ = demo
    db = cwd / "sarcoma-demo" / "demo.db"
    files = sorted((cwd / "sarcoma-demo").glob("*.ics"))
    patients = [f for f in files if not f.name.startswith("site-")]
    assert len(patients) == 27
    assert {f.name for f in files} - {f.name for f in patients} == {
        "site-PKUIH.ics",
        "site-FJMUUH.ics",
    }
    by_js = icaljs.parse(*files)
    for path in files:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        events = calendar.walk("VEVENT")
        assert events, path.name
        uids = [str(e["UID"]) for e in events]
        assert len(uids) == len(set(uids)), path.name
        js_events = by_js[str(path)]["vevents"]
        assert sorted(e["uid"] for e in js_events) == sorted(uids), path.name
        # Both parsers read the same first day and SEQUENCE for every event.
        ours = {str(e["UID"]): (e.decoded("DTSTART"), int(e["SEQUENCE"])) for e in events}
        for e in js_events:
            start, sequence = ours[e["uid"]]
            assert e["dtstart"]["value"] == start.isoformat(), (path.name, e["uid"])
            assert e["sequence"] == sequence
        text = path.read_text(encoding="utf-8")
        assert "birth" not in text.lower()
    # A patient file holds every event of the patient; its UIDs are the database's.
    study_id = patients[0].stem
    stored = {
        uid
        for (uid,) in query(
            db,
            "SELECT e.uid FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
            "WHERE p.study_id = :sid",
            sid=study_id,
        )
    }
    exported = {
        str(e["UID"]) for e in icalendar.Calendar.from_ical(patients[0].read_bytes()).walk("VEVENT")
    }
    # Multi-day visit courses are one VEVENT per day with a derived UID (``.dN@``).
    assert {re.sub(r"\.d\d+@", "@", u) for u in exported} == stored


def test_a_second_demo_refuses_to_overwrite_then_replaces(demo, run, tmp_path):
    first = run("demo", "--as-of", AS_OF, "--out", "d")
    assert first.returncode == 0, first.stderr
    again = run("demo", "--as-of", AS_OF, "--out", "d")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "error: d/demo.db exists: give --replace to start the demo afresh, or --db NEW.db"
    )
    replaced = run("demo", "--as-of", AS_OF, "--out", "d", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    # Same as-of, same fixed demo key: the same cohort gets the same arms.
    same = query(
        tmp_path / "d" / "demo.db",
        "SELECT p.study_id, a.arm FROM allocations a JOIN patients p ON p.id = a.patient_id "
        "ORDER BY p.study_id",
    )
    original = query(
        demo[0] / "sarcoma-demo" / "demo.db",
        "SELECT p.study_id, a.arm FROM allocations a JOIN patients p ON p.id = a.patient_id "
        "ORDER BY p.study_id",
    )
    assert same == original


def test_theatre_capacity_moves_the_second_surgery_to_the_next_session(demo):
    cwd, out = demo
    db = cwd / "sarcoma-demo" / "demo.db"
    line = next(line for line in out.splitlines() if line.startswith("capacity "))
    first, second = re.findall(r"PKUIH-NATARS-\d{4}", line)
    rows = {
        sid: (dt.date.fromisoformat(day), target, earliest, latest, flags)
        for sid, day, target, earliest, latest, flags in query(
            db,
            "SELECT p.study_id, e.first_day, e.target, e.earliest, e.latest, e.flags "
            "FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
            "WHERE e.event_id = 'surgery' AND p.study_id IN (:a, :b)",
            a=first,
            b=second,
        )
    }
    (day_a, target_a, *_), (day_b, target_b, earliest, latest, flags) = rows[first], rows[second]
    assert target_a == target_b  # same day allocated, same protocol target
    assert day_b > day_a and earliest <= day_b.isoformat() <= latest
    assert day_a.weekday() in (1, 3) and day_b.weekday() in (1, 3)  # PKUIH sessions: Tue, Thu
    assert json.loads(flags) == []
    assert f"moved to {day_b}" in line
    # No PKUIH theatre session holds two surgeries that are not flagged over capacity.
    busy = query(
        db,
        "SELECT e.first_day, count(*) FROM scheduled_events e "
        "JOIN patients p ON p.id = e.patient_id WHERE p.site_code = 'PKUIH' "
        "AND e.kind = 'surgery' AND e.status = 'planned' "
        "AND e.flags NOT LIKE '%over_capacity%' GROUP BY e.first_day",
    )
    assert busy and all(n == 1 for _, n in busy)
