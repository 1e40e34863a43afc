"""The SDTM subject datasets DM, SE, SV, DS and DV (with SUPPSV, SUPPDS, SUPPDV) from what
the schedule database holds about a trial's allocated patients.

Pure: ``services.queries.trial_subjects`` reads the database (through the caller's session,
so row-level security decides whose rows these are); this module only lays the rows out.
No name or birth date exists in what it is handed; free-text notes only when they were read
(``--include-notes``), and then only in the SUPP-- datasets.

Study days count from RFSTDTC, the allocation date, as TV's VISITDY does (day 1, no day 0).
VISITNUM and VISIT come from ``tv.planned_visits``, the computation TV itself uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sarcoma_sched.exports.sdtm.common import NOT_VISITS, TREATMENT_KINDS, Row, arm_codes, text
from sarcoma_sched.exports.sdtm.te import Element, elements, treatment_occurrences
from sarcoma_sched.exports.sdtm.tv import PlannedVisit, planned_visits
from sarcoma_sched.protocol.allocation import is_randomized
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.vocabulary import DeviationKind, EndKind, EventStatus, ReasonCode, Sex

if TYPE_CHECKING:
    from sarcoma_sched.protocol.schedule import Arm
    from sarcoma_sched.services.queries.subjects import Subject, SubjectEvent, TrialSubjects

# The TV visit an occurrence id is (None: not a visit, such as home dosing).
VisitOf = Callable[[str], PlannedVisit | None]

__all__ = [
    "DS_DECOD",
    "DV_TERMS",
    "SUBJECT_DATASETS",
    "classify_deviation",
    "country_alpha3",
    "subject_datasets",
    "usubjid",
    "visit_finder",
]

SUBJECT_DATASETS = ("DM", "SE", "SV", "DS", "DV", "SUPPSV", "SUPPDS", "SUPPDV")

# CDISC CT SEX (C66731). The engine's "other" is not UNDIFFERENTIATED (intersex): unknown.
SEX = {Sex.FEMALE: "F", Sex.MALE: "M", Sex.OTHER: "U", Sex.UNKNOWN: "U"}

# CDISC CT NCOMPLT (C66727), the standardized disposition term of a participation's end, by the
# reason code the coordinator chose. A post-allocation exclusion (a criterion found not met) is
# an enrolment of an ineligible patient: a protocol deviation (ICH E3 10.2).
DS_DECOD: dict[ReasonCode | None, str] = {
    ReasonCode.PATIENT_REQUEST: "WITHDRAWAL BY SUBJECT",
    ReasonCode.TOXICITY: "ADVERSE EVENT",
    ReasonCode.INTERCURRENT_ILLNESS: "ADVERSE EVENT",
    ReasonCode.PROGRESSION: "PROGRESSIVE DISEASE",
    ReasonCode.CLINICIAN_DECISION: "PHYSICIAN DECISION",
    ReasonCode.INELIGIBLE: "PROTOCOL DEVIATION",
}
DS_OTHER = "OTHER"
MILESTONE = "PROTOCOL MILESTONE"
DISPOSITION = "DISPOSITION EVENT"

# DVDECOD and DVCAT per deviation kind. CDISC publishes no codelist for either: these are the
# sponsor's terms, listed in define.xml as sponsor-defined codelists.
DV_TERMS: dict[DeviationKind, str] = {
    DeviationKind.EARLY: "VISIT BEFORE WINDOW",
    DeviationKind.LATE: "VISIT AFTER WINDOW",
    DeviationKind.MISSED: "MISSED VISIT",
    DeviationKind.SKIPPED: "VISIT NOT DONE",
    DeviationKind.RESCHEDULED: "RESCHEDULED OUTSIDE WINDOW",
    DeviationKind.NEEDS_REASON: "DELAY WITHOUT DOCUMENTED REASON",
    DeviationKind.NON_WORKING_DAY: "VISIT ON NON-WORKING DAY",
    DeviationKind.CONSTRAINT: "HARD CONSTRAINT BROKEN",
}
DV_TREATMENT = "STUDY TREATMENT SCHEDULE"
DV_VISIT = "VISIT SCHEDULE"

# What each kind's message from ``calendar.deviations`` says (the stored text has the messages
# only, "; " between them); the first match wins, the order matters ("rescheduled to" before
# "before its window").
_PHRASES = (
    ("hard constraint broken", DeviationKind.CONSTRAINT),
    ("needs a documented reason", DeviationKind.NEEDS_REASON),
    ("not a working day", DeviationKind.NON_WORKING_DAY),
    (" rescheduled to ", DeviationKind.RESCHEDULED),
    (" was missed", DeviationKind.MISSED),
    (" was skipped", DeviationKind.SKIPPED),
    ("before its window opened", DeviationKind.EARLY),
    ("after its window closed", DeviationKind.LATE),
)


def classify_deviation(message: str, event: SubjectEvent) -> DeviationKind:
    """The kind of one stored deviation message; by the event's own state when no phrase
    matches (a message worded differently by a later version of the planner)."""
    for phrase, kind in _PHRASES:
        if phrase in message:
            return kind
    if event.status == EventStatus.MISSED:
        return DeviationKind.MISSED
    if event.status == EventStatus.SKIPPED:
        return DeviationKind.SKIPPED
    if event.status == EventStatus.PLANNED:
        return DeviationKind.RESCHEDULED
    if event.actual is not None and event.actual < event.earliest:
        return DeviationKind.EARLY
    return DeviationKind.LATE


def usubjid(study: str, subject: str) -> str:
    """Unique across every study of a submission: the study id, then the subject's."""
    return f"{study}-{subject}"


