"""``patients``, ``screenings`` and ``audit log`` through the installed command."""

from __future__ import annotations

import csv
import io
import json

from sarcoma_sched.cli import listings
from sarcoma_sched.services.queries import registers
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

FIELDS = [arg for name, value in ELIGIBLE_NATARS.items() for arg in ("--field", f"{name}={value}")]


def _trial(run, db_arg):
    run("--db", db_arg, "init", check=True)
    for site in ("PKUIH", "PKUIH", "BJFH"):
        run("--db", db_arg, "screen", "NATARS", "--site", site, *FIELDS, check=True)
    run(
        "--db", db_arg, "screen", "NATARS", "--site", "BJFH", *FIELDS,
        "--field", "metastasis=yes", check=True,
    )  # fmt: skip
    run(
        "--db", db_arg, "allocate", "PKUIH-NATARS-S0001", "--consent-date", "today",
        "--arm", "NEOADJUVANT", "--basis", "mdt_decision", "--reason", "MDT", check=True,
    )  # fmt: skip


def test_the_command_line_offers_the_queries_own_choices():
    assert tuple(registers.LISTED_STATUSES) == listings.LISTED_STATUSES
    assert listings.SCREENING_RESULTS == registers.SCREENING_RESULTS
    assert listings.VOIDED_CHOICES == registers.VOIDED_CHOICES


def test_patients_list_in_each_format_with_the_same_columns(run, db_arg):
    _trial(run, db_arg)
    as_json = json.loads(run("--db", db_arg, "patients", "--format", "json", check=True).stdout)
    as_csv = list(
        csv.DictReader(io.StringIO(run("--db", db_arg, "patients", "--format", "csv").stdout))
    )
    table = run("--db", db_arg, "patients", "--site", "pkuih", check=True).stdout.splitlines()
    assert [r["screening_number"] for r in as_json] == [
        "BJFH-NATARS-S0001", "BJFH-NATARS-S0002", "PKUIH-NATARS-S0001", "PKUIH-NATARS-S0002",
    ]  # fmt: skip
    assert list(as_csv[0]) == registers.PATIENT_COLUMNS == list(as_json[0])
    allocated = next(r for r in as_json if r["study_id"])
    assert allocated["status"] == "on_study" and allocated["arm"] == "NEOADJUVANT"
    assert {r["status"] for r in as_json if not r["study_id"]} == {"eligible", "screened"}
    assert table[0].split()[:2] == ["screening_number", "study_id"]
    assert table[-1] == "rows 1-2 of 2"


def test_screenings_filter_by_result_and_page(run, db_arg):
    _trial(run, db_arg)
    failed = run("--db", db_arg, "screenings", "--result", "not_eligible", "--format", "json")
    (row,) = json.loads(failed.stdout)
    assert row["screening_number"] == "BJFH-NATARS-S0002" and row["failed"]
    page = run("--db", db_arg, "screenings", "--limit", "2", "--offset", "1", check=True).stdout
    assert page.splitlines()[-1] == "rows 2-3 of 4; next page: --offset 3"


def test_the_audit_log_lists_old_and_new_values(run, db_arg):
    _trial(run, db_arg)
    done = run("--db", db_arg, "audit", "log", "--entity", "patients", "--action", "allocate")
    assert done.returncode == 0, done.stderr
    assert "study_id: ∅ → PKUIH-NATARS-0001" in done.stdout
    rows = json.loads(
        run("--db", db_arg, "audit", "log", "--action", "screen", "--format", "json").stdout
    )
    assert {r["entity"] for r in rows} == {"patients", "screenings"}


def test_a_bad_filter_is_one_line_and_changes_nothing(run, db_arg):
    _trial(run, db_arg)
    before = dump(db_arg)
    unknown = run("--db", db_arg, "patients", "--site", "NOWHERE")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")
    assert unknown.stderr.count("\n") == 1 and "NOWHERE" in unknown.stderr
    usage = run("--db", db_arg, "screenings", "--limit", "0")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert dump(db_arg) == before
