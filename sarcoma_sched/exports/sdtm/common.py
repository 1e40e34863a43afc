"""What every SDTM trial design dataset shares: the variables, codes, text limits, CSV files."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sarcoma_sched.exports.files import write_atomic
from sarcoma_sched.protocol.schedule import Arm
from sarcoma_sched.vocabulary import AT_HOME_KINDS, TREATMENT_KINDS

__all__ = [
    "COLUMNS",
    "DATASETS",
    "NOT_VISITS",
    "REQUIRED",
    "TREATMENT_KINDS",
    "Row",
    "arm_codes",
    "code",
    "text",
    "write_csv",
]

DATASETS = ("TA", "TE", "TV", "TI", "TS")

# SDTMIG variable order per dataset; REQUIRED are the variables the SDTMIG marks "Req" (a value
# in every row). The others are "Exp"/"Perm" and may be empty.
COLUMNS: dict[str, list[str]] = {
    "TA": [
        "STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH",
        "TATRANS", "EPOCH",
    ],
    "TE": ["STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR"],
    "TV": ["STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY", "ARMCD", "ARM", "TVSTRL", "TVENRL"],
    "TI": ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT", "IESCAT", "TIRL", "TIVERS"],
    "TS": [
        "STUDYID", "DOMAIN", "TSSEQ", "TSGRPID", "TSPARMCD", "TSPARM", "TSVAL", "TSVALNF",
        "TSVALCD", "TSVCDREF", "TSVCDVER",
    ],
}  # fmt: skip
REQUIRED: dict[str, list[str]] = {
    "TA": ["STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "EPOCH"],
    "TE": ["STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL"],
    "TV": ["STUDYID", "DOMAIN", "VISITNUM", "TVSTRL"],
    "TI": ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT"],
    "TS": ["STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM"],
}

# What makes an element: the events that *are* the allocated intervention (TREATMENT_KINDS,
# the CONSORT "received" question's list too). Everything else (baseline, labs, imaging,
# post-operative checks, follow-up, visits) is a visit inside one.
# Oral dosing at home is a period in the patient's calendar, not a visit to the site.
NOT_VISITS = AT_HOME_KINDS

# SDTMIG length limits for the codes.
ARMCD_MAX = 20
TEXT_MAX = 200

# The describe module speaks to people; SDTM text travels through SAS transport files.
ASCII = str.maketrans({"≥": ">=", "≤": "<=", "…": "...", "−": "-", "–": "-", "—": "-", "×": "x"})

Row = dict[str, Any]


def write_csv(datasets: Mapping[str, list[Row]], directory: Path) -> list[Path]:
    """One UTF-8 CSV per dataset (``ta.csv`` …), header = SDTM variable names in order."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DATASETS:
        path = directory / f"{name.lower()}.csv"
        buffer = io.StringIO(newline="")  # the csv module writes its own CRLF line ends
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS[name])
        writer.writeheader()
        for row in datasets[name]:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS[name]})
        written.append(write_atomic(path, buffer.getvalue()))
    return written


def code(value: str, max_len: int, taken: set[str]) -> str:
    """Upper-case letters and digits, at most ``max_len``, unique among ``taken``."""
    base = re.sub(r"[^A-Z0-9]", "", value.upper()) or "X"
    if base[0].isdigit():  # an SDTM code never starts with a digit
        base = "X" + base
    found = base[:max_len]
    n = 1
    while found in taken:
        n += 1
        suffix = str(n)
        found = base[: max_len - len(suffix)] + suffix
    taken.add(found)
    return found


def arm_codes(arms: list[Arm]) -> dict[str, str]:
    """ARMCD per arm id."""
    taken: set[str] = set()
    out = {}
    for arm in arms:
        # Arm ids are already upper case; keep underscores, which ARMCD allows.
        found = arm.id[:ARMCD_MAX]
        n = 1
        while found in taken:
            n += 1
            found = arm.id[: ARMCD_MAX - len(str(n))] + str(n)
        taken.add(found)
        out[arm.id] = found
    return out


def text(value: str, fallback: str = "") -> str:
    """One line of at most 200 characters (SDTM text limit); ``fallback`` if nothing is left."""
    value = " ".join(value.translate(ASCII).split()) or fallback
    return value if len(value) <= TEXT_MAX else value[: TEXT_MAX - 3] + "..."