def _dy(day: dt.date | None, reference: dt.date) -> int | None:
    """SDTM study day (SDTMIG 4.4.4): RFSTDTC is day 1, the day before it -1."""
    if day is None:
        return None
    n = (day - reference).days
    return n + 1 if n >= 0 else n


def _iso(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


@cache
def country_alpha3(alpha2: str) -> str:
    """ISO 3166-1 alpha-3 (DM COUNTRY) of a site's holiday country, from the ``holidays``
    package's registry of countries (``CHN`` for ``CN``); the stored code when it has none."""
    from holidays import registry

    code = alpha2.upper()
    for entry in registry.COUNTRIES.values():
        if code in entry[1:3]:
            return entry[2]
    return code


def _words(code: ReasonCode | None) -> str:
    return code.value.replace("_", " ") if code else "no reason recorded"


@dataclass(frozen=True)
class _Element:
    element: Element
    order: int  # TAETORD
    epoch: str
    start: dt.date
    end: dt.date | None


class _Subject:
    """One subject's derived facts, shared by the datasets."""

    def __init__(self, s: Subject, design: Protocol, arms: dict[str, str]) -> None:
        self.s = s
        self.usubjid = usubjid(design.id, s.study_id)
        self.armcd = arms.get(s.arm, s.arm)
        arm = next((a for a in design.arms if a.id == s.arm), None)
        self.arm_label = text(arm.label, s.arm) if arm else s.arm
        done = [e for e in s.events if e.status == EventStatus.DONE]
        treated = [d for e in done if e.kind in TREATMENT_KINDS for d in e.days]
        self.first_treatment = min(treated, default=None)
        self.last_treatment = max(treated, default=None)
        self.last_done = max((d for e in done for d in e.days), default=None)
        self.completed = (
            s.end is None
            and bool(done)
            and not any(e.status == EventStatus.PLANNED for e in s.events)
        )
        if s.end is not None:
            self.end_date: dt.date | None = s.end.date
        elif self.completed:
            self.end_date = self.last_done
        else:
            self.end_date = None
        self.elements = self._elements(design)

    def day(self, day: dt.date | None) -> int | None:
        return _dy(day, self.s.allocated)

    def _elements(self, design: Protocol) -> list[_Element]:
        built = elements(design)
        sequence = built.sequences.get(self.s.arm)
        arm = next((a for a in design.arms if a.id == self.s.arm), None)
        if sequence is None or arm is None:
            return []
        by_id = {e.id: e for e in self.s.events}
        found: list[tuple[dt.date, int, Element, str]] = [
            (min(self.s.screened, self.s.consent), 1, sequence[0][0], sequence[0][1])
        ]
        given = treatment_occurrences(arm)
        for order, o in enumerate(given, 2):
            e = by_id.get(o.id)
            if e is not None and e.status == EventStatus.DONE:
                found.append((e.days[0], order, *sequence[order - 1]))
        if len(sequence) > len(given) + 1:  # a follow-up element
            last = given[-1].nominal.start if given else None
            after = [
                e.days[0]
                for o_id, e in by_id.items()
                if e.status == EventStatus.DONE
                and e.kind not in TREATMENT_KINDS
                and e.kind not in NOT_VISITS
                and self._nominal(arm, o_id, last)
                and (len(found) == 1 or e.days[0] >= found[-1][0])
            ]
            if after:
                found.append((min(after), len(sequence), *sequence[-1]))
        found.sort(key=lambda f: (f[0], f[1]))
        out = []
        for i, (start, order, element, epoch) in enumerate(found):
            if i == 0:
                # Screening ends with allocation, as TE's rule for its end says.
                end: dt.date | None = self.s.allocated
            elif i + 1 < len(found):
                end = found[i + 1][0]  # an element ends where the next begins (SDTMIG 5.2)
            else:
                end = self.s.end.date if self.s.end else (self.end_date)
            out.append(_Element(element, order, epoch, start, end))
        return out

    @staticmethod
    def _nominal(arm: Arm, occurrence: str, last: int | None) -> bool:
        from sarcoma_sched.protocol.occurrences import occurrences

        for o in occurrences(arm):
            if o.id == occurrence:
                return last is None or o.nominal.start > last
        return False

    def epoch(self, day: dt.date | None) -> str:
        """The epoch of the element the subject was in on ``day``."""
        if day is None or not self.elements:
            return ""
        current = self.elements[0].epoch
        for el in self.elements:
            if el.start <= day:
                current = el.epoch
        return current


def visit_finder(design: Protocol) -> Callable[[Subject], VisitOf]:
    """Per subject, the TV visit of each of its occurrence ids: by the trial design's TV (the
    newest protocol version), else by the version the subject was enrolled under, so an
    occurrence a later version dropped still finds its visit name."""
    current = planned_visits(design)
    own: dict[int, dict[str, dict[str, PlannedVisit]]] = {}

    def for_subject(s: Subject) -> VisitOf:
        if id(s.protocol) not in own:
            own[id(s.protocol)] = planned_visits(s.protocol)
        theirs = own[id(s.protocol)].get(s.arm, {})
        mine = current.get(s.arm, {})

        def visit_of(event_id: str) -> PlannedVisit | None:
            return mine.get(event_id) or theirs.get(event_id)

        return visit_of

    return for_subject


def subject_datasets(data: TrialSubjects, *, notes: bool = False) -> dict[str, list[Row]]:
    """DM, SE, SV, DS, DV and their SUPP-- datasets for ``data``'s subjects."""
    design = data.protocol
    arms = arm_codes(design.arms)
    visits = visit_finder(design)
    out: dict[str, list[Row]] = {name: [] for name in SUBJECT_DATASETS}
    for s in data.subjects:
        subject = _Subject(s, design, arms)
        visit_of = visits(s)
        out["DM"].append(_dm(design, subject))
        out["SE"].extend(_se(design, subject))
        sv, suppsv = _sv(design, subject, visit_of)
        out["SV"].extend(sv)
        out["SUPPSV"].extend(suppsv)
        ds, suppds = _ds(design, subject, notes)
        out["DS"].extend(ds)
        out["SUPPDS"].extend(suppds)
        dv, suppdv = _dv(design, subject, visit_of, notes)
        out["DV"].extend(dv)
        out["SUPPDV"].extend(suppdv)
    return out


def _dm(design: Protocol, x: _Subject) -> Row:
    s = x.s
    treated = x.first_treatment is not None
    return {
        "STUDYID": design.id,
        "DOMAIN": "DM",
        "USUBJID": x.usubjid,
        "SUBJID": s.study_id,
        # Allocation is study day 1 (TV's VISITDY counts from it).
        "RFSTDTC": _iso(s.allocated),
        "RFENDTC": _iso(x.end_date),
        "RFXSTDTC": _iso(x.first_treatment),
        "RFXENDTC": _iso(x.last_treatment),
        "RFICDTC": _iso(s.consent),
        "RFPENDTC": _iso(x.end_date),
        "DTHDTC": "",
        "DTHFL": "",
        "SITEID": s.site_code,
        "AGE": s.age,
        "AGEU": "YEARS" if s.age is not None else "",
        "SEX": SEX[s.sex],
        "RACE": "",
        "ARMCD": x.armcd,
        "ARM": x.arm_label,
        # The engine records only the allocated arm's events: treated means treated as
        # allocated; no treatment recorded yet means assigned, not treated (SDTMIG 5.2, ARMNRS).
        "ACTARMCD": x.armcd if treated else "",
        "ACTARM": x.arm_label if treated else "",
        "ARMNRS": "" if treated else "ASSIGNED, NOT TREATED",
        "ACTARMUD": "",
        "COUNTRY": country_alpha3(s.country),
    }


def _se(design: Protocol, x: _Subject) -> Iterable[Row]:
    for seq, el in enumerate(x.elements, 1):
        yield {
            "STUDYID": design.id,
            "DOMAIN": "SE",
            "USUBJID": x.usubjid,
            "SESEQ": seq,
            "ETCD": el.element.etcd,
            "ELEMENT": el.element.element,
            "TAETORD": el.order,
            "EPOCH": el.epoch,
            "SESTDTC": _iso(el.start),
            "SEENDTC": _iso(el.end),
            "SESTDY": x.day(el.start),
            "SEENDY": x.day(el.end),
            "SEUPDES": "",
        }


def _supp(
    design: Protocol,
    domain: str,
    x: _Subject,
    idvar: str,
    idval: object,
    quals: list[tuple[str, str, str, str]],
) -> list[Row]:
    return [
        {
            "STUDYID": design.id,
            "RDOMAIN": domain,
            "USUBJID": x.usubjid,
            "IDVAR": idvar,
            "IDVARVAL": str(idval),
            "QNAM": qnam,
            "QLABEL": qlabel,
            "QVAL": qval,
            "QORIG": origin,
            "QEVAL": "",
        }
        for qnam, qlabel, qval, origin in quals
        if qval
    ]


def _sv(design: Protocol, x: _Subject, visit_of: VisitOf) -> tuple[list[Row], list[Row]]:
    rows: list[Row] = []
    supp: list[Row] = []
    seen: set[int] = set()
    for e in x.s.events:
        # Home dosing is not a visit (not in TV); a cancelled event is no longer planned.
        if e.kind in NOT_VISITS or e.status == EventStatus.CANCELLED:
            continue
        v = visit_of(e.id)
        if v is None or v.visitnum in seen:
            continue
        seen.add(v.visitnum)
        done = e.status == EventStatus.DONE
        occur = {EventStatus.DONE: "Y", EventStatus.MISSED: "N", EventStatus.SKIPPED: "N"}
        rows.append(
            {
                "STUDYID": design.id,
                "DOMAIN": "SV",
                "USUBJID": x.usubjid,
                "VISITNUM": v.visitnum,
                "VISIT": v.visit,
                "SVPRESP": "Y",
                # Still planned: not yet known whether it occurs, so null (SDTMIG 3.4 SV).
                "SVOCCUR": occur.get(e.status, ""),
                "SVREASOC": _words(e.reason).upper()
                if e.status in (EventStatus.MISSED, EventStatus.SKIPPED)
                else "",
                "VISITDY": v.visitdy,
                "SVSTDTC": _iso(e.days[0]) if done else "",
                "SVENDTC": _iso(e.days[-1]) if done else "",
                "SVSTDY": x.day(e.days[0]) if done else None,
                "SVENDY": x.day(e.days[-1]) if done else None,
                "SVUPDES": "",
            }
        )
        # The schedule's own dates for the visit: its planned day and window, as planned when
        # it was recorded (SV itself holds only what happened).
        supp += _supp(
            design,
            "SV",
            x,
            "VISITNUM",
            v.visitnum,
            [
                ("SVPLSTDT", "Planned Start Date of Visit", _iso(e.target), "DERIVED"),
                ("SVWINSTD", "Visit Window Start Date", _iso(e.earliest), "DERIVED"),
                ("SVWINEND", "Visit Window End Date", _iso(e.latest), "DERIVED"),
            ],
        )
    return rows, supp


def _ds(design: Protocol, x: _Subject, notes: bool) -> tuple[list[Row], list[Row]]:
    s = x.s
    events: list[tuple[str, str, str, dt.date]] = [
        ("INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", MILESTONE, s.consent)
    ]
    if is_randomized(s.protocol.allocation):
        events.append(("RANDOMIZED", "RANDOMIZED", MILESTONE, s.allocated))
    note = None
    if s.end is not None:
        end = s.end
        if end.kind == EndKind.EXCLUDED:
            which = f"criterion {end.criterion}" if end.criterion else "a criterion"
            term = f"Excluded after allocation: {which} not met"
            decod = DS_DECOD[ReasonCode.INELIGIBLE]
        else:
            term = f"Withdrawn: {_words(end.reason)}"
            decod = DS_DECOD.get(end.reason, DS_OTHER)
        events.append((text(term), decod, DISPOSITION, end.date))
        note = end.note
    elif x.completed and x.last_done is not None:
        events.append(("Completed the protocol schedule", "COMPLETED", DISPOSITION, x.last_done))
    rows: list[Row] = []
    supp: list[Row] = []
    for seq, (term, decod, cat, day) in enumerate(events, 1):
        rows.append(
            {
                "STUDYID": design.id,
                "DOMAIN": "DS",
                "USUBJID": x.usubjid,
                "DSSEQ": seq,
                "DSTERM": term,
                "DSDECOD": decod,
                "DSCAT": cat,
                # Consent and allocation close screening; an end falls in the element the
                # subject was in.
                "EPOCH": "SCREENING" if cat == MILESTONE else x.epoch(day),
                "DSDTC": _iso(day),
                "DSSTDTC": _iso(day),
                "DSSTDY": x.day(day),
            }
        )
        if cat == DISPOSITION and notes and note:
            supp += _supp(
                design,
                "DS",
                x,
                "DSSEQ",
                seq,
                [("DSNOTE", "Coordinator Note", text(note), "COLLECTED")],
            )
    return rows, supp


def _dv(
    design: Protocol, x: _Subject, visit_of: VisitOf, notes: bool
) -> tuple[list[Row], list[Row]]:
    rows: list[Row] = []
    supp: list[Row] = []
    for e in x.s.events:
        if not e.deviation:
            continue
        v = visit_of(e.id)
        if e.status == EventStatus.DONE:
            day = e.days[0]
        elif e.status == EventStatus.PLANNED and e.pinned is not None:
            day = e.pinned
        else:
            day = e.target
        for message in e.deviation.split("; "):
            kind = classify_deviation(message, e)
            seq = len(rows) + 1
            rows.append(
                {
                    "STUDYID": design.id,
                    "DOMAIN": "DV",
                    "USUBJID": x.usubjid,
                    "DVSEQ": seq,
                    "DVTERM": text(message),
                    "DVDECOD": DV_TERMS[kind],
                    "DVCAT": DV_TREATMENT if e.kind in TREATMENT_KINDS else DV_VISIT,
                    "VISITNUM": v.visitnum if v else None,
                    "VISIT": v.visit if v else "",
                    "EPOCH": x.epoch(day),
                    "DVSTDTC": _iso(day),
                    "DVSTDY": x.day(day),
                }
            )
            if notes and e.note:
                supp += _supp(
                    design,
                    "DV",
                    x,
                    "DVSEQ",
                    seq,
                    [("DVNOTE", "Coordinator Note", text(e.note), "COLLECTED")],
                )
    return rows, supp
