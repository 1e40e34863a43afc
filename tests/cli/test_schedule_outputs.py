"""``plan``, ``schedule``, ``allocate`` and ``record`` print the same warnings in table, CSV and
JSON (issue 20, item 6): the estimated holiday years, each event's flags (a pin, a date after the
trial end), with a code and a message; JSON dates are ISO with the year and every document
validates against its schema in docs/schemas/."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarcoma_sched.vocabulary import EventStatus, FlagCode
from tests.cli.conftest import ROOT, invoke, query
from tests.cohort import ELIGIBLE_NATARS

SCHEMAS = ROOT / "docs" / "schemas"
FORMATS = ("table", "csv", "json")
DAY = dt.timedelta(days=1)
ISO = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
CODES = "|".join(c.value for c in FlagCode)
# "code: message; code: message", as the table and the CSV join an event's flags.
FLAG_SPLIT = re.compile(rf"; (?=(?:{CODES}): )")
FLAG = re.compile(rf"\A({CODES}): (.*)\Z", re.S)
# record's table: "warning: [event: ]code: message" on stderr.
RECORD_WARNING = re.compile(rf"\Awarning: (?:([^:\s]+): )?({CODES}): (.*)\Z")
FIELDS = [a for k, v in ELIGIBLE_NATARS.items() for a in ("--field", f"{k}={v}")]
# Allocated long enough ago that cycle 3 is past and surgery still ahead (tests/cli/
# test_pin_policy.py: a late cycle 3 then breaks the washout before a rescheduled surgery).
ALLOCATED_DAYS_AGO = 66

Warning = tuple[str, str, str]  # (event, or "" for the calendar as a whole; code; message)


# --- reading each format back -------------------------------------------------------------------


@cache
def validator(command: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [
        (path.as_uri(), Resource.from_contents(json.loads(path.read_text(encoding="utf-8"))))
        for path in SCHEMAS.glob("*.schema.json")
    ]
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(
        {**schema, "$id": (SCHEMAS / f"{command}.schema.json").as_uri()},
        registry=Registry().with_resources(resources),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _key(event: str, code: str, message: str) -> Warning:
    # estimated_holidays is about the calendar: no format hangs it on one event's line.
    return ("" if code == FlagCode.ESTIMATED_HOLIDAYS else event, code, message)


def _flags(text: str) -> list[tuple[str, str]]:
    found = []
    for part in FLAG_SPLIT.split(text) if text else []:
        match = FLAG.match(part)
        assert match, f"not 'code: message': {part!r}"
        found.append((match[1], match[2]))
    return found


def json_warnings(document: dict) -> set[Warning]:
    """The document's ``warnings``, checked against what its events carry."""
    warned = {_key(w["events"][0] if w["events"] else "", w["code"], w["message"]) for w in
              document["warnings"]}  # fmt: skip
    if "events" in document:
        on_events = {
            (e["event"], f["code"], f["message"])
            for e in document["events"]
            if e["status"] != EventStatus.CANCELLED
            for f in e["flags"]
        }
        assert {w for w in warned if w[0]} == on_events
        for event in document["events"]:
            assert all(ISO.match(d) for d in [*event["days"], *event["window"].values()])
    return warned


