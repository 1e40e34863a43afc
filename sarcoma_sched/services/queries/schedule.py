"""One patient's schedule as the coordinator reads it: every event with its days, window,
status, actual date, deviation and flags, and the warnings about the whole calendar."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Allocation, Enrollment, ScheduledEvent
from sarcoma_sched.notices import Notice, notices_of
from sarcoma_sched.protocol.occurrences import Occurrence, occurrences
from sarcoma_sched.services.lookups import find_patient, protocol_version, site_calendar, site_zone
from sarcoma_sched.vocabulary import EventStatus, ReasonCode

__all__ = ["PatientSchedule", "StoredEvent", "patient_schedule"]

E = ScheduledEvent


@dataclass(frozen=True)
class StoredEvent:
    """One stored event, with what its protocol says about it (``notices.Placed``)."""

    id: str
    label: str
    kind: str
    cycle: int | None
    status: EventStatus
    pinned: bool  # a coordinator's date (``reschedule``)
    target: dt.date
    earliest: dt.date
    latest: dt.date
    days: tuple[dt.date, ...]
    time: str | None  # local "HH:MM" of a timed event
    show_as: str  # "days" (each a visit) or "period" (one span, e.g. oral dosing)
    working_days_only: bool
    actual: dt.date | None
    reason: ReasonCode | None  # the code only: a coordinator's note stays in the database
    deviation: str | None
    flags: tuple[Notice, ...]


@dataclass(frozen=True)
class PatientSchedule:
    ref: str  # the study id, or the screening number of a patient not yet enrolled
    protocol_id: str
    site_code: str
    time_zone: str
    arm: str | None  # None before allocation: no calendar yet
    allocation_date: dt.date | None
    events: tuple[StoredEvent, ...]
    warnings: tuple[Notice, ...]


def _steps(session: Session, patient_id: int, arm: str) -> dict[str, Occurrence]:
    """The arm's occurrences by id, from the protocol version the patient was enrolled under:
    which rule each event's day follows (the stored row does not say)."""
    version = session.scalar(
        select(Enrollment.protocol_version_id).where(Enrollment.patient_id == patient_id)
    )
    if version is None:  # pragma: no cover - an allocated patient is enrolled
        return {}
    protocol = protocol_version(session, version).protocol
    return {o.id: o for o in occurrences(protocol.arm(arm))}


def _first(pair: tuple[int, StoredEvent]) -> int:
    return pair[0]


def patient_schedule(session: Session, ref: str) -> PatientSchedule:
    patient = find_patient(session, ref)
    # The two columns only: where in the sequence a patient fell is not every role's to read.
    allocated = session.execute(
        select(Allocation.arm, Allocation.allocation_date).where(
            Allocation.patient_id == patient.id
        )
    ).first()
    rows = list(
        session.execute(
            select(E).where(E.patient_id == patient.id).order_by(E.first_day, E.id)
        ).scalars()
    )
    steps = _steps(session, patient.id, allocated.arm) if allocated and rows else {}
    events = []
    for r in rows:
        step = steps.get(r.event_id)
        events.append(
            StoredEvent(
                id=r.event_id,
                label=r.label,
                kind=r.kind,
                cycle=r.cycle,
                status=EventStatus(r.status),
                pinned=r.pinned is not None,
                target=r.target,
                earliest=r.earliest,
                latest=r.latest,
                days=tuple(dt.date.fromisoformat(d) for d in r.days),
                time=r.local_time,
                show_as=step.span.show_as if step else "days",
                working_days_only=step is not None and step.day_rule == "working_day",
                actual=r.actual_date,
                reason=ReasonCode.of(r.reason),
                deviation=r.deviation,
                flags=tuple(Notice(f["code"], f["message"], (r.event_id,)) for f in r.flags or ()),
            )
        )
    # The estimate notice counts events in the order the plan placed them (the order the rows
    # were written in), as the plan that was stored said it.
    written = [e for _, e in sorted(zip([r.id for r in rows], events, strict=True), key=_first)]
    warnings = notices_of(written, site_calendar(session, patient.site_code)) if rows else ()
    return PatientSchedule(
        ref=patient.study_id or patient.screening_number,
        protocol_id=patient.protocol_id,
        site_code=patient.site_code,
        time_zone=site_zone(session, patient.site_code),
        arm=allocated.arm if allocated else None,
        allocation_date=allocated.allocation_date if allocated else None,
        events=tuple(events),
        warnings=warnings,
    )
