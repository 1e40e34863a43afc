"""CDISC SDTM datasets: trial design (TA, TE, TV, TI, TS) from a protocol definition, and the
subject datasets (DM, SE, SV, DS, DV and their SUPP--) from what the database holds.

Pure: a validated protocol in, rows out (``trial_design``); ``submission`` adds the subject
datasets from ``services.queries.trial_subjects``' reading. ``write_csv`` and
``writers.write_datasets`` (CSV, XPT, Dataset-JSON) only put them in files, ``define`` writes
define.xml 2.1.
Variable names and their order follow the SDTMIG trial design model; values use CDISC
controlled terminology where a codelist applies (EPOCH, IECAT, TSPARMCD/TSPARM, TPHASE, STYPE,
TBLIND, INTMODEL, NY, SEXPOP, null flavours), ISO 8601 for durations.

One module per dataset, each saying how the protocol maps onto it: ``te`` (elements, and the
sequence of them per arm that ``ta`` lists), ``ta``, ``tv`` (visits: the arm's occurrences as
the planner places them, ``protocol.occurrences``), ``ti`` (criteria), ``ts`` (summary);
``common`` holds the variables, codes, text limits and the CSV files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sarcoma_sched.exports.sdtm import ta, te, ti, ts, tv
from sarcoma_sched.exports.sdtm.common import (
    COLUMNS,
    DATASETS,
    REQUIRED,
    TREATMENT_KINDS,
    Row,
    arm_codes,
    write_csv,
)
from sarcoma_sched.exports.sdtm.subjects import SUBJECT_DATASETS, subject_datasets
from sarcoma_sched.exports.sdtm.ti import ietestcd
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import study_day

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.subjects import TrialSubjects

__all__ = [
    "COLUMNS",
    "DATASETS",
    "REQUIRED",
    "SUBJECT_DATASETS",
    "TREATMENT_KINDS",
    "ietestcd",
    "study_day",
    "submission",
    "trial_design",
    "write_csv",
]


def trial_design(protocol: Protocol, facts: ts.TrialFacts | None = None) -> dict[str, list[Row]]:
    """The five trial design datasets of ``protocol``, each a list of rows keyed by variable."""
    arms = arm_codes(protocol.arms)
    elements = te.elements(protocol)
    return {
        "TA": ta.rows(protocol, arms, elements),
        "TE": te.rows(protocol, elements),
        "TV": tv.rows(protocol, arms),
        "TI": ti.rows(protocol),
        "TS": ts.rows(protocol, facts),
    }


def submission(data: TrialSubjects, *, notes: bool = False) -> dict[str, list[Row]]:
    """Trial design and subject datasets of one trial: TA … TS, DM, SE, SV, DS, DV, and each
    SUPP-- that has rows (an empty supplemental dataset is not submitted)."""
    facts = ts.TrialFacts(min((s.consent for s in data.subjects), default=None), len(data.subjects))
    out = trial_design(data.protocol, facts)
    for name, rows in subject_datasets(data, notes=notes).items():
        if rows or not name.startswith("SUPP"):
            out[name] = rows
    return out
