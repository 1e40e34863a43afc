"""One patient's calendar, byte for byte, against a checked-in file: ``tests/ics/``.

A NATARS patient allocated to NEOADJUVANT by the installed command on fixed dates (screened
2025-03-03, consented 2025-03-04, allocated 2025-03-05), cycle 1 given two days late and the
restaging scan missed, then exported with ``export ical``. Everything in the file follows from
those dates and the bundled protocol, except what records when the commands ran: DTSTAMP,
LAST-MODIFIED and CREATED (the row's last change, see ``exports/ical.py``) are masked to
``19700101T000000Z``, and the version in PRODID to ``VERSION``. Line ends stay CRLF.

A change to the planner, the working-day calendar, the CN holiday table or the exporter that
moves a single byte shows up here as a diff to review. When the change is intended, regenerate
the file and commit it with the change::

    SARCOMA_SCHED_REGEN_GOLDEN=1 .venv/bin/pytest tests/cli/test_ical_golden.py
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import SCRUBBED, invoke
from tests.cohort import ELIGIBLE_NATARS

GOLDEN = Path(__file__).parents[1] / "ics" / "patient_natars_neoadjuvant.ics"
REGEN = os.environ.get("SARCOMA_SCHED_REGEN_GOLDEN") == "1"
STUDY_ID = "PKUIH-NATARS-0001"
# Properties whose value is the time a command ran, never short enough to be folded.
VOLATILE = re.compile(rb"^(DTSTAMP|LAST-MODIFIED|CREATED)((?:;[^:\r\n]*)?):[^\r\n]*", re.M)
PRODID = re.compile(rb"^PRODID:-//sarcoma-sched//[^/\r\n]+//EN", re.M)
# Each database's own installation id, part of every UID (made at `init`).
INSTALLATION = re.compile(rb"@[0-9a-f]{12}\.sarcoma-sched")


def normalise(data: bytes) -> bytes:
    masked = VOLATILE.sub(rb"\1\2:19700101T000000Z", data)
    masked = INSTALLATION.sub(b"@INSTALLATION.sarcoma-sched", masked)
    return PRODID.sub(b"PRODID:-//sarcoma-sched//VERSION//EN", masked)


def exported(command: str, cwd: Path) -> bytes:
    def sched(*args: str) -> None:
        invoke(command, cwd, "--db", str(cwd / "golden.db"), *args)

    sched("init")
    values = [arg for k, v in ELIGIBLE_NATARS.items() for arg in ("--field", f"{k}={v}")]
    sched("screen", "NATARS", "--site", "PKUIH", *values, "--date", "2025-03-03")
    sched(
        "allocate", "PKUIH-NATARS-S0001", "--consent-date", "2025-03-04", "--date", "2025-03-05",
        "--arm", "NEOADJUVANT", "--basis", "mdt_decision", "--reason", "MDT 2025-03-04",
    )  # fmt: skip
    sched("record", STUDY_ID, "ai.1", "--status", "done", "--date", "2025-03-14",
          "--reason", "no inpatient bed")  # fmt: skip
    sched("record", STUDY_ID, "restaging", "--status", "missed", "--reason", "CT scanner down")
    # Bytes from stdout: text mode would turn the CRLF line ends into LF.
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    done = subprocess.run(
        [command, "--db", str(cwd / "golden.db"), "export", "ical", STUDY_ID],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_masking_touches_only_the_run_time_fields():
    data = (
        b"PRODID:-//sarcoma-sched//1.2.3//EN\r\nDTSTAMP:20261203T080909Z\r\n"
        b"LAST-MODIFIED:20261203T080909Z\r\nCREATED;VALUE=DATE-TIME:20261203T080909Z\r\n"
        b"DTSTART;VALUE=DATE:20250314\r\n"
    )
    assert normalise(data) == (
        b"PRODID:-//sarcoma-sched//VERSION//EN\r\nDTSTAMP:19700101T000000Z\r\n"
        b"LAST-MODIFIED:19700101T000000Z\r\nCREATED;VALUE=DATE-TIME:19700101T000000Z\r\n"
        b"DTSTART;VALUE=DATE:20250314\r\n"
    )


def test_a_neoadjuvant_patients_calendar_is_byte_for_byte_the_checked_in_one(command, tmp_path):
    actual = normalise(exported(command, tmp_path))
    if REGEN:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(actual)
    expected = GOLDEN.read_bytes()
    assert b"\r\n" in expected and b"\n" not in expected.replace(b"\r\n", b""), (
        f"{GOLDEN} lost its CRLF line ends (a checkout that converts them?)"
    )
    if actual != expected:
        diff = difflib.unified_diff(
            expected.decode().splitlines(),
            actual.decode().splitlines(),
            "golden",
            "now",
            lineterm="",
        )
        pytest.fail(
            f"the calendar differs from {GOLDEN}; if the change is intended, regenerate it with "
            "SARCOMA_SCHED_REGEN_GOLDEN=1 and review the diff:\n" + "\n".join(list(diff)[:80])
        )
