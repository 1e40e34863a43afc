"""``site capacity``, ``capacity`` and ``visits --over-capacity`` through the installed command,
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS

FIELDS = [arg for k, v in ELIGIBLE_NATARS.items() for arg in ("--field", f"{k}={v}")]


def test_capacity_places_surgeries_and_the_view_counts_them(run, db_arg):
    db = ["--db", db_arg]
    run(*db, "init", check=True)
    done = run(*db, "site", "capacity", "PKUIH", "theatre", "--day", "thu=1", check=True)
    assert done.stdout.strip() == "PKUIH theatre: thu 1"
    listed = json.loads(
        run(*db, "site", "capacity", "PKUIH", "--format", "json", check=True).stdout
    )
    assert listed == [{"site": "PKUIH", "resource": "theatre", "capacity": "thu 1"}]
    for i in range(1, 5):
        run(*db, "screen", "NATARS", "--site", "PKUIH", *FIELDS, "--date", "-2d", check=True)
        run(
            *db, "allocate", f"PKUIH-NATARS-S000{i}", "--consent-date", "-2d", "--date", "-1d",
            "--arm", "SURGERY_ONLY", "--basis", "mdt_decision", "--reason", "MDT", check=True,
        )  # fmt: skip
    rows = query(
        db_arg,
        "SELECT p.study_id, e.first_day, e.earliest, e.latest, e.flags "
        "FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE e.kind = 'surgery' ORDER BY p.study_id",
    )
    days = [dt.date.fromisoformat(str(r[1])) for r in rows]
    flagged = [r[0] for r in rows if "over_capacity" in json.dumps(r[4])]
    placed = [d for r, d in zip(rows, days, strict=True) if r[0] not in flagged]
    # One Thursday session a week: each unflagged surgery has its own Thursday in the window.
    assert all(d.weekday() == 3 for d in placed) and len(set(placed)) == len(placed)
    assert len(placed) + len(flagged) == 4 and placed
    start, end = min(days) - dt.timedelta(days=7), max(days) + dt.timedelta(days=7)
    usage = json.loads(
        run(*db, "capacity", "--site", "PKUIH", "--from", str(start), "--to", str(end),
            "--format", "json", check=True).stdout
    )  # fmt: skip
    theatre = {r["slot"]: r for r in usage if r["resource"] == "theatre"}
    assert {s for s, r in theatre.items() if r["booked"]} == {str(d) for d in days}
    for slot, n in Counter(str(d) for d in days).items():
        r = theatre[slot]
        capacity = 1 if dt.date.fromisoformat(slot).weekday() == 3 else 0
        assert (r["booked"], r["capacity"], r["over_capacity"]) == (
            n,
            capacity,
            max(n - capacity, 0),
        )
    over = json.loads(
        run(*db, "visits", "--over-capacity", "--from", str(start), "--to", str(end),
            "--format", "json", check=True).stdout
    )  # fmt: skip
    assert sorted(v["study_id"] for v in over) == sorted(flagged)
    assert run(*db, "audit", "verify", check=True).stdout.startswith("audit log intact")
    assert query(db_arg, "SELECT count(*) FROM audit_log WHERE entity = 'site_resources'") == [(1,)]


def test_capacity_mistakes_are_one_line_and_change_nothing(run, tmp_path):
    db = ["--db", str(tmp_path / "t.db")]
    run(*db, "init", check=True)
    cases = [
        (("site", "capacity", "PKUIH", "theatre", "--week", "3"), 1,
         "error: theatre is counted per day: use --day mon=N ..."),
        (("site", "capacity", "PKUIH", "rt_course", "--day", "mon=1"), 1,
         "error: rt_course is counted per week: use --week N"),
        (("site", "capacity", "PKUIH", "theatre", "--day", "funday=1"), 1,
         "error: --day funday=1: the day must be one of mon, tue, wed, thu, fri, sat, sun"),
        (("site", "capacity", "NOPE", "theatre", "--day", "tue=1"), 1, "error: no site 'NOPE'"),
        (("site", "capacity", "PKUIH", "theatre"), 2, "give --day DAY=N"),
        (("site", "capacity", "PKUIH", "beds", "--day", "tue=1"), 2, "'beds' is not one of"),
        (("capacity", "--site", "NOPE"), 1, "error: no site 'NOPE'"),
    ]  # fmt: skip
    before = query(tmp_path / "t.db", "SELECT count(*) FROM audit_log")
    for args, code, message in cases:
        result = run(*db, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert query(tmp_path / "t.db", "SELECT count(*) FROM audit_log") == before
