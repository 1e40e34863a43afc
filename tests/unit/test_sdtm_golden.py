"""NATARS's SDTM visits (TV) byte for byte against the checked-in ``tests/sdtm/natars_tv.csv``.

A change to the expansion of arms into occurrences, to the visit numbering or to the CSV writer
shows up here as a diff a reviewer can read. When the change is intended, regenerate the file
and commit it with the change:

    SARCOMA_SCHED_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_sdtm_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from sarcoma_sched.exports.sdtm import trial_design, write_csv
from sarcoma_sched.protocol import find_protocol

GOLDEN = Path(__file__).parents[1] / "sdtm" / "natars_tv.csv"
PROTOCOLS = Path(__file__).parents[2] / "protocols"


def test_natars_tv_csv_is_byte_for_byte_the_checked_in_golden_file(tmp_path):
    protocol = find_protocol("NATARS", PROTOCOLS).protocol
    written = {p.name: p for p in write_csv(trial_design(protocol), tmp_path)}
    produced = written["tv.csv"].read_bytes()
    if os.environ.get("SARCOMA_SCHED_REGEN_GOLDEN") == "1":
        GOLDEN.write_bytes(produced)
    assert produced == GOLDEN.read_bytes(), (
        f"{GOLDEN} differs; if the change is intended, regenerate it with "
        "SARCOMA_SCHED_REGEN_GOLDEN=1"
    )
