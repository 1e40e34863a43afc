"""What happened, day by day, through the installed command (issue 20, items 3 and 5): a closure
entered after the fact, the actual day of one fraction or infusion day, a cycle's at-home
component recorded with it, and a withdrawal during a dosing period.

Each test builds its own small trial through the services (dates relative to today) and then
drives ``sarcoma-sched``; expected dates come from the stored rows and the site calendar.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

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
