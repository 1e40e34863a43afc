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
    done = run(
        "--db", db_arg, "audit", "log", "--entity", "patients", "--action", "allocate", "--wide"
    )  # fmt: skip
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


def test_a_listing_exported_to_xlsx_has_typed_dates_and_a_frozen_header(run, db_arg, tmp_path):
    import datetime as dt

    import openpyxl

    _trial(run, db_arg)
    done = run("--db", db_arg, "patients", "--format", "xlsx", "--out", "patients.xlsx")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "rows 1-4 of 4 written to patients.xlsx\n"
    sheet = openpyxl.load_workbook(tmp_path / "patients.xlsx")["patients"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header == registers.PATIENT_COLUMNS
    allocated = next(row for row in sheet.iter_rows(min_row=2) if row[1].value)
    screened = allocated[header.index("screened_on")]
    assert screened.is_date and screened.number_format == "yyyy-mm-dd"
    assert isinstance(screened.value, dt.datetime) and screened.value.time() == dt.time(0)


def test_text_in_a_spreadsheet_is_never_a_formula(run, tmp_path):
    import openpyxl

    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    run("--db", db, "--user", "=1+1", "screen", "NATARS", "--site", "PKUIH", *FIELDS, check=True)
    run("--db", db, "audit", "log", "--actor", "=1+1", "--format", "xlsx", "--out", "a.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["audit log"]
    actors = {row[2].value: row[2].data_type for row in sheet.iter_rows(min_row=2)}
    assert actors == {"=1+1": "s"}
    at = sheet.cell(row=2, column=2)
    assert at.is_date and at.number_format == "yyyy-mm-dd hh:mm:ss"


def test_xlsx_needs_out_and_out_needs_xlsx(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    for args in (("--format", "xlsx"), ("--out", "x.xlsx")):
        done = run("--db", db, "screenings", *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_the_audit_log_table_fits_an_80_column_terminal_unless_wide(run, tmp_path, monkeypatch):
    db = str(tmp_path / "t.db")
    _trial(run, db)
    monkeypatch.setenv("COLUMNS", "80")
    fitted = run("--db", db, "audit", "log", check=True).stdout.splitlines()
    assert max(len(line) for line in fitted) <= 80
    assert any(line.endswith("…") for line in fitted)
    wide = run("--db", db, "audit", "log", "--wide", check=True).stdout.splitlines()
    assert max(len(line) for line in wide) > 80
    assert fitted[-1] == wide[-1] and fitted[-1].startswith("rows 1-")
