"""Withdrawal and post-allocation exclusion: recorded, never deleted; the patient stays in the
intention-to-treat analysis and in the allocation history that balances later patients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from sarcoma_sched.db.models import Allocation, Enrollment, ParticipationEnd, ScheduledEvent
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, NotFound
from sarcoma_sched.services.lookups import find_patient, protocol_version
from sarcoma_sched.services.reasons import coded
from sarcoma_sched.services.schedules import cancel_future
from sarcoma_sched.vocabulary import END_KINDS, CriterionStage, EndKind, ReasonCode

__all__ = ["ParticipationOutcome", "end_participation"]


@dataclass(frozen=True)
class ParticipationOutcome:
    study_id: str
    kind: str
    effective_date: dt.date
    cancelled: list[str]


def end_participation(
    db: Database,
    actor: str,
    patient_ref: str,
    kind: str,
    reason: str,
    *,
    effective_date: dt.date,
    today: dt.date,
    criterion_id: str | None = None,
    reason_code: str | None = None,
) -> ParticipationOutcome:
    """``reason_code`` (vocabulary.ReasonCode) is what leaves the database; ``reason`` is the
    coordinator's note beside it, kept inside. A note alone is coded ``other`` for a withdrawal
    and ``ineligible`` for an exclusion."""
    if kind not in END_KINDS:
        raise ValueError(kind)
    default = ReasonCode.OTHER if kind == EndKind.WITHDRAWN else ReasonCode.INELIGIBLE
    code, note = coded(
        reason_code, reason, default=default, required=f"a {kind} patient needs a reason"
    )
    assert code is not None  # required above
    if effective_date > today:
        raise Conflict(f"effective date {effective_date} is in the future")
    with db.write(actor, "withdraw" if kind == EndKind.WITHDRAWN else "exclude") as session:
        patient = find_patient(session, patient_ref)
        ref = patient.study_id or patient.screening_number
        allocation = session.scalar(select(Allocation).where(Allocation.patient_id == patient.id))
        if allocation is None:
            # Before allocation a patient is a screen failure or simply not enrolled: nothing
            # to withdraw from the randomized comparison.
            raise Conflict(f"patient {ref} is not allocated; {kind} applies after allocation")
        if effective_date < allocation.allocation_date:
            raise Conflict(
                f"effective date {effective_date} is before allocation "
                f"({allocation.allocation_date})"
            )
        existing = session.scalar(
            select(ParticipationEnd).where(ParticipationEnd.patient_id == patient.id)
        )
        if existing is not None:
            raise Conflict(f"patient {ref} is already recorded as {existing.kind}")
        if criterion_id is not None:
            # Allocated implies enrolled: both rows are written in the one allocation transaction.
            enrollment = session.scalars(
                select(Enrollment).where(Enrollment.patient_id == patient.id)
            ).one()
            protocol = protocol_version(session, enrollment.protocol_version_id).protocol
            known = {c.id: c for c in protocol.criteria}
            if criterion_id not in known:
                raise NotFound(f"protocol {protocol.id} has no criterion {criterion_id}")
            if known[criterion_id].stage != CriterionStage.POST_ALLOCATION:
                later = [
                    c.id for c in protocol.criteria if c.stage == CriterionStage.POST_ALLOCATION
                ]
                raise Conflict(
                    f"{criterion_id} is checked at screening, not after allocation "
                    f"(post-allocation criteria of {protocol.id}: {', '.join(later) or 'none'})"
                )
        session.add(
            ParticipationEnd(
                patient_id=patient.id,
                kind=kind,
                effective_date=effective_date,
                reason=str(code),
                note=note,
                criterion_id=criterion_id,
                recorded_at=utc_now(),
                recorded_by=actor,
            )
        )
        rows = session.scalars(
            select(ScheduledEvent).where(ScheduledEvent.patient_id == patient.id)
        ).all()
        cancelled = cancel_future(session, rows, code, effective_date, note=f"{kind}")
        session.flush()
        return ParticipationOutcome(ref, kind, effective_date, [row.event_id for row in cancelled])
