"""``screen --from-file LOG.xlsx|LOG.csv``: a site's screening log, one patient per row.

All or nothing per file: a good log stores every row; a log with any bad row stores none, and
every problem is one line naming the file, the row and the column. Hypothesis puts one bad cell
of several kinds anywhere in a log and checks the database is unchanged.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import InputFileError
from sarcoma_sched.services.protocols import initialize
from sarcoma_sched.services.screening_import import import_screenings
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

SITES = ("PKUIH", "BJFH", "SHCH", "QDUAH")
COLUMNS = ["site", "date", "sex", *ELIGIBLE_NATARS]


def _typed(value: str) -> object:
    # As a spreadsheet holds them: numbers as numbers, the rest as text.
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def _log_rows(n: int) -> list[list[object]]:
    day = dt.date.today() - dt.timedelta(days=3)
    return [
        [SITES[i % len(SITES)], day, "female" if i % 2 else "male"]
        + [_typed(v) for v in ELIGIBLE_NATARS.values()]
        for i in range(n)
    ]


def write_xlsx(path: Path, rows: list[list[object]], header: list[str] = COLUMNS) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "screenings"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, rows: list[list[object]], header: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows([[c.isoformat() if isinstance(c, dt.date) else c for c in r] for r in rows])
    return path


def test_twenty_screenings_from_a_spreadsheet_are_stored_in_one_go(run, db_arg, tmp_path):
    run("--db", db_arg, "init", check=True)
    log = write_xlsx(tmp_path / "log.xlsx", _log_rows(20))
    done = run("--db", db_arg, "screen", "NATARS", "--from-file", str(log), "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["stored"] is True and len(out["screenings"]) == 20
    assert [r["row"] for r in out["screenings"]] == list(range(2, 22))
    assert all(r["eligible"] for r in out["screenings"])
    patients = json.loads(run("--db", db_arg, "patients", "--format", "json").stdout)
    assert len(patients) == 20 and {p["site"] for p in patients} == set(SITES)
    assert {p["status"] for p in patients} == {"eligible"}


def test_a_dry_run_numbers_the_rows_as_the_import_would_and_stores_nothing(run, db_arg, tmp_path):
    run("--db", db_arg, "init", check=True)
    before = dump(db_arg)
    log = write_csv(tmp_path / "log.csv", _log_rows(5))
    done = run("--db", db_arg, "screen", "NATARS", "--from-file", str(log), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "PKUIH-NATARS-S0002" in done.stdout  # row 6: the second patient at PKUIH
    assert done.stdout.splitlines()[-1].startswith("5 screenings checked (dry run")
    assert dump(db_arg) == before


def test_a_log_with_bad_rows_is_refused_whole_naming_row_and_column(run, db_arg, tmp_path):
    run("--db", db_arg, "init", check=True)
    rows = _log_rows(4)
    rows[1][COLUMNS.index("age_years")] = "fifty"
    rows[2][COLUMNS.index("site")] = "NOWHERE"
    rows[3][COLUMNS.index("date")] = "2199-12-31"
    log = write_csv(tmp_path / "log.csv", rows, [*COLUMNS[:-1], "metastasiss"])
    before = dump(db_arg)
    done = run("--db", db_arg, "screen", "NATARS", "--from-file", log.name)  # cwd: tmp_path
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines == [
        f"error: {log.name}: row 1, column {chr(ord('A') + len(COLUMNS) - 1)}: 'metastasiss' is "
        "not a screening field of the protocol nor one of site, patient, date, sex; did you "
        "mean 'metastasis'?",
        f"error: {log.name}: row 3: column age_years (D): not a whole number (got 'fifty')",
        f"error: {log.name}: row 4: column site (A): the trial has no site 'NOWHERE' "
        "(sites: PKUIH, BJFH, XJTU1, PKUFH, SHCH, SHZS, QDUAH)",
        f"error: {log.name}: row 5: column date (B): screening date 2199-12-31 is in the "
        f"future: today at site QDUAH (Asia/Shanghai) is {lines[-1].rsplit(' ', 1)[-1]}",
    ]
    assert dump(db_arg) == before


def test_a_file_that_is_not_a_workbook_or_mixes_with_field_is_one_line(run, db_arg, tmp_path):
    run("--db", db_arg, "init", check=True)
    fake = tmp_path / "log.xlsx"
    fake.write_text("site,age_years\nPKUIH,56\n")
    before = dump(db_arg)
    done = run("--db", db_arg, "screen", "NATARS", "--from-file", fake.name)
    assert done.returncode == 1
    assert (
        done.stderr == "error: log.xlsx: not an .xlsx workbook (save it as Excel Workbook .xlsx)\n"
    )
    log = write_csv(tmp_path / "log.csv", _log_rows(1))
    mixed = run("--db", db_arg, "screen", "NATARS", "--from-file", str(log), "--field", "x=1")
    assert mixed.returncode == 2 and "no --field" in mixed.stderr
    assert dump(db_arg) == before


# --- all or nothing, whatever the bad cell and wherever it is ---------------------------------

BAD_CELLS = {
    "age_years": ["abc", 400, -1, True],
    "site": ["NOWHERE", "PK UIH"],
    "date": ["2026-02-30", "yesterday", "2199-01-01"],
    "sex": ["f", "unknownish"],
    "histology": ["not a histology"],
    "tumour_size_cm": ["big", "12,5"],
}


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    path = tmp_path_factory.mktemp("import") / "trial.db"
    db = Database(str(path), check_schema=False)
    initialize(db, "setup")
    yield db, path
    db.dispose()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=1, max_value=8),
    where=st.integers(min_value=0, max_value=7),
    bad=st.sampled_from([(c, v) for c, values in BAD_CELLS.items() for v in values]),
    fmt=st.sampled_from(["xlsx", "csv"]),
)
def test_one_bad_cell_anywhere_leaves_the_database_unchanged(
    trial, tmp_path_factory, n, where, bad, fmt
):
    db, path = trial
    rows = _log_rows(n)
    column, value = bad
    rows[where % n][COLUMNS.index(column)] = value
    folder = tmp_path_factory.mktemp("log")
    log = (write_xlsx if fmt == "xlsx" else write_csv)(folder / f"log.{fmt}", rows)
    before = dump(path)
    with pytest.raises(InputFileError) as refused:
        import_screenings(db, "nurse", "NATARS", log)
    assert dump(path) == before
    (problem,) = refused.value.problems
    assert problem.source == f"{log}: row {where % n + 2}"
    assert problem.path.startswith(f"column {column} (")
