"""`site open CODE DATE`: an extra working day at a site (issue 21, item 5), audited, re-planned
and printed old → new, and taken back with --revoke."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

STUDY_ID = "PKUIH-NATARS-0001"
# Allocated Sunday 2026-12-06: AI+A cycle 1's target is the next Sunday, 2026-12-13, so the
# planner gives it on Monday 12-14, the first working day.
SUNDAY = dt.date(2026, 12, 13)


@pytest.fixture
def trial(run, tmp_path) -> str:
    db = str(tmp_path / "trial.db")
    run("--db", db, "init", check=True)
    values = [arg for k, v in ELIGIBLE_NATARS.items() for arg in ("--field", f"{k}={v}")]
    run("--db", db, "screen", "NATARS", "--site", "PKUIH", *values, "--date", "2026-12-04",
        check=True)  # fmt: skip
    run("--db", db, "allocate", "PKUIH-NATARS-S0001", "--consent-date", "2026-12-05",
        "--date", "2026-12-06", "--arm", "NEOADJUVANT", "--basis", "mdt_decision",
        "--reason", "MDT", check=True)  # fmt: skip
    return db


def _days(db: str) -> dict[str, str]:
    rows = query(db, "SELECT event_id, first_day FROM scheduled_events ORDER BY id")
    return {event: str(first) for event, first in rows}


def test_an_extra_working_day_moves_the_events_that_wanted_it_and_revoking_it_moves_them_back(
    run, trial
):
    before = _days(trial)
    assert before["ai.1"] == str(SUNDAY + dt.timedelta(days=1))
    opened = run("--db", trial, "site", "open", "pkuih", str(SUNDAY), "--reason-code",
                 "capacity", "--reason", "extra ward day", check=True)  # fmt: skip
    lines = opened.stdout.splitlines()
    assert lines[0] == f"PKUIH open (extra working day) {SUNDAY}; 2 event(s) of 1 patient(s) moved"
    moved = {line.split()[1]: line.split()[2:] for line in lines[2:]}
    assert moved == {
        "ai.1": ["2026-12-14", "2026-12-13", "-1"],
        "anlotinib.1": ["2026-12-14", "2026-12-13", "-1"],
    }
    after = _days(trial)
    assert after["ai.1"] == after["anlotinib.1"] == str(SUNDAY)
    assert query(trial, "SELECT kind, first_day, last_day, reason, note FROM site_closures") == [
        ("open", str(SUNDAY), str(SUNDAY), "capacity", "extra ward day")
    ]
    assert "2026-12-13" not in run("--db", trial, "site", "list", check=True).stdout

    revoked = run("--db", trial, "site", "open", "PKUIH", str(SUNDAY), "--revoke",
                  "--format", "json", check=True)  # fmt: skip
    shown = json.loads(revoked.stdout)
    assert (shown["site"], shown["day"], shown["revoked"]) == ("PKUIH", str(SUNDAY), True)
    assert [(m["event"], m["old"], m["new"]) for m in shown["moved"]] == [
        ("ai.1", "2026-12-13", "2026-12-14"),
        ("anlotinib.1", "2026-12-13", "2026-12-14"),
    ]
    assert _days(trial) == before
    assert query(trial, "SELECT count(*) FROM site_closures") == [(0,)]
    audit = query(trial, "SELECT action FROM audit_log WHERE entity = 'site_closures' ORDER BY seq")
    assert [a for (a,) in audit] == ["site open", "site open --revoke"]
    run("--db", trial, "audit", "verify", check=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2026-12-14",), "error: 2026-12-14 is already a working day at PKUIH: nothing to open"),
        (
            ("2026-12-20", "--revoke"),
            "error: PKUIH has no extra working day 2026-12-20 to revoke (open days: none)",
        ),
        (("2026-12-19", "--reason", "x" * 5000), "error: --reason: 5000 characters; "),
    ],
)
def test_an_open_day_that_cannot_be_recorded_is_refused_and_changes_nothing(
    run, trial, args, message
):
    before = dump(trial)
    refused = run("--db", trial, "site", "open", "PKUIH", *args)
    assert refused.returncode == 1
    assert refused.stderr.startswith(message) and refused.stderr.count("\n") == 1
    assert dump(trial) == before


def test_a_day_cannot_be_both_closed_and_open(run, trial):
    run("--db", trial, "site", "close", "PKUIH", "--from", "2026-12-12", "--to", "2026-12-13",
        "--reason", "strike", check=True)  # fmt: skip
    before = dump(trial)
    refused = run("--db", trial, "site", "open", "PKUIH", str(SUNDAY))
    assert refused.stderr == (
        "error: PKUIH is recorded closed 2026-12-12..2026-12-13: revoke that first "
        "(site close PKUIH --from 2026-12-12 --to 2026-12-13 --revoke)\n"
    )
    assert dump(trial) == before
    run("--db", trial, "site", "close", "PKUIH", "--from", "2026-12-12", "--to", "2026-12-13",
        "--revoke", check=True)  # fmt: skip
    run("--db", trial, "site", "open", "PKUIH", str(SUNDAY), check=True)
    refused = run("--db", trial, "site", "close", "PKUIH", "--from", "2026-12-10", "--to",
                  "2026-12-20", "--reason", "strike")  # fmt: skip
    assert refused.stderr == (
        f"error: PKUIH is recorded open on {SUNDAY}: revoke that first "
        f"(site open PKUIH {SUNDAY} --revoke)\n"
    )
