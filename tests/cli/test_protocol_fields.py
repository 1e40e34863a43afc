"""``protocol fields``: the screening template, read back by ``screen --from-file``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import openpyxl

from tests.cohort import ELIGIBLE_NATARS


def test_the_csv_template_lists_every_field_with_its_type_and_allowed_values(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    done = run("--db", db, "protocol", "fields", "NATARS", "--format", "csv", check=True)
    rows = {r["field"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert set(ELIGIBLE_NATARS) <= set(rows)
    assert rows["age_years"]["type"] == "integer" and rows["age_years"]["max"] == "120"
    assert "DDLPS" in rows["histology"]["allowed"].split(" | ")
    assert rows["informed_consent"]["allowed"] == "yes | no"


def test_the_toml_template_filled_in_is_a_screening_file(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    template = run("--db", db, "protocol", "fields", "NATARS", check=True).stdout
    filled = []
    for line in template.splitlines():
        match = re.fullmatch(r"# (\w+) = .*", line)
        if match and match.group(1) in ELIGIBLE_NATARS:
            filled.append(f'{match.group(1)} = "{ELIGIBLE_NATARS[match.group(1)]}"')
        else:
            filled.append(line)
    (tmp_path / "patient.toml").write_text("\n".join(filled) + "\n")
    done = run(
        "--db", db, "screen", "NATARS", "--site", "PKUIH", "--from-file", "patient.toml",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["eligible"] is True


def test_the_xlsx_template_is_a_screening_log_to_fill_in(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    run("--db", db, "protocol", "fields", "NATARS", "--format", "xlsx", "--out", "log.xlsx")
    book = openpyxl.load_workbook(tmp_path / "log.xlsx")
    sheet = book["screenings"]
    assert sheet.freeze_panes == "A2" and book["fields"].freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["site", "patient", "date", "sex"]
    assert set(header[4:]) >= set(ELIGIBLE_NATARS)
    assert any("DDLPS" in (v.formula1 or "") for v in sheet.data_validations.dataValidation)
    day = dt.date.today() - dt.timedelta(days=1)
    for site in ("PKUIH", "BJFH"):
        values = {"site": site, "date": day, **ELIGIBLE_NATARS}
        sheet.append([values.get(name) for name in header])
    book.save(tmp_path / "log.xlsx")
    done = run("--db", db, "screen", "NATARS", "--from-file", "log.xlsx", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [(r["site"], r["screened_on"], r["eligible"]) for r in out["screenings"]] == [
        ("PKUIH", day.isoformat(), True),
        ("BJFH", day.isoformat(), True),
    ]


def test_an_xlsx_template_needs_a_file_and_an_unknown_protocol_is_named(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    usage = run("--db", db, "protocol", "fields", "NATARS", "--format", "xlsx")
    assert usage.returncode == 2 and "--out" in usage.stderr
    unknown = run("--db", db, "protocol", "fields", "NOPE")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: protocol 'NOPE'")
