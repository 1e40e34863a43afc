"""A second opinion on exported .ics files: Mozilla's ical.js, the parser Thunderbird uses.

``parse(*files)`` runs ``tests/js/parse_ics.mjs`` under node and returns its JSON (per file: the
VEVENTs with uid, summary, dtstart/dtend, sequence, status, alarms; and the VTIMEZONE tzids).
Without node or ``npm ci --prefix tests/js`` the calling test is skipped with the reason;
``.ci/run`` sets ``SARCOMA_SCHED_REQUIRE_ICALJS=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "SARCOMA_SCHED_REQUIRE_ICALJS"
JS = Path(__file__).parent / "js"
SCRIPT = JS / "parse_ics.mjs"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"ical.js required ({REQUIRE_ENV} is set) but {reason}")
    pytest.skip(f"ical.js check skipped: {reason}")


def node() -> str:
    """The node executable, once ical.js is installed beside the script; else skip or fail."""
    found = shutil.which("node")
    if not found:
        _unavailable("node is not on PATH")
    if not (JS / "node_modules" / "ical.js" / "package.json").is_file():
        _unavailable("tests/js/node_modules/ical.js is missing (npm ci --prefix tests/js)")
    return found  # type: ignore[return-value]


def parse(*files: str | Path) -> dict[str, Any]:
    """ical.js's reading of each file, keyed by the path as given (``str(path)``)."""
    executable = node()
    done = subprocess.run(
        [executable, str(SCRIPT), *(str(f) for f in files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"ical.js could not parse: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result
