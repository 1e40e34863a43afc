"""TS, the trial summary.

Only what the protocol file states or the engine implies; a parameter it cannot know
(indication, control type of a parallel design, an unstated sample size) is present with
TSVALNF ``NI`` rather than invented. Values use CDISC controlled terminology where a codelist
applies (TPHASE, STYPE, TBLIND, INTMODEL, NY, SEXPOP, null flavours), ISO 8601 for durations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sarcoma_sched.exports.sdtm.common import Row, text
from sarcoma_sched.protocol.allocation import (
    FixedAllocation,
    factor_fields,
    is_randomized,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    Criterion,
    IfRule,
    IntegerField,
    NumberField,
    RangeRule,
    Rule,
)
from sarcoma_sched.vocabulary import CriterionStage

__all__ = ["CT_VERSION", "SDTMIG_VERSION", "SDTM_VERSION", "TSPARM", "TrialFacts", "rows"]

CDISC_CT = "CDISC CT"
# The CDISC Controlled Terminology package every coded value here is taken from: TSVCDVER of
# each row whose TSVCDREF is CDISC CT, and define.xml's CodeList StandardOID.
CT_VERSION = "2024-09-27"
ISO_8601 = "ISO 8601"
SDTMIG_VERSION = "3.4"
SDTM_VERSION = "2.0"
# Trial Phase Classification (codelist C66737): submission value and NCI code.
TPHASE = {
    "1": ("PHASE I TRIAL", "C15600"),
    "1/2": ("PHASE I/II TRIAL", "C15693"),
    "2": ("PHASE II TRIAL", "C15601"),
    "2/3": ("PHASE II/III TRIAL", "C15694"),
    "3": ("PHASE III TRIAL", "C15602"),
    "4": ("PHASE IV TRIAL", "C15603"),
    "N/A": ("NOT APPLICABLE", "C48660"),
}
NY = {True: ("Y", "C49488"), False: ("N", "C49487")}
AGE_UNITS = {"years": "Y", "year": "Y", "months": "M", "month": "M", "weeks": "W", "days": "D"}


TSPARM = {
    "TITLE": "Trial Title",
    "ACRONYM": "Trial Acronym",
    "REGID": "Registry Identifier",
    "SPONSOR": "Clinical Study Sponsor",
    "STYPE": "Study Type",
    "TPHASE": "Trial Phase Classification",
    "INTMODEL": "Intervention Model",
    "TBLIND": "Trial Blinding Schema",
    "TCNTRL": "Control Type",
    "RANDOM": "Trial is Randomized",
    "STRATFCT": "Stratification Factor",
    "NARMS": "Planned Number of Arms",
    "PLANSUB": "Planned Number of Subjects",
    "SEXPOP": "Sex of Participants",
    "AGEMIN": "Planned Minimum Age of Subjects",
    "AGEMAX": "Planned Maximum Age of Subjects",
    "ADAPT": "Adaptive Design",
    "INDIC": "Trial Disease/Condition Indication",
    "TINDTP": "Trial Intent Type",
    "TTYPE": "Trial Type",
    "HLTSUBJI": "Healthy Subject Indicator",
    "ADDON": "Added on to Existing Treatments",
    "INTTYPE": "Intervention Type",
    "CURTRT": "Current Therapy or Treatment",
    "TRT": "Investigational Therapy or Treatment",
    "OBJPRIM": "Trial Primary Objective",
    "LENGTH": "Trial Length",
    "STOPRULE": "Study Stop Rules",
    "TDIGRP": "Diagnosis Group",
    "THERAREA": "Therapeutic Area",
    "PCLAS": "Pharmacologic Class",
    "EXTTIND": "Extension Trial Indicator",
    "SSTDTC": "Study Start Date",
    "SENDTC": "Study End Date",
    "ACTSUB": "Actual Number of Subjects",
    "SDTIGVER": "SDTM IG Version",
    "SDTMVER": "SDTM Version",
}


@dataclass(frozen=True)
class TrialFacts:
    """What the schedule database knows of the trial as run (TS rows a protocol cannot give)."""

    study_start: dt.date | None  # the first subject's informed consent (FDA TCG: SSTDTC)
    subjects: int  # allocated subjects in the export (ACTSUB)


def rows(protocol: Protocol, facts: TrialFacts | None = None) -> list[Row]:
    """TS of ``protocol``; ``facts`` (from the database) fill SSTDTC and ACTSUB, else they are
    null flavoured: a design-only export knows no subject."""
    s = protocol.study
    a = protocol.allocation
    randomized = is_randomized(a)
    params: list[tuple[str, str, str, str, str]] = []  # code, value, null flavour, CT code, ref

    def add(code: str, value: Any = "", nf: str = "", ct: str = "", ref: str = "") -> None:
        params.append((code, "" if value is None else str(value), nf, ct, ref))

    add("TITLE", text(s.title, s.id))
    if text(s.short_title):
        add("ACRONYM", text(s.short_title))
    add("REGID", s.registry_id, ct=s.registry_id, ref="ClinicalTrials.gov")
    if text(s.sponsor):
        add("SPONSOR", text(s.sponsor))
    # Every trial this engine runs allocates an intervention to each patient.
    add("STYPE", "INTERVENTIONAL", ct="C98388", ref=CDISC_CT)
    phase, phase_code = TPHASE[s.phase]
    add("TPHASE", phase, ct=phase_code, ref=CDISC_CT)
    if s.design == "single_arm":
        add("INTMODEL", "SINGLE GROUP", ct="C82640", ref=CDISC_CT)
    else:
        add("INTMODEL", "PARALLEL", ct="C82639", ref=CDISC_CT)
    # The engine shows the arm to the coordinator and writes the treatment into the patient's
    # calendar: it has no blinding, so a trial it runs is open label (both registrations agree).
    add("TBLIND", "OPEN LABEL", ct="C49659", ref=CDISC_CT)
    if s.design == "single_arm" or isinstance(a, FixedAllocation):
        add("TCNTRL", "NONE", ct="C41132", ref=CDISC_CT)
    else:
        add("TCNTRL", nf="NI")  # the protocol file does not say what the comparator is
    value, code = NY[randomized]
    add("RANDOM", value, ct=code, ref=CDISC_CT)
    for factor in _stratification_factors(protocol):
        add("STRATFCT", factor)
    add("NARMS", len(protocol.arms))
    if s.target_enrollment:
        add("PLANSUB", s.target_enrollment)
    else:
        add("PLANSUB", nf="NI")  # NATARS: the registry shows 0, i.e. not stated
    add(*_sex_population(protocol.criteria))
    low, high = _age_limits(protocol)
    add("AGEMIN", low, nf="" if low else "NI", ref=ISO_8601 if low else "")
    add("AGEMAX", high, nf="" if high else "NI", ref=ISO_8601 if high else "")
    # Arms, ratios and rules change only through a new protocol version, never mid-trial.
    value, code = NY[False]
    add("ADAPT", value, ct=code, ref=CDISC_CT)
    add("INDIC", nf="NI")  # the protocol file has no coded indication
    # Every protocol this engine runs treats patients who have a sarcoma (C49656, C49488 N).
    add("TINDTP", "TREATMENT", ct="C49656", ref=CDISC_CT)
    value, code = NY[False]
    add("HLTSUBJI", value, ct=code, ref=CDISC_CT)
    # Not stated by a protocol file: present as required (SDTMIG 3.4 TS assumptions, FDA TCG),
    # null flavoured rather than guessed.
    for unknown in (
        "TTYPE", "ADDON", "INTTYPE", "CURTRT", "TRT", "OBJPRIM", "LENGTH", "STOPRULE",
        "TDIGRP", "THERAREA", "PCLAS", "EXTTIND",
    ):  # fmt: skip
        add(unknown, nf="NI")
    if facts is not None and facts.study_start is not None:
        add("SSTDTC", facts.study_start.isoformat(), ref=ISO_8601)
    else:
        add("SSTDTC", nf="NI")  # no subject consented yet, or a design-only export
    # The trial is still running while the engine schedules it: no end date yet.
    add("SENDTC", nf="NI")
    if facts is not None:
        add("ACTSUB", facts.subjects)
    else:
        add("ACTSUB", nf="NI")
    add("SDTIGVER", SDTMIG_VERSION)
    add("SDTMVER", SDTM_VERSION)

    out = []
    seq: dict[str, int] = {}
    for code, value, nf, ct, ref in params:
        seq[code] = seq.get(code, 0) + 1
        out.append(
            {
                "STUDYID": protocol.id,
                "DOMAIN": "TS",
                "TSSEQ": seq[code],
                "TSGRPID": "",
                "TSPARMCD": code,
                "TSPARM": TSPARM[code],
                "TSVAL": value,
                "TSVALNF": nf,
                "TSVALCD": ct,
                "TSVCDREF": ref,
                "TSVCDVER": CT_VERSION if ref == CDISC_CT else "",
            }
        )
    return out


def _stratification_factors(protocol: Protocol) -> list[str]:
    return factor_fields(protocol.allocation)


def _leaf_rules(rule: Rule) -> Iterator[Rule]:
    """Rules that must hold unconditionally: the rule itself, or each part of an ``all``."""
    if isinstance(rule, AllRule):
        for r in rule.rules:
            yield from _leaf_rules(r)
    elif not isinstance(rule, IfRule | AnyRule):
        yield rule


def _screening_rules(criteria: Iterable[Criterion]) -> Iterator[Rule]:
    for c in criteria:
        if c.stage == CriterionStage.SCREENING:
            yield from _leaf_rules(c.rule)


def _sex_population(criteria: list[Criterion]) -> tuple[str, str, str, str, str]:
    def mentions_sex(rule: Rule) -> bool:
        if isinstance(rule, AllRule | AnyRule):
            return any(mentions_sex(r) for r in rule.rules)
        if isinstance(rule, IfRule):
            return mentions_sex(rule.when) or mentions_sex(rule.then)
        return "sex" in rule.field or "gender" in rule.field

    if any(mentions_sex(c.rule) for c in criteria):
        # A rule on sex exists; which sexes it admits is not for a text match to decide.
        return ("SEXPOP", "", "NI", "", "")
    return ("SEXPOP", "BOTH", "", "C49636", CDISC_CT)


def _age_limits(protocol: Protocol) -> tuple[str, str]:
    """ISO 8601 durations from range rules on an age field (``age_years``, unit years)."""
    fields = {f.id: f for f in protocol.fields}
    lows: list[tuple[float, str]] = []
    highs: list[tuple[float, str]] = []
    for rule in _screening_rules(protocol.criteria):
        if not isinstance(rule, RangeRule) or "age" not in rule.field.split("_"):
            continue
        field = fields.get(rule.field)
        unit = getattr(field, "unit", "") if isinstance(field, IntegerField | NumberField) else ""
        designator = AGE_UNITS.get(unit.lower()) or _unit_from_id(rule.field)
        if designator is None:
            continue
        if rule.min is not None:
            lows.append((rule.min, designator))
        if rule.max is not None:
            highs.append((rule.max, designator))

    def iso(value: tuple[float, str] | None) -> str:
        if value is None:
            return ""
        n, unit = value
        number = f"{n:g}" if n != int(n) else str(int(n))
        return f"P{number}{unit}" if n >= 0 else ""

    low = max(lows, default=None, key=lambda v: v[0])
    high = min(highs, default=None, key=lambda v: v[0])
    return iso(low), iso(high)


def _unit_from_id(field_id: str) -> str | None:
    for suffix, designator in (("years", "Y"), ("months", "M"), ("weeks", "W"), ("days", "D")):
        if field_id.endswith(suffix):
            return designator
    return None
