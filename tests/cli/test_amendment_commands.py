"""Issue 22's "done when" for amendments, through the installed command on SQLite and
PostgreSQL: NATARS amended (surgery window widened, a 6-week post-operative visit added,
follow-up to 4 years) is loaded, activated at PKUIH only; patients enrolled at PKUIH and BJFH
get their site's version; one patient re-consents, sees old → new, and the calendar exported
again keeps each event's UID with a higher SEQUENCE."""

from __future__ import annotations

import datetime as dt
import json

import icalendar
import pytest

from tests.amendment import AMENDED_VERSION, BASE_VERSION, amended_natars
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

FIELDS = [arg for name, value in ELIGIBLE_NATARS.items() for arg in ("--field", f"{name}={value}")]
# Relative to today: a screening or an approval may not be dated in the future.
SCREENED, APPROVED, ENROLLED, RECONSENT = "-10d", "-5d", "-4d", "-1d"


@pytest.fixture
def db(run, db_arg):
    run("--db", db_arg, "init", check=True)
    return db_arg


def _enrol(run, db: str, site: str, on: str) -> str:
    screened = run("--db", db, "screen", "NATARS", "--site", site, "--date", on, *FIELDS,
                   "--format", "json", check=True)  # fmt: skip
    number = json.loads(screened.stdout)["screening_number"]
    allocated = run(
        "--db", db, "allocate", number, "--consent-date", on, "--date", on,
        "--arm", "SURGERY_ONLY", "--basis", "mdt_decision", "--reason", "MDT",
        "--format", "json", check=True,
    )  # fmt: skip
    return json.loads(allocated.stdout)["study_id"]


def _calendar(run, db: str, patient: str, path) -> dict[str, icalendar.Event]:
    run("--db", db, "export", "ical", patient, "--out", str(path), check=True)
    parsed = icalendar.Calendar.from_ical(path.read_bytes())
    return {str(e["UID"]): e for e in parsed.walk("VEVENT")}


def _enrolled(run, db: str) -> dict[str, int]:
    done = run("--db", db, "protocol", "versions", "NATARS", "--format", "json", check=True)
    return {row["version"]: row["enrolled"] for row in json.loads(done.stdout)}


