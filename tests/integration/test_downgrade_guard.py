"""A downgrade that would drop recorded data refuses unless forced, and a forced one writes
what it drops to the file the user names.

Reproduction of the loss: pins (0003), capacities (0004), access grants, key commitments and the
installation row (0006) went with `alembic downgrade`, and upgrading again looked as if nothing
had happened.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.util import CommandError

from sarcoma_sched.db.migrate import current_revision, downgrade, head_revision
from sarcoma_sched.errors import Conflict
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.capacity import set_capacity
from sarcoma_sched.services.events import reschedule_event
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_TNT
from tests.dumps import dump

DAY = dt.date(2026, 3, 2)
ROOT = Path(__file__).parents[2]


@pytest.fixture
def recorded(database):
    """A pinned event, a site capacity and the installation row: data the downgrade drops."""
    outcome = screen(database, "nurse", "TNT-STS", "FJMUUH", ELIGIBLE_TNT, screened_on=DAY)
    allocated = allocate_patient(
        database, "nurse", outcome.screening_number, today=DAY, consent_date=DAY
    )
    surgery = next(e for e in allocated.events if e["event"] == "surgery")
    # The next day inside the window the site works on: a coordinator's pin.
    day = surgery["target"]
    while True:
        day += dt.timedelta(days=1)
        assert day <= surgery["latest"]
        try:
            reschedule_event(
                database, "nurse", allocated.study_id, "surgery", day, reason=None, today=DAY
            )
            break
        except Conflict:
            continue
    set_capacity(database, "nurse", "FJMUUH", "theatre", per_weekday={"tue": 2, "thu": 1})
    return database


def test_a_downgrade_that_would_drop_pins_capacities_and_grants_is_refused(recorded):
    before = dump(recorded.url)
    with pytest.raises(CommandError, match=r"would drop .*refused.*-x force=1 -x dump=FILE"):
        downgrade(recorded.engine, "0002")
    assert dump(recorded.url) == before
    assert current_revision(recorded.engine) == head_revision()


def test_a_forced_downgrade_needs_a_file_and_never_overwrites_one(recorded, tmp_path):
    before = dump(recorded.url)
    with pytest.raises(CommandError, match="name the file"):
        downgrade(recorded.engine, "0002", force=True)
    existing = tmp_path / "dropped.jsonl"
    existing.write_text("keep me\n")
    with pytest.raises(CommandError, match="already exists"):
        downgrade(recorded.engine, "0002", force=True, dump=existing)
    assert existing.read_text() == "keep me\n"
    assert dump(recorded.url) == before


def test_a_forced_downgrade_writes_every_row_it_drops_first(recorded, tmp_path):
    target = tmp_path / "dropped.jsonl"
    downgrade(recorded.engine, "0005", force=True, dump=target)
    first = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["what"] for r in first} == {"installation"}
    assert target.stat().st_mode & 0o077 == 0
    second = tmp_path / "dropped-0003.jsonl"
    downgrade(recorded.engine, "0002", force=True, dump=second)
    rows = [json.loads(line) for line in second.read_text().splitlines()]
    by_what: dict[str, list[dict]] = {}
    for r in rows:
        by_what.setdefault(r["what"], []).append(r["row"])
    assert sorted(r["weekday"] for r in by_what["site_resources"]) == [1, 3]
    (pin,) = by_what["scheduled_events.pinned"]
    assert pin["event_id"] == "surgery"
    assert current_revision(recorded.engine) == "0002"


def test_the_alembic_command_refuses_in_one_line(recorded):
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"db={recorded.url}", "downgrade", "0002"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = result.stdout + result.stderr  # alembic prints "FAILED: ..." on stdout
    assert result.returncode != 0
    assert "Traceback" not in said
    assert "would drop" in said and "-x force=1" in said


def test_a_pin_that_must_stand_is_not_dropped_silently_below_0008(recorded, tmp_path):
    """A coordinator's keep policy (0008) is a record too: refused, then dumped when forced."""
    from sqlalchemy import text

    with recorded.read() as session:
        (pinned,) = session.execute(
            text("SELECT pinned FROM scheduled_events WHERE event_id = 'surgery'")
        ).one()
    pinned = pinned if isinstance(pinned, dt.date) else dt.date.fromisoformat(pinned)
    study = next(
        r[0] for r in recorded.engine.connect().execute(text("SELECT study_id FROM patients"))
    )
    for step in range(1, 30):
        try:
            reschedule_event(
                recorded, "nurse", study, "surgery", pinned + dt.timedelta(days=step),
                reason=None, today=DAY, pin_policy="keep",
            )  # fmt: skip
            break
        except Conflict:
            continue
    before = dump(recorded.url)
    with pytest.raises(CommandError, match=r"below 0008 would drop 1 scheduled_events.pin_policy"):
        downgrade(recorded.engine, "0007")
    assert dump(recorded.url) == before
    target = tmp_path / "dropped-0008.jsonl"
    downgrade(recorded.engine, "0007", force=True, dump=target)
    [line] = [json.loads(x) for x in target.read_text().splitlines()]
    assert line["what"] == "scheduled_events.pin_policy" and line["row"]["pin_policy"] == "keep"
    assert current_revision(recorded.engine) == "0007"


def test_a_site_s_holiday_rule_is_not_dropped_silently_below_0009(recorded, tmp_path):
    """A site that allows inpatient stays over holidays (0009) would plan differently without
    the setting: refused, then dumped when forced."""
    from sarcoma_sched.services.sites import set_site

    set_site(recorded, "admin", "FJMUUH", inpatient_over_holidays=True)
    before = dump(recorded.url)
    with pytest.raises(CommandError, match=r"below 0009 would drop 1 sites.inpatient_over_h"):
        downgrade(recorded.engine, "0008")
    assert dump(recorded.url) == before
    target = tmp_path / "dropped-0009.jsonl"
    downgrade(recorded.engine, "0008", force=True, dump=target)
    [line] = [json.loads(x) for x in target.read_text().splitlines()]
    assert line["what"] == "sites.inpatient_over_holidays" and line["row"]["code"] == "FJMUUH"
    assert current_revision(recorded.engine) == "0008"
