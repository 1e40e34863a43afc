"""CDISC SDTM trial design datasets (TA, TE, TV, TI, TS) from a protocol definition.

Pure: a validated protocol in, rows out (``trial_design``); ``write_csv`` only puts them in files.
Variable names and their order follow the SDTMIG trial design model; values use CDISC
controlled terminology where a codelist applies (EPOCH, IECAT, TSPARMCD/TSPARM, TPHASE, STYPE,
TBLIND, INTMODEL, NY, SEXPOP, null flavours), ISO 8601 for durations.

One module per dataset, each saying how the protocol maps onto it: ``te`` (elements, and the
sequence of them per arm that ``ta`` lists), ``ta``, ``tv`` (visits: the arm's occurrences as
the planner places them, ``protocol.occurrences``), ``ti`` (criteria), ``ts`` (summary);
``common`` holds the variables, codes, text limits and the CSV files.
"""

from __future__ import annotations

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
from sarcoma_sched.exports.sdtm.ti import ietestcd
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import study_day

__all__ = [
    "COLUMNS",
    "DATASETS",
    "REQUIRED",
    "TREATMENT_KINDS",
    "ietestcd",
    "study_day",
    "trial_design",
    "write_csv",
]


def trial_design(protocol: Protocol) -> dict[str, list[Row]]:
    """The five trial design datasets of ``protocol``, each a list of rows keyed by variable."""
    arms = arm_codes(protocol.arms)
    elements = te.elements(protocol)
    return {
        "TA": ta.rows(protocol, arms, elements),
        "TE": te.rows(protocol, elements),
        "TV": tv.rows(protocol, arms),
        "TI": ti.rows(protocol),
        "TS": ts.rows(protocol),
    }