def table_warnings(stdout: str) -> set[Warning]:
    """The flags column of every event line (not cancelled) and the ``Warnings:`` list."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("event "))
    header = lines[start]
    flags_at, status_at, window_at = (header.index(c) for c in ("flags", "status", "target"))
    found: set[Warning] = set()
    end = start + 1
    while end < len(lines) and lines[end].strip():
        line = lines[end]
        if not line[status_at:window_at].strip().startswith(EventStatus.CANCELLED):
            found |= {_key(line.split()[0], c, m) for c, m in _flags(line[flags_at:].strip())}
        end += 1
    if "Warnings:" in lines[end:]:
        for line in lines[lines.index("Warnings:", end) + 1 :]:
            if not line.startswith("  - "):
                break
            ((code, message),) = _flags(line[4:])
            found.add(_key("", code, message))
    return found


def csv_warnings(stdout: str) -> set[Warning]:
    found: set[Warning] = set()
    for row in csv.DictReader(io.StringIO(stdout)):
        if row["event"]:
            assert all(ISO.match(d) for d in [row["date"], row["earliest"], row["latest"]])
            assert all(ISO.match(d) for d in row["days"].split(", "))
        if row["status"] != EventStatus.CANCELLED:
            found |= {_key(row["event"], c, m) for c, m in _flags(row["flags"])}
    return found


def record_warnings(outputs: dict[str, tuple[str, str]]) -> set[Warning]:
    """record in each format, as (stdout, stderr): the three must say the same."""
    table = set()
    for line in outputs["table"][1].splitlines():
        if line.startswith("warning: "):
            match = RECORD_WARNING.match(line)
            assert match, line
            table.add(_key(match[1] or "", match[2], match[3]))
    rows = [r for r in csv.DictReader(io.StringIO(outputs["csv"][0])) if r["warning"]]
    in_csv = {_key(r["event"], *(FLAG.match(r["warning"]).groups())) for r in rows}
    document = json.loads(outputs["json"][0])
    validator("record").validate(document)
    in_json = json_warnings(document)
    assert table == in_csv == in_json
    return in_json


def same_everywhere(command: str, outputs: dict[str, str]) -> tuple[set[Warning], dict]:
    """The warnings of a listing (plan, schedule, allocate), equal in the three formats."""
    document = json.loads(outputs["json"])
    validator(command).validate(document)
    in_json = json_warnings(document)
    assert table_warnings(outputs["table"]) == in_json
    assert csv_warnings(outputs["csv"]) == in_json
    return in_json, document


def codes(warnings: set[Warning]) -> set[str]:
    return {code for _, code, _ in warnings}


# --- plan: no database --------------------------------------------------------------------------


def test_a_natars_preview_warns_of_estimated_holidays_and_the_trial_end_in_every_format(run):
    args = ("plan", "NATARS", "NEOADJUVANT", "--anchor", "2026-09-10", "--site", "PKUIH")
    outputs = {fmt: run(*args, "--format", fmt, check=True).stdout for fmt in FORMATS}
    warnings, document = same_everywhere("plan", outputs)
    assert codes(warnings) == {FlagCode.ESTIMATED_HOLIDAYS, FlagCode.AFTER_TRIAL_END}
    (estimate,) = [w for w in document["warnings"] if w["code"] == "estimated_holidays"]
    assert "2027" in estimate["message"] and "follow_up.m6" in estimate["events"]
    # Every follow-up visit after the registered end (2027-11-01) is flagged, and no other.
    late = {e["event"] for e in document["events"] if e["days"][0] > "2027-11-01"}
    assert late == {e for e, code, _ in warnings if code == FlagCode.AFTER_TRIAL_END}
    ai1 = next(e for e in document["events"] if e["event"] == "ai.1")
    assert ai1["days"] == [f"2026-09-{d}" for d in range(17, 22)]
    assert ai1["window"] == {"earliest": "2026-09-10", "latest": "2026-09-24"}


def test_a_closure_over_a_whole_window_is_the_same_flag_in_every_format(run):
    # The ward closed through surgery's whole window (2026-11-26 … 2026-12-24): the target is
    # kept and flagged, and so is the month-3 scan whose window it shares.
    args = ("plan", "NATARS", "NEOADJUVANT", "--anchor", "2026-09-10", "--closure")
    args += ("2026-11-20..2026-12-31",)
    outputs = {fmt: run(*args, "--format", fmt, check=True).stdout for fmt in FORMATS}
    warnings, document = same_everywhere("plan", outputs)
    surgery = next(e for e in document["events"] if e["event"] == "surgery")
    assert [f["code"] for f in surgery["flags"]] == ["no_valid_day"]
    assert surgery["days"] == [surgery["target"]]
    assert {("surgery", f["code"], f["message"]) for f in surgery["flags"]} <= warnings
    assert codes(warnings) == {"no_valid_day", "after_trial_end", "estimated_holidays"}


def test_a_re_plan_from_recorded_events_lists_what_moved_and_validates(run):
    args = ("plan", "NATARS", "NEOADJUVANT", "--anchor", "2026-09-10", "--done", "ai.1=2026-09-22")
    document = json.loads(run(*args, "--format", "json", check=True).stdout)
    validator("plan").validate(document)
    moved = {m["event"]: m for m in document["moved"]}
    assert moved["ai.1"]["new"][0] == "2026-09-22" and moved["ai.1"]["shift_days"] == 5
    ai1 = next(e for e in document["events"] if e["event"] == "ai.1")
    assert (ai1["status"], ai1["actual"]) == ("done", "2026-09-22")


@pytest.fixture(scope="module")
def cli_runner():
    from sarcoma_sched.cli import cli

    runner = CliRunner()

    def plan(*args: str) -> str:
        result = runner.invoke(cli, ["plan", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return plan


PLANNED = [
    ("NATARS", "NEOADJUVANT", "PKUIH"),
    ("NATARS", "SURGERY_ONLY", "BJFH"),
    ("TNT-STS", "TNT", "FJMUUH"),
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    arm=st.sampled_from(PLANNED),
    anchor=st.dates(min_value=dt.date(2025, 6, 1), max_value=dt.date(2027, 12, 31)),
    closure=st.none() | st.tuples(st.integers(0, 120), st.integers(0, 20)),
)
def test_for_any_anchor_the_three_formats_warn_alike_and_the_json_validates(
    cli_runner, arm, anchor, closure
):
    protocol, arm_id, site = arm
    args = [protocol, arm_id, "--anchor", anchor.isoformat(), "--site", site]
    if closure:
        first = anchor + closure[0] * DAY
        args += ["--closure", f"{first}..{first + closure[1] * DAY}"]
    outputs = {fmt: cli_runner(*args, "--format", fmt) for fmt in FORMATS}
    warnings, document = same_everywhere("plan", outputs)
    # Every flag any event carries is a warning, with its code.
    assert {f["code"] for e in document["events"] for f in e["flags"]} <= codes(warnings)
    if anchor.year >= 2027:
        assert FlagCode.ESTIMATED_HOLIDAYS in codes(warnings)


# --- allocate, schedule, record: a NATARS patient on SQLite -------------------------------------


@pytest.fixture(scope="module")
def screened(command, tmp_path_factory) -> tuple[Path, str, dt.date]:
    """A NATARS patient screened eligible at PKUIH, ready to allocate 66 days ago."""
    cwd = tmp_path_factory.mktemp("screened")
    db = cwd / "trial.db"
    allocated = dt.date.today() - ALLOCATED_DAYS_AGO * DAY
    invoke(command, cwd, "--db", str(db), "init")
    invoke(
        command, cwd, "--db", str(db), "screen", "NATARS", "--site", "PKUIH", "--date",
        (allocated - 2 * DAY).isoformat(), *FIELDS,
    )  # fmt: skip
    ((number,),) = query(db, "SELECT screening_number FROM patients")
    return db, number, allocated


def _allocate(command: str, cwd: Path, db: Path, number: str, allocated: dt.date, fmt: str):
    return invoke(
        command, cwd, "--db", str(db), "allocate", number, "--consent-date",
        (allocated - DAY).isoformat(), "--date", allocated.isoformat(), "--arm", "NEOADJUVANT",
        "--basis", "mdt_decision", "--reason", "MDT", "--format", fmt,
    )  # fmt: skip


@pytest.fixture(scope="module")
def allocated(command, tmp_path_factory, screened) -> tuple[Path, str, dict[str, str]]:
    """The patient allocated once per format, each on its own copy of the database."""
    db, number, when = screened
    cwd = tmp_path_factory.mktemp("allocated")
    outputs = {}
    for fmt in FORMATS:
        copy = cwd / f"{fmt}.db"
        shutil.copy(db, copy)
        result = _allocate(command, cwd, copy, number, when, fmt)
        assert result.returncode == 0, result.stderr
        outputs[fmt] = result.stdout
    ((study_id,),) = query(cwd / "json.db", "SELECT study_id FROM patients")
    return cwd / "json.db", study_id, outputs


def test_allocate_prints_the_same_warnings_in_every_format_and_its_json_validates(allocated):
    _db, study_id, outputs = allocated
    warnings, document = same_everywhere("allocate", outputs)
    assert document["study_id"] == study_id and document["arm"] == "NEOADJUVANT"
    assert {FlagCode.ESTIMATED_HOLIDAYS, FlagCode.AFTER_TRIAL_END} <= codes(warnings)
    assert outputs["table"].splitlines()[0].startswith(f"{study_id}: NEOADJUVANT (position 1, ")


def test_schedule_right_after_allocation_warns_as_allocate_did(command, allocated, tmp_path):
    db, study_id, outputs = allocated
    shown = {
        fmt: invoke(command, tmp_path, "--db", str(db), "schedule", study_id, "--format", fmt)
        for fmt in FORMATS
    }
    assert all(r.returncode == 0 for r in shown.values()), [r.stderr for r in shown.values()]
    _, document = same_everywhere("schedule", {f: r.stdout for f, r in shown.items()})
    allocated_document = json.loads(outputs["json"])
    # The stored calendar says what the allocation printed, the estimate notice word for word.
    assert document["warnings"] == allocated_document["warnings"]
    assert sorted(e["event"] for e in document["events"]) == sorted(
        e["event"] for e in allocated_document["events"]
    )


@pytest.fixture(scope="module")
def pinned(command, tmp_path_factory, allocated) -> tuple[Path, str, dt.date]:
    """Surgery rescheduled to the first working day clear of the washout (the pin kept under
    --pin-policy keep), on a copy of the allocated database; and the late cycle-3 date that
    makes the pin break the washout."""
    from sarcoma_sched.calendar.workdays import SiteCalendar
    from sarcoma_sched.protocol import find_protocol

    db, study_id, _ = allocated
    cwd = tmp_path_factory.mktemp("pinned")
    copy = cwd / "trial.db"
    shutil.copy(db, copy)
    events = {
        e: json.loads(d) for e, d in query(copy, "SELECT event_id, days FROM scheduled_events")
    }
    calendar = SiteCalendar.for_protocol_site(find_protocol("NATARS").protocol, "PKUIH")
    pin = max(dt.date.today(), dt.date.fromisoformat(events["anlotinib.3"][-1]) + 14 * DAY)
    while not calendar.is_working_day(pin):
        pin += DAY
    moved = invoke(
        command, cwd, "--db", str(copy), "reschedule", study_id, "surgery", "--to",
        pin.isoformat(), "--reason-code", "capacity", "--pin-policy", "keep",
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    late = dt.date.fromisoformat(events["ai.3"][0]) + 7 * DAY
    while not calendar.is_working_day(late):
        late += DAY
    assert late < dt.date.today(), "the fixture needs cycle 3 in the past"
    return copy, study_id, late


def test_a_pin_shows_in_every_format_of_schedule(command, pinned, tmp_path):
    db, study_id, _late = pinned
    shown = {
        fmt: invoke(command, tmp_path, "--db", str(db), "schedule", study_id, "--format", fmt)
        for fmt in FORMATS
    }
    _, document = same_everywhere("schedule", {f: r.stdout for f, r in shown.items()})
    surgery = next(e for e in document["events"] if e["event"] == "surgery")
    assert surgery["pinned"] is True and surgery["status"] == "planned"
    line = next(x for x in shown["table"].stdout.splitlines() if x.startswith("surgery "))
    assert "planned (rescheduled)" in line
    row = next(
        r for r in csv.DictReader(io.StringIO(shown["csv"].stdout)) if r["event"] == "surgery"
    )
    assert (row["status"], row["pinned"]) == ("planned", "true")


def test_record_and_then_schedule_give_the_pin_s_flag_in_every_format(command, pinned, tmp_path):
    db, study_id, late = pinned
    outputs = {}
    for fmt in FORMATS:
        copy = tmp_path / f"{fmt}.db"
        shutil.copy(db, copy)
        result = invoke(
            command, tmp_path, "--db", str(copy), "record", study_id, "ai.3", "--status", "done",
            "--date", late.isoformat(), "--format", fmt,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[fmt] = (result.stdout, result.stderr)
    warnings = record_warnings(outputs)
    # The kept pin now breaks the washout: flagged, with the trial-end and estimate warnings.
    assert {FlagCode.PIN_BREAKS_CONSTRAINT, FlagCode.AFTER_TRIAL_END} <= codes(warnings)
    assert ("surgery", FlagCode.PIN_BREAKS_CONSTRAINT) in {(e, c) for e, c, _ in warnings}
    document = json.loads(outputs["json"][0])
    assert (document["event"], document["days"][0]) == ("ai.3", late.isoformat())
    # What schedule then shows is what record said, in every format.
    shown = {
        fmt: invoke(command, tmp_path, "--db", str(tmp_path / "json.db"), "schedule", study_id,
                    "--format", fmt).stdout
        for fmt in FORMATS
    }  # fmt: skip
    in_schedule, _ = same_everywhere("schedule", shown)
    assert in_schedule == warnings


def test_the_schedule_of_a_patient_not_yet_allocated_validates(command, screened, tmp_path):
    db, number, _ = screened
    shown = invoke(command, tmp_path, "--db", str(db), "schedule", number, "--format", "json")
    document = json.loads(shown.stdout)
    validator("schedule").validate(document)
    assert (document["arm"], document["events"], document["warnings"]) == (None, [], [])


# --- both backends ------------------------------------------------------------------------------


def test_every_document_validates_on_either_database(run, db_arg):
    """allocate, reschedule, record and schedule as JSON against SQLite and PostgreSQL."""
    db = db_arg
    allocated = dt.date.today() - ALLOCATED_DAYS_AGO * DAY
    run("--db", db, "init", check=True)
    run(
        "--db", db, "screen", "NATARS", "--site", "PKUIH", "--date",
        (allocated - 2 * DAY).isoformat(), *FIELDS, check=True,
    )  # fmt: skip
    ((number,),) = query(db, "SELECT screening_number FROM patients")
    document = json.loads(
        run(
            "--db", db, "allocate", number, "--consent-date", (allocated - DAY).isoformat(),
            "--date", allocated.isoformat(), "--arm", "NEOADJUVANT", "--basis", "mdt_decision",
            "--reason", "MDT", "--format", "json", check=True,
        ).stdout
    )  # fmt: skip
    validator("allocate").validate(document)
    study_id = document["study_id"]
    ai1 = next(e for e in document["events"] if e["event"] == "ai.1")
    recorded = run(
        "--db", db, "record", study_id, "ai.1", "--status", "done", "--date", ai1["days"][0],
        "--format", "json", check=True,
    )  # fmt: skip
    validator("record").validate(json.loads(recorded.stdout))
    shown = json.loads(run("--db", db, "schedule", study_id, "--format", "json", check=True).stdout)
    validator("schedule").validate(shown)
    assert shown["warnings"] == json.loads(recorded.stdout)["warnings"]
    assert FlagCode.AFTER_TRIAL_END in {w["code"] for w in shown["warnings"]}


def test_the_schemas_name_every_flag_code_and_status():
    common = json.loads((SCHEMAS / "common.schema.json").read_text(encoding="utf-8"))["$defs"]
    assert set(common["code"]["enum"]) == {c.value for c in FlagCode}
    assert set(common["event"]["properties"]["status"]["enum"]) == {s.value for s in EventStatus}
