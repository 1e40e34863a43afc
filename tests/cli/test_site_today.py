"""What "today" means: the date at the trial's sites, not on the machine (issue 21, item 5).

The clock is fixed with ``SARCOMA_SCHED_NOW`` at 2026-12-31 17:30 UTC: New Year's Eve on a
server in UTC, already 2027-01-01 01:30 in Beijing, where the NATARS hospitals are.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import query

NEW_YEAR_IN_BEIJING = "2026-12-31T17:30:00Z"  # 2027-01-01 01:30 in Asia/Shanghai
EVE_IN_BEIJING = "2026-12-31T15:30:00+00:00"  # 2026-12-31 23:30 in Asia/Shanghai


@pytest.fixture
def trial(run, tmp_path, monkeypatch) -> str:
    db = str(tmp_path / "trial.db")
    monkeypatch.setenv("TZ", "UTC")  # the machine's own date is 2026-12-31 throughout
    run("--db", db, "init", check=True)
    return db


def test_today_is_the_date_in_the_sites_zone_when_the_machine_is_a_day_behind(
    run, trial, monkeypatch
):
    monkeypatch.setenv("SARCOMA_SCHED_NOW", NEW_YEAR_IN_BEIJING)
    shown = run("--db", trial, "overdue", check=True)
    assert shown.stdout.splitlines()[-1] == "0 overdue event(s) on 2027-01-01"
    # A date typed as "today" or "+Nd" is the same day.
    run("--db", trial, "site", "close", "PKUIH", "--from", "today", "--to", "+1d",
        "--reason", "water leak", check=True)  # fmt: skip
    assert query(trial, "SELECT first_day, last_day FROM site_closures") == [
        ("2027-01-01", "2027-01-02")
    ]
    monkeypatch.setenv("SARCOMA_SCHED_NOW", EVE_IN_BEIJING)
    shown = run("--db", trial, "overdue", check=True)
    assert shown.stdout.splitlines()[-1] == "0 overdue event(s) on 2026-12-31"


def test_sites_in_several_zones_take_today_from_the_site_asked_about(run, trial, monkeypatch):
    monkeypatch.setenv("SARCOMA_SCHED_NOW", NEW_YEAR_IN_BEIJING)
    run("--db", trial, "site", "add", "MSK", "--name", "Memorial", "--time-zone",
        "America/New_York", "--holiday-country", "US", check=True)  # fmt: skip
    # 12:30 on New Year's Eve in New York, 01:30 on New Year's Day in Beijing.
    for site, day in (("MSK", "2026-12-31"), ("PKUIH", "2027-01-01")):
        shown = run("--db", trial, "overdue", "--site", site, check=True)
        assert shown.stdout.splitlines()[-1] == f"0 overdue event(s) on {day}"
    # Without a site the zones disagree: the machine's zone (UTC here) is the only answer left.
    shown = run("--db", trial, "overdue", check=True)
    assert shown.stdout.splitlines()[-1] == "0 overdue event(s) on 2026-12-31"


def test_a_screening_without_a_date_is_dated_today_at_its_site(run, trial, monkeypatch):
    from tests.cohort import ELIGIBLE_NATARS

    monkeypatch.setenv("SARCOMA_SCHED_NOW", NEW_YEAR_IN_BEIJING)
    fields = [a for name, value in ELIGIBLE_NATARS.items() for a in ("--field", f"{name}={value}")]
    screened = run("--db", trial, "screen", "NATARS", "--site", "PKUIH", *fields,
                   "--format", "json", check=True)  # fmt: skip
    assert json.loads(screened.stdout)["screened_on"] == "2027-01-01"


def test_a_clock_that_names_no_instant_is_refused_in_one_line(run, trial, monkeypatch):
    for bad in ("2026-12-31", "2026-12-31T17:30", "tomorrow"):
        monkeypatch.setenv("SARCOMA_SCHED_NOW", bad)
        refused = run("--db", trial, "overdue")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"error: SARCOMA_SCHED_NOW={bad!r}: give an instant with its offset, "
            "e.g. 2026-12-31T17:30:00Z\n"
        )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("2027-01-04", "2027-01-04"), ("20270104", "2027-01-04"), ("2027-w01-1", "2027-01-04")],
)
def test_a_typed_date_is_read_as_an_iso_8601_calendar_date(run, trial, typed, meant):
    run("--db", trial, "site", "close", "PKUIH", "--from", typed, "--reason", "strike",
        check=True)  # fmt: skip
    assert query(trial, "SELECT first_day FROM site_closures") == [(meant,)]


@pytest.mark.parametrize("typed", ["2027-02-30", "01/04/2027", "2027-01-04T09:00", "2027-1-4"])
def test_a_date_that_is_not_a_calendar_date_is_refused(run, trial, typed):
    refused = run("--db", trial, "site", "close", "PKUIH", "--from", typed, "--reason", "x")
    assert refused.returncode == 2
    assert f"Invalid value for '--from': {typed!r} is not a date" in refused.stderr
