"""``sarcoma-sched plan``: the coordinator's preview of a calendar, and re-planning from events."""

import json

from tests.cli.conftest import ROOT

TABLE = ROOT / "tests" / "calendars" / "cn-2027-illustrative.toml"


def test_plan_preview_prints_every_event_with_window_and_days(run):
    out = run(
        "plan", "NATARS", "NEOADJUVANT", "--anchor", "2026-02-10", "--site", "PKUIH", check=True
    ).stdout
    assert "NATARS NEOADJUVANT at PKUIH (Asia/Shanghai), allocated 2026-02-10" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    # C1D1 after the Spring Festival block, five inpatient days.
    assert "2026-02-24" in lines["ai.1"] and "02-24, 02-25, 02-26, 02-27, 02-28" in lines["ai.1"]
    assert "one 14-day period" in lines["anlotinib.1"]
    assert "2026-05-12" in lines["surgery"]
    assert "Warnings:" in out and "estimated CN holidays" in out


def test_plan_json_lists_the_same_events_and_recorded_history_moves_later_ones(run):
    base = json.loads(
        run(
            "plan", "TNT-STS", "TNT", "--anchor", "2026-09-24", "--format", "json", check=True
        ).stdout
    )
    ids = [row["event"] for row in base["events"]]
    assert ids[:4] == ["baseline", "rt", "ai.1", "labs.1"]
    out = run(
        "plan", "TNT-STS", "TNT", "--anchor", "2026-09-24", "--done", "ai.1=2026-11-02", check=True
    ).stdout
    assert "Moved by what happened" in out
    assert "ai.2: 2026-11-18 → 2026-11-23 (+5 days)" in out


def test_a_closure_on_the_first_rt_days_moves_the_working_day_window_past_it(run):
    """Fraction 1 falls from the 5th to the 10th working day after allocation: a closure is no
    working day, so the window counts past it (RT planning needs a week of work)."""
    out = run(
        "plan",
        "TNT-STS",
        "TNT",
        "--anchor",
        "2026-09-24",
        "--closure",
        "2026-10-08..2026-10-09",
        check=True,
    ).stdout
    rt = next(line for line in out.splitlines() if line.startswith("rt "))
    # Without the closure: window 2026-10-09 … 10-15; Oct 8 and 9 closed: 10-12 … 10-19.
    assert "2026-10-12 … 2026-10-19" in rt
    assert "10-12, 10-13, 10-14, 10-15, 10-16" in rt
    assert "unsatisfiable" not in rt


def test_an_official_table_replaces_the_estimated_year(run):
    args = ("plan", "NATARS", "SURGERY_ONLY", "--anchor", "2027-01-25", "--format", "json")
    estimated = json.loads(run(*args, check=True).stdout)
    by_event = {r["event"]: r for r in estimated["events"]}
    # Target 2027-02-08: the package's estimate ends the festival on 02-10, so 02-11.
    assert by_event["surgery"]["days"] == ["2027-02-11"]
    assert "estimated_holidays" in {w["code"] for w in estimated["warnings"]}
    official = json.loads(run(*args, "--holiday-table", str(TABLE), check=True).stdout)
    by_event = {r["event"]: r for r in official["events"]}
    # The (illustrative) table runs the festival to 02-12: the next working day is Monday 02-15.
    assert by_event["surgery"]["days"] == ["2027-02-15"]
    # Surgery no longer relies on an estimate: only the later years' events do.
    (notice,) = [w for w in official["warnings"] if w["code"] == "estimated_holidays"]
    assert "surgery" not in notice["events"]


def test_plan_mistakes_are_one_line_each(run):
    bad_arm = run("plan", "NATARS", "CHEMO", "--anchor", "2026-02-10")
    assert bad_arm.returncode == 1
    assert bad_arm.stderr.strip() == (
        "error: protocol NATARS has no arm 'CHEMO' (arms: SURGERY_ONLY, NEOADJUVANT)"
    )
    bad_date = run("plan", "NATARS", "SURGERY_ONLY", "--anchor", "2026-02-30")
    assert bad_date.returncode == 2
    assert "not a date" in bad_date.stderr
    bad_event = run("plan", "NATARS", "SURGERY_ONLY", "--anchor", "2026-02-10", "--missed", "rt")
    assert bad_event.returncode == 1
    assert "has no event 'rt'" in bad_event.stderr
    assert "Traceback" not in bad_arm.stderr + bad_date.stderr + bad_event.stderr
