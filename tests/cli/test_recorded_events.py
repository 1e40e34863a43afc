"""What happened, day by day, through the installed command (issue 20, items 3 and 5): a closure
entered after the fact, the actual day of one fraction or infusion day, a cycle's at-home
component recorded with it, and a withdrawal during a dosing period.

Each test builds its own small trial through the services (dates relative to today) and then
drives ``sarcoma-sched``; expected dates come from the stored rows and the site calendar.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT
from tests.dumps import dump

DAY = dt.timedelta(days=1)
NATARS_P = "PKUIH-NATARS-0001"
TNT_P = "FJMUUH-TNT-STS-0001"


def build(db: str, *, natars_days_ago: int = 0, tnt_days_ago: int | None = None) -> None:
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.protocols import initialize
    from sarcoma_sched.services.screening import screen

    today = dt.date.today()
    database = Database(db, check_schema=False)
    try:
        initialize(database, "setup")
        screen(database, "setup", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=today)
        when = today - natars_days_ago * DAY
        allocate_patient(
            database, "setup", "PKUIH-NATARS-S0001", today=today, allocation_date=when,
            consent_date=when, arm="NEOADJUVANT", basis="mdt_decision", reason="MDT",
        )  # fmt: skip
        if tnt_days_ago is not None:
            screen(database, "setup", "TNT-STS", "FJMUUH", ELIGIBLE_TNT, screened_on=today)
            when = today - tnt_days_ago * DAY
            allocate_patient(
                database, "setup", "FJMUUH-TNT-STS-S0001", today=today, allocation_date=when,
                consent_date=when,
            )  # fmt: skip
    finally:
        database.dispose()


def events(db: str, study_id: str) -> dict[str, dict[str, Any]]:
    rows = query(
        db,
        "SELECT e.event_id, e.status, e.days, e.actual_date, e.deviation, e.revision, e.reason "
        "FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE p.study_id = :sid ORDER BY e.id",
        sid=study_id,
    )
    out = {}
    for event_id, status, days, actual, deviation, revision, reason in rows:
        days = json.loads(days) if isinstance(days, str) else days
        out[event_id] = {
            "status": status,
            "days": [dt.date.fromisoformat(d) for d in days],
            "actual_date": str(actual) if actual else None,
            "deviation": deviation,
            "revision": revision,
            "reason": reason,
        }
    return out


def record(db: str, *args: str) -> None:
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import record_event

    event, status, date = args
    database = Database(db)
    try:
        record_event(
            database, "t", NATARS_P, event, status,
            date=dt.date.fromisoformat(date) if date else None, reason=None,
            today=dt.date.today(),
        )  # fmt: skip
    finally:
        database.dispose()


# -- item 3: a closure entered after the fact ----------------------------------------------------


@pytest.fixture
def natars_40_days_in(tmp_path) -> str:
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=40)
    return db


def test_a_closure_entered_after_the_fact_keeps_done_events_as_recorded_and_lists_them(
    run, natars_40_days_in
):
    db = natars_40_days_in
    ai1 = events(db, NATARS_P)["ai.1"]
    first = ai1["days"][0]
    assert first < dt.date.today()
    record(db, "ai.1", "done", first.isoformat())
    before = events(db, NATARS_P)["ai.1"]

    result = run(
        "--db", db, "site", "close", "PKUIH", "--from", first.isoformat(),
        "--to", (first + DAY).isoformat(), "--reason", "strike (entered late)", check=True,
    )  # fmt: skip
    assert events(db, NATARS_P)["ai.1"] == before  # days, status, deviation, revision
    assert before["deviation"] is None
    assert (
        f"1 done event falls on the new closure, kept as recorded: {NATARS_P} ai.1 "
        f"({first}, {first + DAY})"
    ) in result.stdout
    listed = run("--db", db, "deviations", "--format", "json", check=True)
    assert not [d for d in json.loads(listed.stdout) if d.get("event") == "ai.1"]

    as_json = run(
        "--db", db, "site", "close", "PKUIH", "--from", (first + 2 * DAY).isoformat(),
        "--reason", "strike, day 3", "--format", "json", check=True,
    )  # fmt: skip
    assert json.loads(as_json.stdout)["done_on_closure"] == [
        {"study_id": NATARS_P, "event": "ai.1", "days": [(first + 2 * DAY).isoformat()]}
    ]
    assert events(db, NATARS_P)["ai.1"] == before


def test_a_closure_with_no_done_event_on_it_says_nothing_of_them(run, natars_40_days_in):
    db = natars_40_days_in
    later = dt.date.today() + 400 * DAY
    result = run(
        "--db", db, "site", "close", "PKUIH", "--from", later.isoformat(), "--reason", "move",
        check=True,
    )  # fmt: skip
    assert "done event" not in result.stdout + result.stderr


# -- item 5: the actual day of one fraction or infusion day ---------------------------------------


def calendar_of(db: str, site: str):
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.lookups import site_calendar

    database = Database(db)
    try:
        with database.read() as session:
            return site_calendar(session, site)
    finally:
        database.dispose()


@pytest.fixture
def tnt_course_given(tmp_path, run) -> str:
    """A TNT patient allocated 40 days ago whose RT course is recorded done as planned."""
    db = str(tmp_path / "trial.db")
    build(db, tnt_days_ago=40)
    rt = events(db, TNT_P)["rt"]
    assert rt["days"][-1] < dt.date.today()
    run("--db", db, "record", TNT_P, "rt", "--status", "done", "--date", rt["days"][0].isoformat(),
        check=True)  # fmt: skip
    return db


def test_a_fraction_given_a_day_late_moves_it_and_the_fractions_after_it(run, tnt_course_given):
    db = tnt_course_given
    before = events(db, TNT_P)
    planned = before["rt"]["days"]
    fjmuuh = calendar_of(db, "FJMUUH")
    # The machine was down on fraction 3's day: it was given the next working day.
    late = fjmuuh.next_working_day(planned[2] + DAY)
    result = run(
        "--db", db, "record", TNT_P, "rt", "--status", "done", "--day", "3",
        "--date", late.isoformat(), "--format", "json", check=True,
    )  # fmt: skip
    after = events(db, TNT_P)
    expected = (*planned[:2], *fjmuuh.working_days_from(late, 3))
    assert tuple(after["rt"]["days"]) == expected
    assert after["rt"]["status"] == "done" and after["rt"]["revision"] > before["rt"]["revision"]
    assert json.loads(result.stdout)["days"] == [d.isoformat() for d in expected]
    # Surgery waits 28 days from the actual last fraction, not the planned one.
    assert (after["surgery"]["days"][0] - expected[-1]).days >= 28


def test_a_later_fraction_recorded_on_its_own_keeps_the_ones_before(run, tnt_course_given):
    db = tnt_course_given
    planned = events(db, TNT_P)["rt"]["days"]
    fjmuuh = calendar_of(db, "FJMUUH")
    last = fjmuuh.next_working_day(planned[4] + DAY)
    run("--db", db, "record", TNT_P, "rt", "--status", "done", "--day", "5",
        "--date", last.isoformat(), check=True)  # fmt: skip
    assert tuple(events(db, TNT_P)["rt"]["days"]) == (*planned[:4], last)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "6"], "has 5 day(s); there is no day 6"),
        (["--day", "3", "--date", "FIRST"], "is not after day 2"),
        (["--day", "0"], "--day counts the days of a course from 1 (got 0)"),
        (["--day", "2", "--status", "missed"], "--day records the date a day of a course"),
    ],
)
def test_a_day_that_cannot_be_is_refused_and_changes_nothing(
    run, tnt_course_given, tmp_path, args, message
):
    db = tnt_course_given
    first = events(db, TNT_P)["rt"]["days"][0]
    before = dump(Path(db))
    if "--date" not in args:
        args = [*args, "--date", first.isoformat()]
    args = [first.isoformat() if a == "FIRST" else a for a in args]
    if "--status" not in args:
        args = [*args, "--status", "done"]
    result = run("--db", db, "record", TNT_P, "rt", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert dump(Path(db)) == before


def test_a_day_of_a_course_not_yet_recorded_asks_for_its_start_first(run, tmp_path):
    db = str(tmp_path / "trial.db")
    build(db, tnt_days_ago=40)
    rt = events(db, TNT_P)["rt"]
    result = run("--db", db, "record", TNT_P, "rt", "--status", "done", "--day", "2",
                 "--date", rt["days"][1].isoformat())  # fmt: skip
    assert result.returncode != 0
    assert "record day 1 (its start) before day 2" in result.stderr
    assert events(db, TNT_P)["rt"]["status"] == "planned"


# -- item 5: a cycle's components recorded with it, or apart --------------------------------------


def test_a_cycle_recorded_with_its_components_records_its_dosing_period_and_labs(
    run, natars_40_days_in
):
    db = natars_40_days_in
    ai1 = events(db, NATARS_P)["ai.1"]["days"][0]
    run("--db", db, "record", NATARS_P, "ai.1", "--status", "done", "--date", ai1.isoformat(),
        "--with-components", check=True)  # fmt: skip
    after = events(db, NATARS_P)
    assert after["anlotinib.1"]["status"] == "done" and after["labs.1"]["status"] == "done"
    assert after["anlotinib.1"]["days"] == [ai1 + i * DAY for i in range(14)]
    assert after["anlotinib.1"]["actual_date"] == ai1.isoformat()
    assert after["labs.1"]["days"][0] < ai1
    # The next cycle's components are its own: nothing recorded there.
    assert after["anlotinib.2"]["status"] == after["ai.2"]["status"] == "planned"
    overdue = run("--db", db, "overdue", "--format", "json", check=True)
    assert not [r for r in json.loads(overdue.stdout) if r.get("event") == "anlotinib.1"]


def test_a_dosing_period_recorded_apart_moves_the_washout_before_surgery(run, natars_40_days_in):
    db = natars_40_days_in
    ai1 = events(db, NATARS_P)["ai.1"]["days"][0]
    run("--db", db, "record", NATARS_P, "ai.1", "--status", "done", "--date", ai1.isoformat(),
        check=True)  # fmt: skip
    assert events(db, NATARS_P)["anlotinib.1"]["status"] == "planned"  # not unless asked
    started = ai1 + 2 * DAY  # dosing began two days after the infusion (its window allows it)
    run("--db", db, "record", NATARS_P, "anlotinib.1", "--status", "done",
        "--date", started.isoformat(), check=True)  # fmt: skip
    after = events(db, NATARS_P)
    assert after["anlotinib.1"]["days"] == [started + i * DAY for i in range(14)]
    assert after["anlotinib.1"]["deviation"] is None


def test_components_with_a_cycle_not_done_are_refused(run, natars_40_days_in):
    db = natars_40_days_in
    before = dump(Path(db))
    result = run("--db", db, "record", NATARS_P, "ai.1", "--status", "skipped",
                 "--reason", "declined", "--with-components")  # fmt: skip
    assert result.returncode != 0 and "--with-components" in result.stderr
    assert dump(Path(db)) == before


# -- item 5: a withdrawal during a dosing period --------------------------------------------------


def test_a_withdrawal_ends_a_dosing_period_in_progress_and_later_replans_keep_it_ended(
    run, tmp_path
):
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=14)
    first = events(db, NATARS_P)["ai.1"]["days"][0]
    today = dt.date.today()
    assert first < today < first + 13 * DAY  # anlotinib D1-14 is under way
    run("--db", db, "record", NATARS_P, "ai.1", "--status", "done", "--date", first.isoformat(),
        "--with-components", check=True)  # fmt: skip
    run("--db", db, "withdraw", NATARS_P, "--reason-code", "toxicity", "--date",
        today.isoformat(), check=True)  # fmt: skip
    after = events(db, NATARS_P)
    assert after["anlotinib.1"]["days"] == [first + i * DAY for i in range((today - first).days)]
    assert after["anlotinib.1"]["status"] == "done"
    assert after["ai.2"]["status"] == "cancelled"
    # A correction of the cycle's day re-plans the patient: the period stays ended.
    run("--db", db, "record", NATARS_P, "ai.1", "--status", "done", "--date",
        first.isoformat(), "--correct", "--reason", "typo", "--reason-code", "data_error",
        check=True)  # fmt: skip
    assert events(db, NATARS_P)["anlotinib.1"]["days"][-1] == today - DAY


# -- issue 21, item 5: a closure recorded by mistake is revoked ----------------------------------


def test_a_closure_recorded_by_mistake_is_revoked_and_its_moves_undone(run, tmp_path):
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=0)
    before = events(db, NATARS_P)
    ai1 = before["ai.1"]["days"]
    first, last = ai1[0].isoformat(), ai1[-1].isoformat()
    run("--db", db, "site", "close", "PKUIH", "--from", first, "--to", last,
        "--reason", "wrong ward", check=True)  # fmt: skip
    assert events(db, NATARS_P)["ai.1"]["days"] != ai1
    revoked = run("--db", db, "site", "close", "PKUIH", "--from", first, "--to", last,
                  "--revoke", check=True)  # fmt: skip
    assert revoked.stdout.startswith(f"PKUIH closure revoked {first} … {last}; ")
    assert "ai.1" in revoked.stdout and first in revoked.stdout  # old → new, back to ai.1's day
    after = events(db, NATARS_P)
    assert {k: v["days"] for k, v in after.items()} == {k: v["days"] for k, v in before.items()}
    assert query(db, "SELECT count(*) FROM site_closures") == [(0,)]
    audit = query(db, "SELECT action FROM audit_log WHERE entity = 'site_closures' ORDER BY seq")
    assert [a for (a,) in audit] == ["site close", "site close --revoke"]


def test_revoking_a_closure_that_is_not_there_names_the_ones_that_are(run, tmp_path):
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=0)
    later = dt.date.today() + 300 * DAY
    run("--db", db, "site", "close", "PKUIH", "--from", later.isoformat(), "--reason", "move",
        check=True)  # fmt: skip
    before = dump(Path(db))
    refused = run("--db", db, "site", "close", "PKUIH", "--from", (later + DAY).isoformat(),
                  "--revoke")  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.strip() == (
        f"error: PKUIH has no closure {later + DAY}..{later + DAY} to revoke "
        f"(closures: {later}..{later})"
    )
    assert dump(Path(db)) == before


def test_a_patient_is_found_whatever_the_case_it_is_typed_in(run, natars_40_days_in):
    db = natars_40_days_in
    upper = json.loads(run("--db", db, "schedule", NATARS_P, "--format", "json",
                           check=True).stdout)  # fmt: skip
    for typed in (NATARS_P.lower(), f" {NATARS_P.title()} ", "pkuih-natars-s0001"):
        shown = run("--db", db, "schedule", typed, "--format", "json", check=True)
        assert json.loads(shown.stdout) == upper
    missing = run("--db", db, "schedule", "pkuih-natars-0099")
    assert missing.returncode != 0
    assert "no patient with study id or screening number 'pkuih-natars-0099'" in missing.stderr
