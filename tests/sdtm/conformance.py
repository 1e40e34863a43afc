"""An SDTMIG 3.4 conformance check of exported datasets, for the tests.

The CDISC CORE engine (``cdisc-rules-engine``) does not run here. The pip package ships no
rules cache: the rules and codelists come from the CDISC Library (an API key) or as the Python
pickles of the engine's repository (``resources/cache``), which run code when loaded and are
tied to the engine version that wrote them; and the last release for Python 3.11 (0.9.2) did not
install (a pinned dependency builds from source with ``pkg_resources``). What this checks
instead, each a check CORE also makes:

- variables: names at most 8 characters, upper case, starting with a letter; labels at most
  40 characters; every Req variable filled in every row; the dataset's variables in the
  SDTMIG order;
- text values at most 200 characters, printable ASCII (SAS transport v5);
- ISO 8601 dates in every --DTC variable; study days consistent with DM.RFSTDTC, never 0;
- --SEQ unique per subject; every subject of SE, SV, DS, DV in DM; DOMAIN equals the dataset;
- controlled terminology: SEX (C66731), AGEU (C66781), EPOCH (C99079), NY (C66742) in
  SVPRESP/SVOCCUR, DSCAT (C74558), DSDECOD in NCOMPLT (C66727) or Protocol Milestone
  (C114118), ARMNRS (C142179), COUNTRY ISO 3166-1 alpha-3, TSPARMCD known, IECAT (C66797);
- cross-dataset: ARMCD/ARM of DM in TA, ACTARMCD null with ARMNRS filled and the reverse,
  ETCD of SE in TE, VISITNUM/VISIT/VISITDY of SV exactly as TV has them, EPOCH of SE as TA
  has it for that element; TS: one TSVAL or one TSVALNF, TSVCDVER with every CDISC CT code.

What CORE would add: the rules that need the CDISC Library's full codelists (every term of
every codelist, with each term's NCI code, rather than the subsets listed here), define.xml
cross-checks against the files (its XSD validity is checked in the tests), FDA business and
validator rules (FDAB…), and every rule for domains this engine does not write.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sarcoma_sched.exports.sdtm.variables import VARIABLES

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")

CT: dict[str, set[str]] = {
    "SEX": {"F", "M", "U", "UNDIFFERENTIATED"},
    "AGEU": {"YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS"},
    "EPOCH": {"SCREENING", "TREATMENT", "FOLLOW-UP", "RUN-IN", "BASELINE"},
    "NY": {"Y", "N"},
    "DSCAT": {"DISPOSITION EVENT", "PROTOCOL MILESTONE", "OTHER EVENT"},
    # NCOMPLT (C66727), the terms a participation's end can take, and Protocol Milestone.
    "DSDECOD": {
        "ADVERSE EVENT", "COMPLETED", "DEATH", "LOST TO FOLLOW-UP", "OTHER",
        "PHYSICIAN DECISION", "PROGRESSIVE DISEASE", "PROTOCOL DEVIATION",
        "WITHDRAWAL BY SUBJECT", "STUDY TERMINATED BY SPONSOR", "SITE TERMINATED BY SPONSOR",
        "INFORMED CONSENT OBTAINED", "RANDOMIZED", "ELIGIBILITY CRITERIA MET",
    },
    "ARMNRS": {"SCREEN FAILURE", "NOT ASSIGNED", "ASSIGNED, NOT TREATED", "UNPLANNED TREATMENT"},
    "IECAT": {"INCLUSION", "EXCLUSION"},
}  # fmt: skip
CT_VARIABLES = {
    "SEX": "SEX",
    "AGEU": "AGEU",
    "EPOCH": "EPOCH",
    "SVPRESP": "NY",
    "SVOCCUR": "NY",
    "DSCAT": "DSCAT",
    "DSDECOD": "DSDECOD",
    "ARMNRS": "ARMNRS",
    "IECAT": "IECAT",
}
# ISO 3166-1 alpha-3 of the countries the bundled sites are in; another code is an error.
COUNTRIES = {"CHN", "USA", "DEU", "FRA", "GBR", "JPN", "ITA", "ESP", "NLD", "CAN", "AUS"}
TS_REQUIRED = {
    "ADDON", "AGEMAX", "AGEMIN", "LENGTH", "PLANSUB", "RANDOM", "SEXPOP", "STOPRULE", "TBLIND",
    "TCNTRL", "TDIGRP", "INDIC", "TINDTP", "TITLE", "TPHASE", "TTYPE", "CURTRT", "OBJPRIM",
    "SPONSOR", "REGID", "SSTDTC", "SENDTC", "ACTSUB", "HLTSUBJI", "SDTIGVER", "SDTMVER",
    "THERAREA", "PCLAS", "INTTYPE", "INTMODEL", "NARMS", "STYPE", "TRT", "EXTTIND", "ADAPT",
}  # fmt: skip


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    if _empty(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _study_day(day: str, reference: str) -> int:
    n = (dt.date.fromisoformat(day) - dt.date.fromisoformat(reference)).days
    return n + 1 if n >= 0 else n


def check(datasets: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Every finding, one line each (dataset, row, variable, what is wrong); [] when clean."""
    errors: list[str] = []

    def err(name: str, i: int | None, message: str) -> None:
        errors.append(f"{name}{'' if i is None else f'[{i}]'}: {message}")

    rows = {
        name: [{k: _text(v) for k, v in r.items()} for r in data] for name, data in datasets.items()
    }
    for name, data in rows.items():
        meta = VARIABLES[name]
        names = [v.name for v in meta]
        for v in meta:
            if not NAME.match(v.name):
                err(name, None, f"variable name {v.name!r} is not a SAS v5 name")
            if len(v.label) > 40:
                err(name, None, f"label of {v.name} longer than 40 characters")
        for i, row in enumerate(data):
            if list(row) != names:
                err(name, i, f"variables {list(row)} are not {names}")
                continue
            if "DOMAIN" in row and row["DOMAIN"] != name:
                err(name, i, f"DOMAIN {row['DOMAIN']!r}")
            if "RDOMAIN" in row and f"SUPP{row['RDOMAIN']}" != name:
                err(name, i, f"RDOMAIN {row['RDOMAIN']!r}")
            for v in meta:
                value = row[v.name]
                if v.core == "Req" and value == "":
                    err(name, i, f"required {v.name} is null")
                if len(value.encode()) > 200:
                    err(name, i, f"{v.name} longer than 200 bytes")
                if value and not all(" " <= c <= "~" for c in value):
                    err(name, i, f"{v.name} is not printable ASCII: {value!r}")
                if v.date and value and not ISO_DATE.match(value):
                    err(name, i, f"{v.name} {value!r} is not an ISO 8601 date")
                if v.type == "Num" and value and not re.fullmatch(r"-?\d+(\.\d+)?", value):
                    err(name, i, f"{v.name} {value!r} is not a number")
                codelist = CT_VARIABLES.get(v.name)
                if codelist and value and value not in CT[codelist]:
                    err(name, i, f"{v.name} {value!r} not in codelist {codelist}")
            if name == "DM" and row["COUNTRY"] not in COUNTRIES:
                err(name, i, f"COUNTRY {row['COUNTRY']!r} is not ISO 3166-1 alpha-3")

    dm = {r["USUBJID"]: r for r in rows.get("DM", [])}
    if len(dm) != len(rows.get("DM", [])):
        err("DM", None, "USUBJID not unique")
    for name in ("SE", "SV", "DS", "DV", "SUPPSV", "SUPPDS", "SUPPDV"):
        for i, row in enumerate(rows.get(name, [])):
            if row["USUBJID"] not in dm:
                err(name, i, f"USUBJID {row['USUBJID']!r} not in DM")
        seq = f"{name[:2]}SEQ"
        if not name.startswith("SUPP") and name != "SV":
            counts = Counter((r["USUBJID"], r[seq]) for r in rows.get(name, []))
            for key, n in counts.items():
                if n > 1:
                    err(name, None, f"{seq} {key} appears {n} times")
    # Study days: from RFSTDTC, day 1 on it, no day 0.
    for name, pairs in {
        "SE": [("SESTDTC", "SESTDY"), ("SEENDTC", "SEENDY")],
        "SV": [("SVSTDTC", "SVSTDY"), ("SVENDTC", "SVENDY")],
        "DS": [("DSSTDTC", "DSSTDY")],
        "DV": [("DVSTDTC", "DVSTDY")],
    }.items():
        for i, row in enumerate(rows.get(name, [])):
            reference = dm.get(row["USUBJID"], {}).get("RFSTDTC", "")
            for date, day in pairs:
                dated = bool(row[date] and reference and ISO_DATE.match(row[date]))
                if dated and row[day] != str(_study_day(row[date], reference)):
                    err(name, i, f"{day} {row[day]!r} is not the study day of {row[date]}")
                if row[day] == "0":
                    err(name, i, f"{day} is 0")
    # Arms.
    ta = rows.get("TA", [])
    arms = {(r["ARMCD"], r["ARM"]) for r in ta}
    epochs = {(r["ARMCD"], r["ETCD"], r["TAETORD"]): r["EPOCH"] for r in ta}
    for i, row in enumerate(rows.get("DM", [])):
        if (row["ARMCD"], row["ARM"]) not in arms:
            err("DM", i, f"ARMCD/ARM {row['ARMCD']}/{row['ARM']} not in TA")
        if row["ACTARMCD"] and (row["ACTARMCD"], row["ACTARM"]) not in arms:
            err("DM", i, f"ACTARMCD {row['ACTARMCD']} not in TA")
        if bool(row["ACTARMCD"]) == bool(row["ARMNRS"]):
            err("DM", i, "exactly one of ACTARMCD and ARMNRS must be filled")
        for a, b in (("RFSTDTC", "RFENDTC"), ("RFXSTDTC", "RFXENDTC")):
            if row[a] and row[b] and row[a] > row[b]:
                err("DM", i, f"{a} after {b}")
    te = {r["ETCD"] for r in rows.get("TE", [])}
    for i, row in enumerate(rows.get("SE", [])):
        if row["ETCD"] not in te:
            err("SE", i, f"ETCD {row['ETCD']} not in TE")
        armcd = dm.get(row["USUBJID"], {}).get("ARMCD", "")
        expected = epochs.get((armcd, row["ETCD"], row["TAETORD"]))
        if expected != row["EPOCH"]:
            err("SE", i, f"EPOCH {row['EPOCH']!r}, TA has {expected!r}")
        if row["SEENDTC"] and row["SESTDTC"] > row["SEENDTC"]:
            err("SE", i, "SESTDTC after SEENDTC")
    # TV has a row per arm where the arms differ, one without ARMCD where they agree.
    tv = {(r["VISITNUM"], r["ARMCD"]): (r["VISIT"], r["VISITDY"]) for r in rows.get("TV", [])}
    seen: Counter[tuple[str, str]] = Counter()
    for i, row in enumerate(rows.get("SV", [])):
        seen[(row["USUBJID"], row["VISITNUM"])] += 1
        if row["SVPRESP"] == "Y":
            armcd = dm.get(row["USUBJID"], {}).get("ARMCD", "")
            planned = tv.get((row["VISITNUM"], armcd)) or tv.get((row["VISITNUM"], ""))
            if planned != (row["VISIT"], row["VISITDY"]):
                err("SV", i, f"visit {row['VISITNUM']} {row['VISIT']!r} is not TV's for {armcd}")
        if row["SVOCCUR"] == "Y" and not row["SVSTDTC"]:
            err("SV", i, "occurred without SVSTDTC")
        if row["SVOCCUR"] != "Y" and row["SVSTDTC"]:
            err("SV", i, "SVSTDTC for a visit that did not occur")
        if row["SVOCCUR"] == "N" and not row["SVREASOC"]:
            err("SV", i, "did not occur without SVREASOC")
    for key, n in seen.items():
        if n > 1:
            err("SV", None, f"visit {key} appears {n} times")
    ends = Counter(r["USUBJID"] for r in rows.get("DS", []) if r["DSCAT"] == "DISPOSITION EVENT")
    for subject, n in ends.items():
        if n > 1:
            err("DS", None, f"{subject} has {n} disposition events")
    # TS.
    ts = rows.get("TS", [])
    present = {r["TSPARMCD"] for r in ts}
    for code in sorted(TS_REQUIRED - present):
        err("TS", None, f"required parameter {code} missing")
    for i, row in enumerate(ts):
        if bool(row["TSVAL"]) == bool(row["TSVALNF"]):
            err("TS", i, f"{row['TSPARMCD']}: exactly one of TSVAL and TSVALNF")
        if row["TSVALNF"] and row["TSVALNF"] not in {"NI", "NA", "UNK", "NASK", "PINF", "NINF"}:
            err("TS", i, f"TSVALNF {row['TSVALNF']!r}")
        if row["TSVCDREF"] == "CDISC CT" and not (row["TSVALCD"] and row["TSVCDVER"]):
            err("TS", i, f"{row['TSPARMCD']}: a CDISC CT value needs TSVALCD and TSVCDVER")
    return errors
