"""A rescheduled surgery that a late cycle makes unsafe (issue 18): released to the planner's
day by default, printed old -> new; kept under --pin-policy keep, flagged, and exported
TENTATIVE. Never an unsafe CONFIRMED date in the patient's calendar."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS

DAY = dt.timedelta(days=1)
FIELDS = [a for k, v in ELIGIBLE_NATARS.items() for a in ("--field", f"{k}={v}")]
# Allocated long enough ago that cycle 3 is past and surgery still ahead.
ALLOCATED_DAYS_AGO = 66


def _events(db: str) -> dict[str, tuple[str, list[str], str | None, list[dict]]]:
    rows = query(db, "SELECT event_id, status, days, pinned, flags FROM scheduled_events")
    out = {}
    for event_id, status, days, pinned, flags in rows:
        days = json.loads(days) if isinstance(days, str) else days
        flags = json.loads(flags) if isinstance(flags, str) else flags
        out[event_id] = (status, days, pinned and str(pinned), flags)
    return out


def _patient(run, db: str) -> tuple[str, dict]:
    today = dt.date.today()
    allocated = today - ALLOCATED_DAYS_AGO * DAY
    run("--db", db, "init", check=True)
    run(
        "--db", db, "screen", "NATARS", "--site", "PKUIH", "--date",
        (allocated - 2 * DAY).isoformat(), *FIELDS, check=True,
    )  # fmt: skip
    (number,) = query(db, "SELECT screening_number FROM patients")[0]
    run(
        "--db", db, "allocate", number, "--consent-date", (allocated - DAY).isoformat(),
        "--date", allocated.isoformat(), "--arm", "NEOADJUVANT", "--basis", "mdt_decision",
        "--reason", "MDT", check=True,
    )  # fmt: skip
    (study_id,) = query(db, "SELECT study_id FROM patients")[0]
    return study_id, _events(db)


@pytest.mark.parametrize("policy", ["release", "keep"])
def test_a_late_cycle_three_never_leaves_the_pinned_surgery_confirmed_inside_the_washout(
    run, db_arg, tmp_path, policy
):
    db = db_arg
    study_id, events = _patient(run, db)
    from sarcoma_sched.calendar.workdays import SiteCalendar
    from sarcoma_sched.protocol import find_protocol

    calendar = SiteCalendar.for_protocol_site(find_protocol("NATARS").protocol, "PKUIH")
    today = dt.date.today()
    anlotinib_end = dt.date.fromisoformat(events["anlotinib.3"][1][-1])
    # The earliest working day from today that keeps the 14-day washout as planned: the pin.
    pin = max(today, anlotinib_end + 14 * DAY)
    while not calendar.is_working_day(pin):
        pin += DAY
    moved = run(
        "--db", db, "reschedule", study_id, "surgery", "--to", pin.isoformat(),
        "--reason-code", "capacity", "--pin-policy", policy, check=True,
    )  # fmt: skip
    assert f"rescheduled to {pin}" in moved.stdout
    cycle3 = dt.date.fromisoformat(events["ai.3"][1][0])
    late = cycle3 + 7 * DAY
    while not calendar.is_working_day(late):
        late += DAY
    assert late < today, "the fixture needs cycle 3 in the past"
    recorded = run(
        "--db", db, "record", study_id, "ai.3", "--status", "done", "--date", late.isoformat(),
        check=True,
    )  # fmt: skip
    _status, days, pinned, flags = _events(db)["surgery"]
    codes = [f["code"] for f in flags]
    out = tmp_path / "patient.ics"
    run("--db", db, "export", "ical", study_id, "--out", str(out), check=True)
    ics = out.read_text()
    surgery_block = next(b for b in ics.split("BEGIN:VEVENT") if "event surgery" in b)
    if policy == "release":
        assert pinned is None and codes == ["pin_released"]
        assert dt.date.fromisoformat(days[0]) >= anlotinib_end + 7 * DAY + 14 * DAY
        # Printed old -> new, and why.
        assert any(
            line.split()[:1] == ["surgery"] and str(pin) in line and days[0] in line
            for line in recorded.stdout.splitlines()
        ), recorded.stdout
        assert "pin is released" in recorded.stderr
        assert "STATUS:CONFIRMED" in surgery_block
    else:
        assert pinned == str(pin) and days == [pin.isoformat()]
        assert codes == ["pin_breaks_constraint"]
        assert "its pin policy is keep" in recorded.stderr
        assert "STATUS:TENTATIVE" in surgery_block
        assert "Not confirmed: pin_breaks_constraint" in surgery_block.replace("\r\n ", "")
    # The audit trail holds the change and still verifies.
    assert "intact" in run("--db", db, "audit", "verify", check=True).stdout
