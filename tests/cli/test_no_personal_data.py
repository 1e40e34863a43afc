"""No personal data in what leaves the database.

A coordinator types a patient's name, mobile number and national ID into every free-text field
the engine has (the MDT reason of an assigned arm, a withdrawal, an exclusion, a late cycle, a
move outside the window, a correction, a site closure). Then everything that can leave is
exported: patient and site calendars, SDTM, the CONSORT picture and table, a timeline, the
workload, the HTML report, and every listing in table, CSV and JSON. None of the three appears
in any of it. Asked for by name (`deviations --include-notes`), the notes are there.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

NAME, PHONE, NATIONAL_ID = "Zhang Weiming", "13812345678", "110101199003071234"
PERSONAL = f"patient {NAME}, mobile {PHONE}, ID {NATIONAL_ID}"


def _fields(values: dict[str, object]) -> list[str]:
    return [a for k, v in values.items() for a in ("--field", f"{k}={v}")]


@pytest.fixture(scope="module")
def planted(command, tmp_path_factory):
    from tests.cli.conftest import SCRUBBED

    cwd = tmp_path_factory.mktemp("pii")

    def invoke(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["XDG_DATA_HOME"] = str(cwd / "xdg")
        env["XDG_CONFIG_HOME"] = str(cwd / "config")
        return subprocess.run(
            [command, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
        )

    db = str(cwd / "trial.db")

    def ok(*args: str) -> str:
        done = invoke(command, cwd, "--db", db, *args)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    ok("init")
    today = dt.date.today()
    start = (today - dt.timedelta(days=60)).isoformat()
    for _ in range(3):
        ok("screen", "NATARS", "--site", "PKUIH", "--date", start, *_fields(ELIGIBLE_NATARS))
    ok("screen", "TNT-STS", "--site", "FJMUUH", "--date", start, *_fields(ELIGIBLE_TNT))
    for n, arm in ((1, "NEOADJUVANT"), (2, "NEOADJUVANT"), (3, "SURGERY_ONLY")):
        ok(
            "allocate", f"PKUIH-NATARS-S000{n}", "--consent-date", start, "--date", start,
            "--arm", arm, "--basis", "mdt_decision", "--reason", PERSONAL,
        )  # fmt: skip
    ok("allocate", "FJMUUH-TNT-STS-S0001", "--consent-date", start, "--date", start)
    first = query(
        db,
        "SELECT e.first_day FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE p.study_id = 'PKUIH-NATARS-0001' AND e.event_id = 'ai.1'",
    )[0][0]
    late = dt.date.fromisoformat(str(first)) + dt.timedelta(days=9)
    ok("record", "PKUIH-NATARS-0001", "ai.1", "--status", "done", "--date", late.isoformat(),
       "--reason", PERSONAL)  # fmt: skip
    ok("record", "PKUIH-NATARS-0001", "ai.1", "--status", "done", "--date", late.isoformat(),
       "--correct", "--reason", PERSONAL)  # fmt: skip
    ok("withdraw", "PKUIH-NATARS-0002", "--reason", PERSONAL)
    ok("exclude", "PKUIH-NATARS-0003", "--criterion", "EXC-02", "--reason", PERSONAL)
    ok("site", "close", "PKUIH", "--from", "+30d", "--to", "+32d", "--reason", PERSONAL)
    ok("site", "close", "FJMUUH", "--from", "+40d", "--reason", PERSONAL)
    tnt = query(
        db,
        "SELECT e.event_id, e.latest FROM scheduled_events e JOIN patients p "
        "ON p.id = e.patient_id WHERE p.study_id = 'FJMUUH-TNT-STS-0001' AND e.status = "
        "'planned' AND e.kind = 'surgery'",
    )
    event, latest = tnt[0]
    day = dt.date.fromisoformat(str(latest))
    for _ in range(10):  # the first working day after the window: a move needing a reason
        day += dt.timedelta(days=1)
        moved = invoke(
            command, cwd, "--db", db, "reschedule", "FJMUUH-TNT-STS-0001", event,
            "--to", day.isoformat(), "--reason", PERSONAL,
        )  # fmt: skip
        if moved.returncode == 0:
            break
    else:
        pytest.fail(moved.stderr)
    return cwd, db, ok, invoke


def _leaks(text: str) -> list[str]:
    return [p for p in (NAME, PHONE, NATIONAL_ID) if p in text]


def test_the_planted_notes_are_in_the_database(planted):
    _cwd, db, _ok, _invoke = planted
    notes = [n for (n,) in query(db, "SELECT note FROM scheduled_events WHERE note IS NOT NULL")]
    notes += [n for (n,) in query(db, "SELECT note FROM participation_ends")]
    notes += [n for (n,) in query(db, "SELECT note FROM site_closures")]
    assert sum(PHONE in n for n in notes) >= 5


def test_no_export_listing_or_picture_carries_a_name_phone_or_national_id(planted):
    cwd, _db, ok, _invoke = planted
    outputs: dict[str, str] = {}
    for fmt in ("table", "csv", "json"):
        for listing in (
            ["visits", "--from", "-90d", "--to", "+400d"],
            ["overdue"],
            ["deviations"],
            ["schedule", "PKUIH-NATARS-0001"],
            ["schedule", "FJMUUH-TNT-STS-0001"],
            ["allocation", "list", "NATARS"],
            ["report", "enrollment"],
            ["report", "consort", "NATARS"],
            ["site", "list"],
        ):
            outputs[f"{' '.join(listing)} {fmt}"] = ok(*listing, "--format", fmt)
    files = cwd / "out"
    files.mkdir()
    ok("export", "ical", "PKUIH-NATARS-0001", "--out", str(files / "p1.ics"))
    ok("export", "ical", "PKUIH-NATARS-0002", "--out", str(files / "p2.ics"))
    ok("export", "ical", "--site", "PKUIH", "--from", "-90d", "--to", "+400d",
       "--out", str(files / "pkuih.ics"))  # fmt: skip
    ok("export", "ical", "--site", "FJMUUH", "--from", "-90d", "--to", "+400d",
       "--out", str(files / "fjmuuh.ics"))  # fmt: skip
    ok("export", "sdtm", "NATARS", "--out", str(files / "sdtm"))
    ok("report", "consort", "NATARS", "--out", str(files / "consort.svg"))
    ok("report", "timeline", "PKUIH-NATARS-0001", "--out", str(files / "t1.svg"))
    ok("report", "timeline", "PKUIH-NATARS-0002", "--out", str(files / "t2.svg"))
    ok("report", "workload", "--site", "PKUIH", "--from", "-60d", "--to", "+60d",
       "--out", str(files / "workload.svg"))  # fmt: skip
    ok("report", "html", "--out", str(files / "html"))
    written = [p for p in files.rglob("*") if p.is_file()]
    assert len(written) >= 10
    for path in written:
        outputs[str(path.relative_to(cwd))] = path.read_bytes().decode("utf-8", "replace")
    leaking = {where: _leaks(text) for where, text in outputs.items() if _leaks(text)}
    assert leaking == {}


def test_errors_do_not_echo_a_note(planted):
    cwd, db, _ok, invoke = planted
    refused = invoke(command_path(), cwd, "--db", db, "record", "PKUIH-NATARS-0002", "ai.2",
                     "--status", "done", "--date", "today")  # fmt: skip
    assert refused.returncode == 1
    assert _leaks(refused.stderr) == []


def test_notes_are_shown_when_asked_for_by_name(planted):
    _cwd, _db, ok, _invoke = planted
    shown = ok("deviations", "--include-notes", "--format", "json")
    assert PHONE in shown


def command_path() -> str:
    import shutil
    import sys

    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found
    return found
