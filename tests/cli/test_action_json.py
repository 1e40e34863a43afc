"""``--format json`` of the commands that act, for scripts: withdraw, exclude, reschedule and
the two verifications, each held to its schema in docs/schemas/ (allocate and record are held
to theirs in test_schedule_outputs.py). An error stays one line on stderr, stdout empty."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from tests.cli.conftest import query
from tests.cli.test_schedule_outputs import validator
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

FIELDS = [arg for name, value in ELIGIBLE_NATARS.items() for arg in ("--field", f"{name}={value}")]
ARMS = {"SURGERY_ONLY", "NEOADJUVANT"}


def _one_error_line(done) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def _allocated(run, db: str, protocol: str, *allocate: str) -> list[str]:
    run("--db", db, "init", check=True)
    for _ in range(2):
        run("--db", db, "screen", protocol, "--site", "PKUIH", *FIELDS, check=True)
    numbers = [n for (n,) in query(db, "SELECT screening_number FROM patients ORDER BY id")]
    allocated = []
    for number in numbers:
        done = run("--db", db, "allocate", number, "--consent-date", "today", *allocate,
                   "--format", "json", check=True)  # fmt: skip
        allocated.append(json.loads(done.stdout)["study_id"])
    return allocated


def test_withdraw_and_exclude_print_a_document_of_what_they_cancelled(run, tmp_path):
    db = str(tmp_path / "t.db")
    first, second = _allocated(
        run, db, "NATARS", "--arm", "NEOADJUVANT", "--basis", "mdt_decision", "--reason", "MDT"
    )
    withdrawn = run(
        "--db", db, "withdraw", first, "--reason-code", "patient_request", "--format", "json"
    )  # fmt: skip
    assert withdrawn.returncode == 0, withdrawn.stderr
    document = json.loads(withdrawn.stdout)
    validator("withdraw").validate(document)
    cancelled = query(
        db,
        "SELECT e.event_id FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE p.study_id = :s AND e.status = 'cancelled' ORDER BY e.event_id",
        s=first,
    )
    assert document["study_id"] == first and document["status"] == "withdrawn"
    assert sorted(document["cancelled"]) == [e for (e,) in cancelled] and cancelled
    excluded = run(
        "--db", db, "exclude", second, "--criterion", "EXC-02", "--reason", "final pathology",
        "--format", "json",
    )  # fmt: skip
    assert excluded.returncode == 0, excluded.stderr
    document = json.loads(excluded.stdout)
    validator("withdraw").validate(document)
    assert document["status"] == "excluded" and document["criterion"] == "EXC-02"


def test_reschedule_prints_the_record_document(run, tmp_path):
    db = str(tmp_path / "t.db")
    (study_id, _) = _allocated(
        run, db, "NATARS", "--arm", "NEOADJUVANT", "--basis", "mdt_decision", "--reason", "MDT"
    )
    shown = json.loads(run("--db", db, "schedule", study_id, "--format", "json").stdout)
    ai2 = next(e for e in shown["events"] if e["event"] == "ai.2")
    inside = ai2["window"]["latest"] if ai2["days"][0] != ai2["window"]["latest"] else None
    inside = inside or ai2["window"]["earliest"]
    moved = run("--db", db, "reschedule", study_id, "ai.2", "--to", inside, "--format", "json")
    if moved.returncode != 0:  # the window's edge is a weekend: the day the planner chose
        moved = run(
            "--db", db, "reschedule", study_id, "ai.2", "--to", ai2["days"][0], "--format", "json"
        )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    document = json.loads(moved.stdout)
    validator("record").validate(document)
    assert document["study_id"] == study_id and document["event"] == "ai.2"


def test_a_refusal_in_json_mode_is_one_line_on_stderr_and_nothing_on_stdout(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    before = dump(db)
    for args in (
        ["withdraw", "PKUIH-NATARS-0099", "--reason-code", "patient_request"],
        ["reschedule", "PKUIH-NATARS-0099", "ai.2", "--to", "+30d"],
        ["allocation", "verify", "NOSUCH"],
    ):
        done = run("--db", db, *args, "--format", "json")
        assert "0099" in _one_error_line(done) or "NOSUCH" in done.stderr
        assert done.stdout == ""
    assert dump(db) == before


def test_audit_verify_prints_its_findings_as_json_and_fails_in_one_line(run, tmp_path):
    db = tmp_path / "t.db"
    run("--db", str(db), "init", check=True)
    ok = run("--db", str(db), "audit", "verify", "--format", "json", check=True)
    document = json.loads(ok.stdout)
    validator("audit-verify").validate(document)
    assert document["ok"] and document["entries"] > 0 and document["problems"] == []
    run("--db", str(db), "audit", "anchor", "--out", "anchor.json", check=True)
    at_anchor = ["--anchor", "anchor.json", "--format", "json"]
    anchored = json.loads(run("--db", str(db), "audit", "verify", *at_anchor).stdout)
    validator("audit-verify").validate(anchored)
    assert anchored["anchor"]["seq"] == document["entries"]
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    failed = run("--db", str(db), "audit", "verify", "--format", "json")
    line = _one_error_line(failed)
    document = json.loads(failed.stdout)
    validator("audit-verify").validate(document)
    assert not document["ok"] and document["problems"]
    assert line.startswith(f"error: audit verify: {document['problems'][0]}")


def test_allocation_verify_prints_the_replay_as_json_and_fails_in_one_line(run, tmp_path):
    db = str(tmp_path / "t.db")
    key = str(tmp_path / "natars-r.key")
    run("allocation", "init-secret", "--secret-file", key, check=True)
    _allocated(run, db, "NATARS-R", "--secret-file", key)
    verify = ["--db", db, "allocation", "verify", "NATARS-R", "--secret-file", key]
    document = json.loads(run(*verify, "--format", "json", check=True).stdout)
    validator("allocation-verify").validate(document)
    assert document == {
        "ok": True, "protocol": "NATARS-R", "method": "minimization", "checked": 2,
        "mismatches": [], "unrecorded_draws": [],
    }  # fmt: skip
    [(arm,)] = query(db, "SELECT arm FROM allocations WHERE position = 1")
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE allocations SET arm = ? WHERE position = 1", ((ARMS - {arm}).pop(),))
    failed = run(*verify, "--format", "json")
    line = _one_error_line(failed)
    document = json.loads(failed.stdout)
    validator("allocation-verify").validate(document)
    assert not document["ok"] and document["mismatches"]
    assert line.startswith(f"error: allocation verify: {document['mismatches'][0]}")
