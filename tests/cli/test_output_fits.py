"""Every table of the installed command fits the terminal (COLUMNS), ``--wide`` shows it all,
and every listing and report table writes a typed workbook (``--format xlsx --out``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from sarcoma_sched.cli.table_fit import display_width
from tests.cli.conftest import SCRUBBED, invoke

AS_OF = "2026-12-01"

# Every command that prints a table, with arguments that give it rows in the demo's network.
TABLES: dict[str, list[str]] = {
    "report enrollment": ["report", "enrollment", "--by", "protocol,site,arm"],
    "report consort": ["report", "consort", "NATARS"],
    "report workload": ["report", "workload", "--from", AS_OF, "--to", "2026-12-28"],
    "visits": ["visits", "--from", "2026-11-01", "--to", "2026-12-31"],
    "overdue": ["overdue"],
    "deviations": ["deviations"],
    "capacity": ["capacity", "--site", "PKUIH", "--from", AS_OF, "--to", "2026-12-14"],
    "allocation list": ["allocation", "list", "NATARS-R"],
    "site list": ["site", "list"],
    "site capacity": ["site", "capacity", "PKUIH"],
    "protocol list": ["protocol", "list"],
    "protocol versions": ["protocol", "versions", "NATARS"],
    "db history": ["db", "history"],
    "schedule": ["schedule", "PKUIH-NATARS-0001"],
    "plan": ["plan", "NATARS", "NEOADJUVANT", "--anchor", AS_OF, "--site", "PKUIH"],
    "patients": ["patients"],
    "screenings": ["screenings"],
    "audit log": ["audit", "log", "--limit", "40"],
}
# The listings whose table cells are the JSON's values as they are.
SAME_CELLS = [
    "report enrollment", "report consort", "report workload", "visits", "overdue", "deviations",
    "capacity", "allocation list", "site list", "patients", "screenings",
]  # fmt: skip
# The listings and report tables a coordinator takes to a spreadsheet; the date columns of each.
SHEETS: dict[str, list[str]] = {
    "report enrollment": [],
    "report consort": [],
    "report workload": ["day"],
    "visits": ["date"],
    "overdue": ["date"],
    "deviations": ["date"],
    "capacity": ["slot"],
    "allocation list": ["date"],
    "site list": [],
    "protocol list": [],
    "protocol versions": [],
    "db history": [],
    "schedule": ["target", "earliest", "latest", "date"],
    "plan": ["target", "earliest", "latest", "date"],
    "patients": ["screened_on"],
    "screenings": ["screened_on"],
}


@pytest.fixture(scope="module")
def demo(command, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("fits")
    invoke(command, cwd, "demo", "--as-of", AS_OF)
    return cwd


def sarcoma(command: str, cwd: Path, args: list[str], columns: int | None = None):
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUBBED, "COLUMNS")}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run(
        [command, "--db", "sarcoma-demo/demo.db", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_fits_80_and_120_columns_and_wide_shows_it_all_as_a_pipe_gets_it(
    command, demo, name
):
    args = TABLES[name]
    full = sarcoma(command, demo, args)  # no terminal: nothing is cut
    natural = max(display_width(line) for line in full.splitlines())
    fitted = {width: sarcoma(command, demo, args, columns=width) for width in (80, 120)}
    for width, text in fitted.items():
        too_wide = [line for line in text.splitlines() if display_width(line) > width]
        assert text.strip() and not too_wide, (width, too_wide[:3])
        assert natural > width or text == full  # a table that fits is left as it is
    assert sarcoma(command, demo, [*args, "--wide"], columns=80) == full
    if name not in SAME_CELLS:
        return
    rows = json.loads(sarcoma(command, demo, [*args, "--format", "json"]))
    values = {str(v) for row in rows for v in row.values() if v not in (None, "")}
    assert values and {v for v in values if v not in full} == set()
    if natural > 80:
        # Something was cut, or laid out a row at a time: what --wide gives back.
        assert any(v not in fitted[80] for v in values) or "\n\n" in fitted[80]


@pytest.mark.parametrize("name", list(SHEETS))
def test_every_listing_and_report_table_writes_a_typed_workbook_with_a_frozen_header(
    command, demo, name
):
    import openpyxl

    args = TABLES[name]
    out = f"{name.replace(' ', '-')}.xlsx"
    said = sarcoma(command, demo, [*args, "--format", "xlsx", "--out", out])
    assert said.endswith(f"written to {out}\n")
    sheet = openpyxl.load_workbook(demo / out).active
    assert sheet is not None and sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    body = list(sheet.iter_rows(min_row=2))
    assert body, f"{name}: no rows"
    if name not in ("schedule", "plan"):
        # The same column names as CSV and JSON, in the same order.
        csv_header = sarcoma(command, demo, [*args, "--format", "csv"]).splitlines()[0]
        assert header == csv_header.split(",")
    for column in SHEETS[name]:
        cells = [row[header.index(column)] for row in body if row[header.index(column)].value]
        assert cells and all(c.is_date and c.number_format == "yyyy-mm-dd" for c in cells)
        assert all(isinstance(c.value, dt.datetime) for c in cells)
    numbers = [
        c
        for row in body
        for c in row
        if type(c.value) in (int, float)  # not a bool: "b"
    ]
    assert all(c.data_type == "n" for c in numbers)
    if name in ("report enrollment", "report consort", "capacity", "report workload"):
        assert numbers, f"{name}: its counts are numbers"
    assert all(not str(c.value).startswith("=") or c.data_type == "s" for r in body for c in r)


def test_a_report_picture_option_takes_a_workbook_only_with_format_xlsx(command, demo):
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    for args in (["--out", "c.xlsx"], ["--format", "xlsx"], ["--format", "xlsx", "--out", "c.png"]):
        done = subprocess.run(
            [command, "--db", "sarcoma-demo/demo.db", "report", "consort", "NATARS", *args],
            capture_output=True, text=True, cwd=demo, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert not (demo / "c.xlsx").exists() and not (demo / "c.png").exists()