def test_an_amendment_activated_at_one_site_and_a_patient_moved_to_it(run, db, tmp_path):
    early = _enrol(run, db, "PKUIH", SCREENED)
    amendment = amended_natars(tmp_path)
    loaded = run("--db", db, "protocol", "load", str(amendment), check=True)
    assert f"NATARS v{AMENDED_VERSION} loaded" in loaded.stdout
    # Loaded is not active: a patient screened now at PKUIH is still under 1.2 until approval.
    activated = run(
        "--db", db, "protocol", "activate", "NATARS", AMENDED_VERSION, "--site", "PKUIH",
        "--approved", APPROVED, "--format", "json", check=True,
    )  # fmt: skip
    approved = (dt.date.today() - dt.timedelta(days=5)).isoformat()
    assert json.loads(activated.stdout) == {
        "protocol": "NATARS",
        "version": AMENDED_VERSION,
        "site": "PKUIH",
        "approved_on": approved,
        "previous": BASE_VERSION,
    }

    at_pkuih = _enrol(run, db, "PKUIH", ENROLLED)
    at_bjfh = _enrol(run, db, "BJFH", ENROLLED)
    # Which version each patient got: 1.3 only for the one enrolled at PKUIH after approval.
    assert _enrolled(run, db) == {BASE_VERSION: 2, AMENDED_VERSION: 1}
    pkuih_schedule = run("--db", db, "schedule", at_pkuih, "--format", "json", check=True).stdout
    bjfh_schedule = run("--db", db, "schedule", at_bjfh, "--format", "json", check=True).stdout
    assert '"postop"' in pkuih_schedule and '"postop"' not in bjfh_schedule

    before = _calendar(run, db, early, tmp_path / "before.ics")
    moved = run("--db", db, "transition", early, "--to", AMENDED_VERSION,
                "--reconsent-date", RECONSENT, check=True)  # fmt: skip
    lines = moved.stdout.splitlines()
    assert lines[0].startswith(f"{early}: NATARS {BASE_VERSION} → {AMENDED_VERSION} (re-consent ")
    changed = {line.split()[0]: line for line in lines[1:]}
    assert set(changed) == {"surgery", "postop", "follow_up.m54", "follow_up.m60"}
    assert "(new): (new) → " in changed["postop"]
    assert changed["follow_up.m60"].endswith("cancelled")
    # The widened window, old → new: the latest day moves from allocation + 28 to + 42.
    allocated = dt.date.today() - dt.timedelta(days=10)
    old_latest = allocated + dt.timedelta(days=28)
    assert f"..{old_latest}] planned → " in changed["surgery"]
    assert f"..{allocated + dt.timedelta(days=42)}] planned" in changed["surgery"].split("→")[1]
    assert _enrolled(run, db) == {BASE_VERSION: 1, AMENDED_VERSION: 2}

    after = _calendar(run, db, early, tmp_path / "after.ics")
    by_event = {str(e["UID"]).split(".", 1)[1].split("@")[0]: uid for uid, e in after.items()}
    # Same UIDs for every event that was there; the changed ones have a higher SEQUENCE.
    assert set(before) <= set(after)
    for event in ("surgery", "follow_up.m54", "follow_up.m60"):
        uid = by_event[event]
        assert int(after[uid]["SEQUENCE"]) > int(before[uid]["SEQUENCE"]), event
    for event in ("follow_up.m54", "follow_up.m60"):
        assert str(after[by_event[event]]["STATUS"]) == "CANCELLED"
    unchanged = by_event["follow_up.m48"]
    assert after[unchanged]["SEQUENCE"] == before[unchanged]["SEQUENCE"]
    assert by_event["postop"] not in before and int(after[by_event["postop"]]["SEQUENCE"]) == 0

    # The BJFH patient may not move: 1.3 is not active there.
    state = dump(db)
    refused = run("--db", db, "transition", at_bjfh, "--to", AMENDED_VERSION,
                  "--reconsent-date", RECONSENT)  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: NATARS {AMENDED_VERSION} is not active at site BJFH")
    assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr
    assert dump(db) == state


def test_the_transition_json_names_each_change_with_its_uid_and_sequence(run, db, tmp_path):
    patient = _enrol(run, db, "PKUIH", SCREENED)
    run("--db", db, "protocol", "load", str(amended_natars(tmp_path)), check=True)
    run("--db", db, "protocol", "activate", "NATARS", AMENDED_VERSION, "--site", "PKUIH",
        "--approved", APPROVED, check=True)  # fmt: skip
    done = run("--db", db, "transition", patient, "--to", AMENDED_VERSION,
               "--reconsent-date", RECONSENT, "--format", "json", check=True)  # fmt: skip
    data = json.loads(done.stdout)
    assert (data["from_version"], data["to_version"]) == (BASE_VERSION, AMENDED_VERSION)
    changes = {c["event"]: c for c in data["changes"]}
    assert changes["postop"]["change"] == "new" and changes["postop"]["before"] is None
    assert changes["follow_up.m60"]["change"] == "cancelled"
    assert changes["follow_up.m60"]["sequence"] == 1
    assert changes["surgery"]["uid"].startswith(f"{patient.lower()}.surgery@")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["protocol", "activate", "NATARS", "7.0", "--site", "PKUIH", "--approved", "-1d"],
         "error: protocol NATARS has no version '7.0' (loaded: 1.2"),
        (["protocol", "activate", "NATARS", "1.2", "--site", "PKUIH", "--approved", "+30d"],
         "error: --approved "),
        (["protocol", "activate", "NATARS", "1.2", "--site", "PKUIH", "--approved", "someday"],
         "Error: Invalid value for '--approved'"),
        (["transition", "PKUIH-NATARS-0099", "--to", "1.2", "--reconsent-date", "-1d"],
         "error: no patient with study id or screening number"),
    ],
)  # fmt: skip
def test_bad_amendment_commands_are_refused_in_one_line_and_change_nothing(run, db, args, message):
    state = dump(db)
    done = run("--db", db, *args)
    assert done.returncode in (1, 2)
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert dump(db) == state
