"""``screen --dry-run`` and ``screen void`` through the installed command, on both backends.

A dry run evaluates and stores nothing (the database identical before and after). A void keeps
the screening, is one audited change, takes the screening out of the CONSORT flow (which reports
how many were voided) and out of the enrolment gate; a second void, or a void of the screening
a patient was enrolled on, is refused in one line with nothing changed.
"""

from __future__ import annotations

import json

from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

FIELDS = [arg for name, value in ELIGIBLE_NATARS.items() for arg in ("--field", f"{name}={value}")]
ALLOCATE = ("--consent-date", "today", "--arm", "NEOADJUVANT", "--basis", "mdt_decision")


def _screen(run, db_arg, *extra: str) -> dict:
    done = run("--db", db_arg, "screen", "NATARS", *extra, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _consort(run, db_arg) -> dict[str, object]:
    done = run("--db", db_arg, "report", "consort", "NATARS", "--format", "json", check=True)
    return {r["item"]: r["n"] for r in json.loads(done.stdout) if r["stage"] == "enrollment"}


def test_a_dry_run_evaluates_and_stores_nothing(run, db_arg):
    run("--db", db_arg, "init", check=True)
    before = dump(db_arg)
    out = _screen(run, db_arg, "--site", "PKUIH", *FIELDS, "--dry-run")
    assert out["eligible"] is True and out["stored"] is False
    assert out["screening_number"] == "PKUIH-NATARS-S0001"
    table = run("--db", db_arg, "screen", "NATARS", "--site", "PKUIH", *FIELDS, "--dry-run")
    assert table.stdout.splitlines()[-1].endswith("; dry run, nothing stored)")
    assert dump(db_arg) == before


def test_a_voided_screening_is_kept_audited_and_counted_apart_in_consort(run, db_arg):
    run("--db", db_arg, "init", check=True)
    first = _screen(run, db_arg, "--site", "PKUIH", *FIELDS)
    # A re-screen typed with the wrong value: it would make the patient a screen failure.
    _screen(
        run, db_arg, "--patient", first["screening_number"], *FIELDS, "--field", "metastasis=yes"
    )
    assert _consort(run, db_arg)["not meeting eligibility criteria"] == 1
    listed = json.loads(run("--db", db_arg, "screenings", "--format", "json").stdout)
    wrong = next(r["screening"] for r in listed if r["result"] == "not_eligible")

    done = run(
        "--db", db_arg, "screen", "void", str(wrong), "--reason-code", "data_error",
        "--reason", "typed from another patient's chart",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "voided: data_error" in done.stdout and "counts now" in done.stdout
    counts = _consort(run, db_arg)
    assert counts["not meeting eligibility criteria"] == 0
    assert counts["eligible, not allocated"] == 1
    assert counts["screenings voided (not counted)"] == 1
    listed = json.loads(run("--db", db_arg, "screenings", "--format", "json").stdout)
    assert {r["screening"]: r["voided"] for r in listed}[wrong] == "data_error"
    kept = json.loads(
        run("--db", db_arg, "screenings", "--voided", "exclude", "--format", "json").stdout
    )
    assert [r["result"] for r in kept] == ["eligible"]
    log = run("--db", db_arg, "audit", "log", "--action", "void", "--format", "json").stdout
    (entry,) = json.loads(log)
    changed = {c["column"]: c for c in entry["changes"]}
    assert changed["void_reason"]["new"] == "data_error" and changed["void_note"]["new"] == "(note)"
    assert "another patient" not in log
    # The gate reads the screening that counts: the patient is eligible again.
    allocated = run(
        "--db", db_arg, "allocate", first["screening_number"], *ALLOCATE, "--reason", "MDT"
    )
    assert allocated.returncode == 0, allocated.stderr


def test_voiding_twice_or_the_enrolment_s_screening_is_refused_and_changes_nothing(run, db_arg):
    run("--db", db_arg, "init", check=True)
    first = _screen(run, db_arg, "--site", "PKUIH", *FIELDS)
    run(
        "--db",
        db_arg,
        "allocate",
        first["screening_number"],
        *ALLOCATE,
        "--reason",
        "MDT",
        check=True,
    )
    _screen(run, db_arg, "--site", "BJFH", *FIELDS)
    run("--db", db_arg, "screen", "void", "2", "--reason-code", "data_error", check=True)
    before = dump(db_arg)
    for args, says in (
        (("1",), "was enrolled on"),
        (("2",), "already voided"),
        (("99",), "no screening 99"),
    ):
        done = run("--db", db_arg, "screen", "void", *args, "--reason-code", "data_error")
        assert done.returncode == 1, done.stdout
        assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    usage = run("--db", db_arg, "screen", "void", "2")
    assert usage.returncode == 2 and "--reason-code" in usage.stderr
    assert dump(db_arg) == before
