"""SDTMIG 3.4 metadata of every variable the engine writes: label, type and core.

The XPT writer takes names, labels and types from here, the Dataset-JSON writer its columns,
define.xml its ItemDefs, and the tests hold every dataset to it (required variables filled,
expected ones present, labels at most 40 characters, names at most 8). Labels are the SDTMIG's.
Lengths are not the SDTMIG's to give: each character variable is as long as its longest value
(at least 1), as the FDA's technical conformance guide asks of a transport file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DATASET_CLASS", "DATASET_LABELS", "KEYS", "VARIABLES", "Variable", "variable"]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: Literal["Char", "Num"] = "Char"
    core: Literal["Req", "Exp", "Perm"] = "Perm"
    # An ISO 8601 date (the --DTC variables): Dataset-JSON's targetDataType "date" text.
    date: bool = False


def _v(name: str, label: str, t: str = "Char", core: str = "Perm") -> Variable:
    return Variable(name, label, t, core, name.endswith("DTC"))  # type: ignore[arg-type]


STUDYID = _v("STUDYID", "Study Identifier", core="Req")
USUBJID = _v("USUBJID", "Unique Subject Identifier", core="Req")


def _domain(core: str = "Req") -> Variable:
    return _v("DOMAIN", "Domain Abbreviation", core=core)


VARIABLES: dict[str, list[Variable]] = {
    "TA": [
        STUDYID, _domain(),
        _v("ARMCD", "Planned Arm Code", core="Req"),
        _v("ARM", "Description of Planned Arm", core="Req"),
        _v("TAETORD", "Planned Order of Element within Arm", "Num", "Req"),
        _v("ETCD", "Element Code", core="Req"),
        _v("ELEMENT", "Description of Element", core="Perm"),
        _v("TABRANCH", "Branch", core="Exp"),
        _v("TATRANS", "Transition Rule", core="Exp"),
        _v("EPOCH", "Epoch", core="Req"),
    ],
    "TE": [
        STUDYID, _domain(),
        _v("ETCD", "Element Code", core="Req"),
        _v("ELEMENT", "Description of Element", core="Req"),
        _v("TESTRL", "Rule for Start of Element", core="Req"),
        _v("TEENRL", "Rule for End of Element", core="Perm"),
        _v("TEDUR", "Planned Duration of Element", core="Perm"),
    ],
    "TV": [
        STUDYID, _domain(),
        _v("VISITNUM", "Visit Number", "Num", "Req"),
        _v("VISIT", "Visit Name", core="Perm"),
        _v("VISITDY", "Planned Study Day of Visit", "Num", "Perm"),
        _v("ARMCD", "Planned Arm Code", core="Exp"),
        _v("ARM", "Description of Planned Arm", core="Perm"),
        _v("TVSTRL", "Visit Start Rule", core="Req"),
        _v("TVENRL", "Visit End Rule", core="Perm"),
    ],
    "TI": [
        STUDYID, _domain(),
        _v("IETESTCD", "Incl/Excl Criterion Short Name", core="Req"),
        _v("IETEST", "Inclusion/Exclusion Criterion", core="Req"),
        _v("IECAT", "Inclusion/Exclusion Category", core="Req"),
        _v("IESCAT", "Inclusion/Exclusion Subcategory", core="Perm"),
        _v("TIRL", "Criterion Rule", core="Perm"),
        _v("TIVERS", "Protocol Criteria Versions", core="Perm"),
    ],
    "TS": [
        STUDYID, _domain(),
        _v("TSSEQ", "Sequence Number", "Num", "Req"),
        _v("TSGRPID", "Group ID", core="Perm"),
        _v("TSPARMCD", "Trial Summary Parameter Short Name", core="Req"),
        _v("TSPARM", "Trial Summary Parameter", core="Req"),
        _v("TSVAL", "Parameter Value", core="Exp"),
        _v("TSVALNF", "Parameter Null Flavor", core="Perm"),
        _v("TSVALCD", "Parameter Value Code", core="Exp"),
        _v("TSVCDREF", "Name of the Reference Terminology", core="Exp"),
        _v("TSVCDVER", "Version of the Reference Terminology", core="Exp"),
    ],
    "DM": [
        STUDYID, _domain(), USUBJID,
        _v("SUBJID", "Subject Identifier for the Study", core="Req"),
        _v("RFSTDTC", "Subject Reference Start Date/Time", core="Exp"),
        _v("RFENDTC", "Subject Reference End Date/Time", core="Exp"),
        _v("RFXSTDTC", "Date/Time of First Study Treatment", core="Exp"),
        _v("RFXENDTC", "Date/Time of Last Study Treatment", core="Exp"),
        _v("RFICDTC", "Date/Time of Informed Consent", core="Exp"),
        _v("RFPENDTC", "Date/Time of End of Participation", core="Exp"),
        _v("DTHDTC", "Date/Time of Death", core="Exp"),
        _v("DTHFL", "Subject Death Flag", core="Exp"),
        _v("SITEID", "Study Site Identifier", core="Req"),
        _v("AGE", "Age", "Num", "Exp"),
        _v("AGEU", "Age Units", core="Exp"),
        _v("SEX", "Sex", core="Req"),
        _v("RACE", "Race", core="Exp"),
        _v("ARMCD", "Planned Arm Code", core="Exp"),
        _v("ARM", "Description of Planned Arm", core="Exp"),
        _v("ACTARMCD", "Actual Arm Code", core="Exp"),
        _v("ACTARM", "Description of Actual Arm", core="Exp"),
        _v("ARMNRS", "Reason Arm and/or Actual Arm is Null", core="Exp"),
        _v("ACTARMUD", "Description of Unplanned Actual Arm", core="Exp"),
        _v("COUNTRY", "Country", core="Req"),
    ],
    "SE": [
        STUDYID, _domain(), USUBJID,
        _v("SESEQ", "Sequence Number", "Num", "Req"),
        _v("ETCD", "Element Code", core="Req"),
        _v("ELEMENT", "Description of Element", core="Perm"),
        _v("TAETORD", "Planned Order of Element within Arm", "Num", "Perm"),
        _v("EPOCH", "Epoch", core="Perm"),
        _v("SESTDTC", "Start Date/Time of Element", core="Req"),
        _v("SEENDTC", "End Date/Time of Element", core="Exp"),
        _v("SESTDY", "Study Day of Start of Element", "Num", "Perm"),
        _v("SEENDY", "Study Day of End of Element", "Num", "Perm"),
        _v("SEUPDES", "Description of Unplanned Element", core="Perm"),
    ],
    "SV": [
        STUDYID, _domain(), USUBJID,
        _v("VISITNUM", "Visit Number", "Num", "Req"),
        _v("VISIT", "Visit Name", core="Perm"),
        _v("SVPRESP", "Pre-specified", core="Perm"),
        _v("SVOCCUR", "Occurrence", core="Perm"),
        _v("SVREASOC", "Reason for Occur Value", core="Perm"),
        _v("VISITDY", "Planned Study Day of Visit", "Num", "Perm"),
        _v("SVSTDTC", "Start Date/Time of Observation", core="Exp"),
        _v("SVENDTC", "End Date/Time of Observation", core="Exp"),
        _v("SVSTDY", "Study Day of Start of Observation", "Num", "Perm"),
        _v("SVENDY", "Study Day of End of Observation", "Num", "Perm"),
        _v("SVUPDES", "Description of Unplanned Visit", core="Perm"),
    ],
    "DS": [
        STUDYID, _domain(), USUBJID,
        _v("DSSEQ", "Sequence Number", "Num", "Req"),
        _v("DSTERM", "Reported Term for the Disposition Event", core="Req"),
        _v("DSDECOD", "Standardized Disposition Term", core="Req"),
        _v("DSCAT", "Category for Disposition Event", core="Exp"),
        _v("EPOCH", "Epoch", core="Perm"),
        _v("DSDTC", "Date/Time of Collection", core="Perm"),
        _v("DSSTDTC", "Start Date/Time of Disposition Event", core="Exp"),
        _v("DSSTDY", "Study Day of Start of Disposition Event", "Num", "Perm"),
    ],
    "DV": [
        STUDYID, _domain(), USUBJID,
        _v("DVSEQ", "Sequence Number", "Num", "Req"),
        _v("DVTERM", "Protocol Deviation Term", core="Req"),
        _v("DVDECOD", "Protocol Deviation Coded Term", core="Perm"),
        _v("DVCAT", "Category for Protocol Deviation", core="Perm"),
        _v("VISITNUM", "Visit Number", "Num", "Perm"),
        _v("VISIT", "Visit Name", core="Perm"),
        _v("EPOCH", "Epoch", core="Perm"),
        _v("DVSTDTC", "Start Date/Time of Deviation", core="Perm"),
        _v("DVSTDY", "Study Day of Start of Deviation", "Num", "Perm"),
    ],
}  # fmt: skip

# Supplemental qualifiers: the same structure for every parent domain (SDTMIG 8.4).
_SUPP = [
    STUDYID,
    _v("RDOMAIN", "Related Domain Abbreviation", core="Req"),
    USUBJID,
    _v("IDVAR", "Identifying Variable", core="Exp"),
    _v("IDVARVAL", "Identifying Variable Value", core="Exp"),
    _v("QNAM", "Qualifier Variable Name", core="Req"),
    _v("QLABEL", "Qualifier Variable Label", core="Req"),
    _v("QVAL", "Data Value", core="Req"),
    _v("QORIG", "Origin", core="Req"),
    _v("QEVAL", "Evaluator", core="Exp"),
]
VARIABLES["SUPPSV"] = _SUPP
VARIABLES["SUPPDV"] = _SUPP
VARIABLES["SUPPDS"] = _SUPP

DATASET_LABELS = {
    "TA": "Trial Arms",
    "TE": "Trial Elements",
    "TV": "Trial Visits",
    "TI": "Trial Inclusion/Exclusion Criteria",
    "TS": "Trial Summary",
    "DM": "Demographics",
    "SE": "Subject Elements",
    "SV": "Subject Visits",
    "DS": "Disposition",
    "DV": "Protocol Deviations",
    "SUPPSV": "Supplemental Qualifiers for SV",
    "SUPPDV": "Supplemental Qualifiers for DV",
    "SUPPDS": "Supplemental Qualifiers for DS",
}
DATASET_CLASS = {
    **dict.fromkeys(("TA", "TE", "TV", "TI", "TS"), "TRIAL DESIGN"),
    "DM": "SPECIAL PURPOSE",
    "SE": "SPECIAL PURPOSE",
    "SV": "SPECIAL PURPOSE",
    "DS": "EVENTS",
    "DV": "EVENTS",
    **dict.fromkeys(("SUPPSV", "SUPPDV", "SUPPDS"), "RELATIONSHIP"),
}
# The natural keys (define.xml KeySequence, Dataset-JSON keySequence).
KEYS = {
    "TA": ["STUDYID", "ARMCD", "TAETORD"],
    "TE": ["STUDYID", "ETCD"],
    "TV": ["STUDYID", "VISITNUM", "ARMCD"],
    "TI": ["STUDYID", "IETESTCD"],
    "TS": ["STUDYID", "TSPARMCD", "TSSEQ"],
    "DM": ["STUDYID", "USUBJID"],
    "SE": ["STUDYID", "USUBJID", "SESEQ"],
    "SV": ["STUDYID", "USUBJID", "VISITNUM"],
    "DS": ["STUDYID", "USUBJID", "DSSEQ"],
    "DV": ["STUDYID", "USUBJID", "DVSEQ"],
    **{
        s: ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]
        for s in ("SUPPSV", "SUPPDV", "SUPPDS")
    },
}


def variable(dataset: str, name: str) -> Variable:
    return next(v for v in VARIABLES[dataset] if v.name == name)
