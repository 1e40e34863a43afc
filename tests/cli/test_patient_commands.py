"""The coordinator's patient commands (screen, enroll, allocate, withdraw, exclude), end to end.

Every test runs the installed ``sarcoma-sched`` against a real database. Setup is shared: one
module-scoped database is initialised and screened once, and each test that writes works on its
own copy of the file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import actor, as_user, invoke, query, today
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

# Never let the caller's environment choose the database, user or trial secret.
# allocate's table is plan's (tests/cli/test_schedule_outputs.py holds every format to it).
EVENT_COLUMNS = ["event", "label", "status", "target", "window", "date", "weekday", "days", "flags"]
COUNTED = ("patients", "screenings", "enrollments", "allocations", "scheduled_events", "audit_log")


def fields(values: dict[str, str], **overrides: str) -> list[str]:
    args = []
    for name, value in {**values, **overrides}.items():
        args += ["--field", f"{name}={value}"]
    return args


def counts(db: str | Path) -> dict[str, int]:
    return {table: query(db, f"SELECT count(*) FROM {table}")[0][0] for table in COUNTED}


def event_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the events table printed by ``allocate`` (after the summary, up
    to the blank line before its warnings)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("event "))
    end = next((i for i, line in enumerate(lines) if i > start and not line.strip()), len(lines))
    header = lines[start].split()
    return header, [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 : end]]


@dataclass(frozen=True)
class Built:
    path: Path
    out: dict[str, str]

    def copy(self, tmp_path: Path) -> str:
        target = tmp_path / "trial.db"
        shutil.copyfile(self.path, target)
        return str(target)


@pytest.fixture(scope="module")
def screened(command, tmp_path_factory) -> Built:
    """Four screenings: NATARS PKUIH S0001 eligible, S0002 too old, BJFH S0001 eligible (from a
    TOML file), TNT-STS FJMUUH S0001 eligible (from a JSON file)."""
    cwd = tmp_path_factory.mktemp("screened")
    db = str(cwd / "trial.db")
    toml_lines = [f'{k} = "{v}"' for k, v in ELIGIBLE_NATARS.items() if k != "age_years"]
    (cwd / "bjfh.toml").write_text("age_years = 44\n" + "\n".join(toml_lines) + "\n")
    tnt = {**ELIGIBLE_TNT, "age_years": 61, "tumour_size_cm": 8.5, "deep_tumour": True}
    (cwd / "tnt.json").write_text(json.dumps(tnt))
    out = {}
    invoke(command, cwd, "--db", db, "init")
    natars = fields(ELIGIBLE_NATARS)
    out["eligible"] = invoke(
        command, cwd, "--db", db, "--user", "alice", "screen", "NATARS", "--site", "PKUIH",
        *natars, "--date", "today",
    ).stdout  # fmt: skip
    out["failure"] = invoke(
        command, cwd, "--db", db, "--user", "alice", "screen", "NATARS", "--site", "PKUIH",
        *fields(ELIGIBLE_NATARS, age_years="80"), "--date", "+0d",
    ).stdout  # fmt: skip
    out["toml"] = invoke(
        command, cwd, "--db", db, "screen", "NATARS", "--site", "BJFH", "--from-file", "bjfh.toml"
    ).stdout
    out["json"] = invoke(
        command, cwd, "--db", db, "screen", "TNT-STS", "--site", "FJMUUH", "--from-file", "tnt.json"
    ).stdout
    return Built(Path(db), out)


@pytest.fixture(scope="module")
def allocated(command, tmp_path_factory, screened) -> Built:
    """``screened`` with NATARS PKUIH S0001 and BJFH S0001 enrolled and assigned an arm."""
    cwd = tmp_path_factory.mktemp("allocated")
    db = screened.copy(cwd)
    out = {}
    out["table"] = invoke(
        command, cwd, "--db", db, "--user", "carol", "allocate", "PKUIH-NATARS-S0001",
        "--consent-date", "today", "--arm", "NEOADJUVANT", "--basis", "mdt_decision",
        "--reason", "MDT 2026-11-18: borderline resectable",
    ).stdout  # fmt: skip
    out["json"] = invoke(
        command, cwd, "--db", db, "allocate", "BJFH-NATARS-S0001", "--consent-date", "today",
        "--arm", "SURGERY_ONLY", "--basis", "patient_preference", "--reason", "declined chemo",
        "--format", "json",
    ).stdout  # fmt: skip
    return Built(Path(db), out)


# --- screen -------------------------------------------------------------------------------------


def test_a_screen_failure_is_stored_and_prints_not_eligible_with_the_failing_criterion(screened):
    out = screened.out["failure"]
    assert out.splitlines()[-1] == (
        f"PKUIH-NATARS-S0002: NOT ELIGIBLE (NATARS, site PKUIH, screened {today()})"
    )
    assert re.search(
        r"^INC-13\s+inclusion\s+fail\s+age_years is 80, above the maximum 75\s*$", out, re.M
    )
    [(eligible, results, actor)] = query(
        screened.path,
        "SELECT s.eligible, s.results, s.recorded_by FROM screenings s "
        "JOIN patients p ON p.id = s.patient_id WHERE p.screening_number = 'PKUIH-NATARS-S0002'",
    )
    assert (eligible, actor) == (0, "alice")
    assert json.loads(results)["failed"] == ["INC-13"]


def test_an_eligible_screening_prints_eligible_and_the_user_lands_in_the_audit_log(screened):
    out = screened.out["eligible"]
    assert out.splitlines()[-1] == (
        f"PKUIH-NATARS-S0001: ELIGIBLE (NATARS, site PKUIH, screened {today()})"
    )
    assert not re.search(r"\s(fail|missing)\s", out)
    [(screening_id, eligible, screened_on)] = query(
        screened.path,
        "SELECT s.id, s.eligible, s.screened_on FROM screenings s "
        "JOIN patients p ON p.id = s.patient_id WHERE p.screening_number = 'PKUIH-NATARS-S0001'",
    )
    assert (eligible, screened_on) == (1, today())
    actors = query(
        screened.path,
        "SELECT actor FROM audit_log WHERE action = 'screen' AND entity = 'screenings' "
        "AND entity_id = :id",
        id=str(screening_id),
    )
    assert actors == [("alice",)]


def test_screening_numbers_are_sequential_per_site_and_a_new_site_starts_at_s0001(screened):
    numbers = [
        row[0] for row in query(screened.path, "SELECT screening_number FROM patients ORDER BY id")
    ]
    assert numbers == [
        "PKUIH-NATARS-S0001",
        "PKUIH-NATARS-S0002",
        "BJFH-NATARS-S0001",
        "FJMUUH-TNT-STS-S0001",
    ]


def test_screen_reads_the_values_from_a_toml_or_a_json_file(screened):
    assert screened.out["toml"].splitlines()[-1].startswith("BJFH-NATARS-S0001: ELIGIBLE (NATARS")
    assert (
        screened.out["json"]
        .splitlines()[-1]
        .startswith("FJMUUH-TNT-STS-S0001: ELIGIBLE (TNT-STS, site FJMUUH")
    )
    stored = {
        number: json.loads(values)
        for number, values in query(
            screened.path,
            "SELECT p.screening_number, s.field_values FROM screenings s "
            "JOIN patients p ON p.id = s.patient_id",
        )
    }
    # Typed per the protocol, whatever the file's own types were.
    assert stored["BJFH-NATARS-S0001"]["age_years"] == 44
    assert stored["BJFH-NATARS-S0001"]["mdt_r0_r1_possible"] is True
    assert stored["BJFH-NATARS-S0001"]["tumour_size_cm"] == 14.5
    assert stored["FJMUUH-TNT-STS-S0001"]["deep_tumour"] is True
    assert stored["FJMUUH-TNT-STS-S0001"]["ecog"] == 1
    assert stored["FJMUUH-TNT-STS-S0001"]["tumour_size_cm"] == 8.5


def test_a_typing_mistake_exits_1_with_one_line_per_problem_and_changes_nothing(
    run, screened, tmp_path
):
    db = screened.copy(tmp_path)
    before = counts(db)
    typo = run(
        "--db", db, "screen", "NATARS", "--site", "PKUIH",
        "--field", "age_years=abc", "--field", "foo=1", "--field", "histology=XX",
    )  # fmt: skip
    assert typo.returncode == 1
    lines = typo.stderr.splitlines()
    assert len(lines) == 3, typo.stderr
    assert lines[0] == "error: --field: age_years: not a whole number (got 'abc')"
    assert lines[1].startswith("error: --field: foo: unknown screening field (known: age_years,")
    assert lines[2] == (
        "error: --field: histology: not one of the allowed values "
        "DDLPS, LMS, UPS, SFT, WDLPS, OTHER (got 'XX')"
    )
    assert typo.stdout == ""
    (tmp_path / "bad.toml").write_text("age_years = [\n")
    unreadable = run("--db", db, "screen", "NATARS", "--site", "PKUIH", "--from-file", "bad.toml")
    assert unreadable.returncode == 1
    assert unreadable.stderr.startswith("error: bad.toml: TOML syntax error: ")
    assert len(unreadable.stderr.splitlines()) == 1
    assert "Traceback" not in typo.stderr + unreadable.stderr
    assert counts(db) == before


def test_a_date_that_is_not_a_date_is_a_usage_error(run, screened, tmp_path):
    db = screened.copy(tmp_path)
    result = run("--db", db, "screen", "TNT-STS", "--site", "FJMUUH", "--date", "2026-13-01")
    assert result.returncode == 2
    assert "Invalid value for '--date': '2026-13-01' is not a date" in result.stderr
    assert "Traceback" not in result.stderr


# --- enroll -------------------------------------------------------------------------------------


def test_enroll_gives_the_site_s_first_study_id_and_records_the_user(run, screened, tmp_path):
    db = screened.copy(tmp_path)
    result = run(
        "--db", db, "--user", "carol", "enroll", "PKUIH-NATARS-S0001", "--consent-date", "today",
        check=True,
    )  # fmt: skip
    assert result.stdout == (
        f"PKUIH-NATARS-S0001 enrolled as PKUIH-NATARS-0001 (consent {today()})\n"
    )
    assert query(
        db, "SELECT study_id FROM patients WHERE screening_number = 'PKUIH-NATARS-S0001'"
    ) == [("PKUIH-NATARS-0001",)]
    assert query(db, "SELECT consent_date, enrolled_by FROM enrollments") == [(today(), "carol")]
    assert ("carol",) in query(db, "SELECT actor FROM audit_log WHERE entity = 'enrollments'")


def test_enrolling_an_ineligible_patient_exits_1_naming_the_failed_criterion(
    run, screened, tmp_path
):
    db = screened.copy(tmp_path)
    result = run("--db", db, "enroll", "PKUIH-NATARS-S0002", "--consent-date", "today")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: patient PKUIH-NATARS-S0002 is not eligible at the latest screening ({today()}): "
        "INC-13 not passed\n"
    )
    assert query(db, "SELECT count(*) FROM enrollments") == [(0,)]


def test_a_consent_date_in_the_future_is_refused(run, screened, tmp_path):
    db = screened.copy(tmp_path)
    result = run("--db", db, "enroll", "PKUIH-NATARS-S0001", "--consent-date", "+1d")
    assert result.returncode == 1
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert result.stderr == f"error: consent date {tomorrow} is in the future\n"
    assert query(db, "SELECT study_id FROM patients WHERE study_id IS NOT NULL") == []


# --- allocate -----------------------------------------------------------------------------------


def test_an_assigned_arm_needs_arm_basis_and_reason_and_each_missing_one_writes_nothing(
    run, screened, tmp_path
):
    db = screened.copy(tmp_path)
    before = counts(db)
    base = ("--db", db, "allocate", "PKUIH-NATARS-S0001", "--consent-date", "today")
    no_arm = run(*base, "--basis", "mdt_decision", "--reason", "MDT decision")
    no_basis = run(*base, "--arm", "NEOADJUVANT", "--reason", "MDT decision")
    no_reason = run(*base, "--arm", "NEOADJUVANT", "--basis", "mdt_decision")
    assert no_arm.returncode == no_basis.returncode == no_reason.returncode == 1
    assert (
        no_arm.stderr == "error: this trial's arm is assigned: give --arm, --basis and --reason\n"
    )
    assert no_basis.stderr.startswith(
        "error: an assigned arm needs --basis (one of mdt_decision, patient_preference, other)"
    )
    assert no_reason.stderr == (
        "error: an assigned arm needs a reason (e.g. the MDT meeting and its decision)\n"
    )
    # Enrolment (--consent-date) and allocation are one transaction: neither happened.
    assert counts(db) == before


def test_an_assigned_allocation_prints_the_arm_and_stores_basis_reason_and_user(allocated):
    out = allocated.out["table"]
    assert out.splitlines()[0] == (
        f"PKUIH-NATARS-0001: NEOADJUVANT (position 1, assigned, allocated {today()})"
    )
    header, rows = event_rows(out)
    assert header == EVENT_COLUMNS
    assert [row[0] for row in rows[:2]] == ["ai.1", "anlotinib.1"]
    [(arm, basis, reason, by)] = query(
        allocated.path,
        "SELECT a.arm, a.basis, a.reason, a.allocated_by FROM allocations a "
        "JOIN patients p ON p.id = a.patient_id WHERE p.study_id = 'PKUIH-NATARS-0001'",
    )
    assert (arm, basis, reason, by) == (
        "NEOADJUVANT",
        "mdt_decision",
        "MDT 2026-11-18: borderline resectable",
        "carol",
    )
    assert ("carol",) in query(
        allocated.path, "SELECT DISTINCT actor FROM audit_log WHERE action = 'allocate'"
    )


def test_allocate_json_output_parses_and_lists_the_stored_calendar(allocated):
    summary = json.loads(allocated.out["json"])
    assert (summary["study_id"], summary["arm"], summary["position"]) == (
        "BJFH-NATARS-0001",
        "SURGERY_ONLY",
        2,
    )
    events = summary["events"]
    stored = query(
        allocated.path,
        "SELECT e.event_id, e.target FROM scheduled_events e "
        "JOIN patients p ON p.id = e.patient_id WHERE p.study_id = 'BJFH-NATARS-0001' "
        "ORDER BY e.id",
    )
    assert [(e["event"], e["target"]) for e in events] == stored
    # Follow-up visits after the registered trial end are planned and say so.
    assert {f["code"] for e in events for f in e["flags"]} >= {"after_trial_end"}
    assert events[0]["event"] == "surgery"  # the SURGERY_ONLY arm


# --- exclude / withdraw -------------------------------------------------------------------------


def test_exclude_with_a_criterion_cancels_every_planned_event_and_deletes_none(
    run, allocated, tmp_path
):
    db = allocated.copy(tmp_path)
    patient = "(SELECT id FROM patients WHERE study_id = 'PKUIH-NATARS-0001')"
    planned = query(db, f"SELECT count(*) FROM scheduled_events WHERE patient_id = {patient}")
    result = run(
        "--db", db, "--user", "erin", "exclude", "PKUIH-NATARS-0001",
        "--criterion", "EXC-02", "--reason", "final pathology WDLPS",
        check=True,
    )  # fmt: skip
    n = planned[0][0]
    assert n > 0
    assert result.stdout == (
        f"PKUIH-NATARS-0001: excluded from {today()}; {n} planned event(s) cancelled, "
        "none deleted\n"
    )
    assert query(
        db,
        f"SELECT status, reason, count(*) FROM scheduled_events WHERE patient_id = {patient} "
        "GROUP BY status, reason",
    ) == [("cancelled", "ineligible", n)]  # the code; the words stay with the exclusion
    assert query(db, "SELECT kind, criterion_id, recorded_by FROM participation_ends") == [
        ("excluded", "EXC-02", "erin")
    ]
    # The other patient's calendar is untouched.
    assert query(
        db,
        "SELECT DISTINCT e.status FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE p.study_id = 'BJFH-NATARS-0001'",
    ) == [("planned",)]
    verified = run("--db", db, "audit", "verify", check=True)
    assert verified.stdout.startswith("audit log intact: ")


def test_a_fixed_arm_patient_is_allocated_once_and_withdrawn_once(run, db_arg):
    """TNT-STS on SQLite and PostgreSQL: screen, enrol + allocate, withdraw, with refusals."""
    run("--db", db_arg, "init", check=True)
    screen = run(
        "--db", db_arg, "screen", "TNT-STS", "--site", "FJMUUH", *fields(ELIGIBLE_TNT),
        check=True,
    )  # fmt: skip
    assert screen.stdout.splitlines()[-1].startswith("FJMUUH-TNT-STS-S0001: ELIGIBLE")

    allocated = run(
        "--db", db_arg, *as_user(db_arg, "dana"), "allocate", "FJMUUH-TNT-STS-S0001",
        "--consent-date", "today", "--date", "today",
        check=True,
    )  # fmt: skip
    assert allocated.stdout.splitlines()[0] == (
        f"FJMUUH-TNT-STS-0001: TNT (position 1, fixed, allocated {today()})"
    )
    header, rows = event_rows(allocated.stdout)
    assert header == EVENT_COLUMNS
    assert rows[0][0] == "baseline"
    assert query(db_arg, "SELECT arm, method, position, allocated_by FROM allocations") == [
        ("TNT", "fixed", 1, actor(db_arg, "dana"))
    ]
    assert query(db_arg, "SELECT count(*) FROM scheduled_events WHERE status = 'planned'") == [
        (len(rows),)
    ]

    again = run("--db", db_arg, "allocate", "FJMUUH-TNT-STS-0001", "--date", "today")
    assert again.returncode == 1
    assert again.stderr == (
        "error: patient FJMUUH-TNT-STS-0001 is already allocated; an allocation is never redone\n"
    )
    assert query(db_arg, "SELECT count(*) FROM allocations") == [(1,)]

    withdrawn = run(
        "--db", db_arg, *as_user(db_arg, "erin"), "withdraw", "FJMUUH-TNT-STS-0001",
        "--reason", "withdrew consent", "--date", "+0d",
        check=True,
    )  # fmt: skip
    assert withdrawn.stdout == (
        f"FJMUUH-TNT-STS-0001: withdrawn from {today()}; {len(rows)} planned event(s) "
        "cancelled, none deleted\n"
    )
    assert query(db_arg, "SELECT status, count(*) FROM scheduled_events GROUP BY status") == [
        ("cancelled", len(rows))
    ]
    assert query(db_arg, "SELECT kind, recorded_by FROM participation_ends") == [
        ("withdrawn", actor(db_arg, "erin"))
    ]
    assert query(db_arg, "SELECT DISTINCT actor FROM audit_log WHERE action = 'withdraw'") == [
        (actor(db_arg, "erin"),)
    ]

    twice = run("--db", db_arg, "withdraw", "FJMUUH-TNT-STS-0001", "--reason", "again")
    assert twice.returncode == 1
    assert twice.stderr == "error: patient FJMUUH-TNT-STS-0001 is already recorded as withdrawn\n"
    assert query(db_arg, "SELECT count(*) FROM participation_ends") == [(1,)]


@pytest.mark.postgres
@pytest.mark.parametrize("db_arg", ["postgresql"], indirect=True)
def test_on_postgresql_a_user_that_is_not_the_login_is_refused_and_the_login_is_audited(
    run, db_arg
):
    """On PostgreSQL the audit names the authenticated login: ``--user`` naming anyone else is
    refused before anything is written; without it the command acts as the login."""
    from sqlalchemy.engine import make_url

    from tests.dumps import dump

    login = make_url(db_arg).username
    assert login and login != "mallory"
    run("--db", db_arg, "init", check=True)
    screen = ("screen", "TNT-STS", "--site", "FJMUUH", *fields(ELIGIBLE_TNT))
    before = dump(db_arg)
    refused = run("--db", db_arg, "--user", "mallory", *screen)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(f"error: --user mallory is not the PostgreSQL login {login}: ")
    assert dump(db_arg) == before, "a refused command changed the database"

    done = run("--db", db_arg, *screen, check=True)
    assert done.stdout.splitlines()[-1].startswith("FJMUUH-TNT-STS-S0001: ELIGIBLE")
    assert query(db_arg, "SELECT DISTINCT actor FROM audit_log WHERE action = 'screen'") == [
        (login,)
    ]
    assert query(db_arg, "SELECT recorded_by FROM screenings") == [(login,)]


def test_a_bad_value_in_the_file_is_blamed_on_the_file_and_a_bad_field_on_the_option(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    bad = tmp_path / "pbad.toml"
    bad.write_text('age_years = "abc"\n')
    result = run(
        "--db", db, "screen", "TNT-STS", "--site", "FJMUUH", "--from-file", str(bad),
        "--field", "ecog=9",
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {bad}: age_years: not a whole number (got 'abc')"
    assert lines[1].startswith("error: --field: ecog: outside the plausible range")


def test_screen_json_carries_the_verdict_and_the_screening_number(run, tmp_path):
    db = str(tmp_path / "t.db")
    run("--db", db, "init", check=True)
    result = run(
        "--db", db, "screen", "TNT-STS", "--site", "FJMUUH", "--field", "age_years=61",
        "--format", "json", check=True,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert (summary["screening_number"], summary["eligible"]) == ("FJMUUH-TNT-STS-S0001", False)
    assert {c["outcome"] for c in summary["criteria"]} >= {"pass", "missing"}
