"""A trial's subjects as the SDTM subject datasets need them: who was allocated to what, when
they consented, every scheduled event with its planned and actual days, how participation ended.

Read through the caller's session, so PostgreSQL's row-level security decides whose rows come
back: a site coordinator's export holds the site's patients only. Never read: names (the
engine stores none) and birth dates (``Patient.birth_date``); a coordinator's free-text notes
come back only when ``notes`` is asked for.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
    Screening,
    Site,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.lookups import current_protocol, protocol_version
from sarcoma_sched.vocabulary import EndKind, EventStatus, ReasonCode, Sex

__all__ = ["Subject", "SubjectEnd", "SubjectEvent", "TrialSubjects", "trial_subjects"]


@dataclass(frozen=True)
class SubjectEvent:
    """One scheduled event as stored: the planner's dates and what was recorded."""

    id: str  # the occurrence id ("ai.2"), TV's visit
    key: str
    label: str
    kind: str
    cycle: int | None
    status: EventStatus
    target: dt.date
    earliest: dt.date
    latest: dt.date
    days: tuple[dt.date, ...]  # the planned days, or the actual days once done
    actual: dt.date | None
    pinned: dt.date | None
    reason: ReasonCode | None
    deviation: str | None  # the planner's messages, "; " between them
    note: str | None  # only when notes were asked for


@dataclass(frozen=True)
class SubjectEnd:
    kind: EndKind
    date: dt.date
    reason: ReasonCode | None
    criterion: str | None
    note: str | None  # only when notes were asked for


@dataclass(frozen=True)
class Subject:
    study_id: str
    site_code: str
    country: str  # the site's holiday country, ISO 3166-1 alpha-2 as stored
    sex: Sex
    age: int | None  # at consent, as screened
    consent: dt.date
    screened: dt.date
    arm: str
    method: str
    allocated: dt.date
    protocol: Protocol  # the version the subject was enrolled under
    events: tuple[SubjectEvent, ...]
    end: SubjectEnd | None


@dataclass(frozen=True)
class TrialSubjects:
    protocol: Protocol  # the newest stored version: the trial design datasets
    subjects: tuple[Subject, ...]


def trial_subjects(session: Session, protocol_id: str, *, notes: bool = False) -> TrialSubjects:
    """Every allocated patient of ``protocol_id`` the session may read, by study id."""
    current = current_protocol(session, protocol_id)
    pid = current.protocol.id
    people = session.execute(
        select(
            Patient.id,
            Patient.study_id,
            Patient.site_code,
            Patient.sex,
            Patient.age_at_consent,
            Site.holiday_country,
            Enrollment.consent_date,
            Enrollment.protocol_version_id,
            Allocation.arm,
            Allocation.method,
            Allocation.allocation_date,
        )
        .join(Site, Site.code == Patient.site_code)
        .join(Enrollment, Enrollment.patient_id == Patient.id)
        .join(Allocation, Allocation.patient_id == Patient.id)
        .where(Patient.protocol_id == pid)
        .order_by(Patient.study_id)
    ).all()
    ids = [p.id for p in people]
    events: dict[int, list[SubjectEvent]] = defaultdict(list)
    ends: dict[int, SubjectEnd] = {}
    screened: dict[int, dt.date] = {}
    if ids:
        for s in session.execute(
            select(Screening.patient_id, Screening.screened_on)
            .join(Enrollment, Enrollment.screening_id == Screening.id)
            .where(Enrollment.patient_id.in_(ids))
        ):
            screened[s.patient_id] = s.screened_on
        e = ScheduledEvent
        for r in session.execute(
            select(
                e.patient_id,
                e.event_id,
                e.event_key,
                e.label,
                e.kind,
                e.cycle,
                e.status,
                e.target,
                e.earliest,
                e.latest,
                e.days,
                e.actual_date,
                e.pinned,
                e.reason,
                e.deviation,
                *([e.note] if notes else []),
            )
            .where(e.patient_id.in_(ids))
            .order_by(e.patient_id, e.first_day, e.id)
        ):
            events[r.patient_id].append(
                SubjectEvent(
                    id=r.event_id,
                    key=r.event_key,
                    label=r.label,
                    kind=r.kind,
                    cycle=r.cycle,
                    status=EventStatus(r.status),
                    target=r.target,
                    earliest=r.earliest,
                    latest=r.latest,
                    days=tuple(dt.date.fromisoformat(d) for d in r.days),
                    actual=r.actual_date,
                    pinned=r.pinned,
                    reason=ReasonCode.of(r.reason),
                    deviation=r.deviation,
                    note=r.note if notes else None,
                )
            )
        pe = ParticipationEnd
        for q in session.execute(
            select(
                pe.patient_id,
                pe.kind,
                pe.effective_date,
                pe.reason,
                pe.criterion_id,
                *([pe.note] if notes else []),
            ).where(pe.patient_id.in_(ids))
        ):
            ends[q.patient_id] = SubjectEnd(
                EndKind(q.kind),
                q.effective_date,
                ReasonCode.of(q.reason),
                q.criterion_id,
                q.note if notes else None,
            )
    versions: dict[int, Protocol] = {}
    subjects = []
    for p in people:
        if p.protocol_version_id not in versions:
            versions[p.protocol_version_id] = protocol_version(
                session, p.protocol_version_id
            ).protocol
        subjects.append(
            Subject(
                study_id=p.study_id,
                site_code=p.site_code,
                country=p.holiday_country,
                sex=Sex(p.sex),
                age=p.age_at_consent,
                consent=p.consent_date,
                screened=screened.get(p.id, p.consent_date),
                arm=p.arm,
                method=p.method,
                allocated=p.allocation_date,
                protocol=versions[p.protocol_version_id],
                events=tuple(events[p.id]),
                end=ends.get(p.id),
            )
        )
    return TrialSubjects(current.protocol, tuple(subjects))
