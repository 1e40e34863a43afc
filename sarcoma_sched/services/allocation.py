"""Enrol + allocate + schedule + audit: one transaction, all or nothing.

Every write transaction holds the database's single write lock from its first statement
(``Database.write``), so the position read here is still the next free one at commit: two
coordinators never share or skip a position, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.allocation import (
    DrawStream,
    PriorAllocation,
    allocate,
    factor_level,
    method_fields,
    trial_key,
)
from sarcoma_sched.calendar import plan_arm
from sarcoma_sched.db.models import Allocation, Enrollment, ParticipationEnd, Patient
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, IneligibleError
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    AssignedAllocation,
    BlockAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.capacity import site_capacity
from sarcoma_sched.services.enrollment import enroll_in, latest_screening
from sarcoma_sched.services.lookups import find_patient, protocol_version, site_calendar
from sarcoma_sched.services.schedules import store_plan

__all__ = ["AllocationOutcome", "allocate_patient", "history", "needs_secret", "trial_stream"]

# Fixed and assigned designs draw nothing; their stream is never read.
_UNUSED_KEY = b"\x00" * 32


@dataclass(frozen=True)
class AllocationOutcome:
    study_id: str
    protocol_id: str
    site_code: str
    arm: str
    position: int
    method: str
    stratum: str | None
    allocation_date: dt.date
    events: list[dict[str, Any]]
    warnings: list[str]


def needs_secret(protocol: Protocol) -> bool:
    return isinstance(protocol.allocation, BlockAllocation | MinimizationAllocation)


def trial_stream(protocol: Protocol, secret: bytes | None) -> DrawStream:
    if not needs_secret(protocol):
        return DrawStream(_UNUSED_KEY)
    if secret is None:  # the CLI loads the secret; a library caller must pass it
        raise Conflict(f"{protocol.id} is randomized: the trial secret is needed to allocate")
    return DrawStream(trial_key(secret, protocol.id))


def history(session: Session, protocol_id: str) -> list[PriorAllocation]:
    """Every allocation of the trial in position order, withdrawn and excluded included (ITT)."""
    rows = session.execute(
        select(Allocation.position, Allocation.arm, Allocation.factors, Allocation.stratum)
        .where(Allocation.protocol_id == protocol_id)
        .order_by(Allocation.position)
    )
    return [PriorAllocation(r.position, r.arm, r.factors, r.stratum) for r in rows]


def allocate_patient(
    db: Database,
    actor: str,
    patient_ref: str,
    *,
    today: dt.date,
    allocation_date: dt.date | None = None,
    consent_date: dt.date | None = None,
    arm: str | None = None,
    basis: str | None = None,
    reason: str | None = None,
    secret: bytes | None = None,
) -> AllocationOutcome:
    """Allocate a screened patient, enrolling first when ``consent_date`` is given.

    The gate: the latest screening passes every criterion (attestations affirmed), consent is
    recorded, the patient has no allocation and has not left the study. Nothing is written
    unless everything succeeds.
    """
    allocation_date = allocation_date or today
    if allocation_date > today:
        raise Conflict(f"allocation date {allocation_date} is in the future")
    with db.write(actor, "allocate") as session:
        patient = find_patient(session, patient_ref)
        ref = patient.study_id or patient.screening_number
        if session.scalar(select(Allocation.id).where(Allocation.patient_id == patient.id)):
            raise Conflict(f"patient {ref} is already allocated; an allocation is never redone")
        if session.scalar(
            select(ParticipationEnd.kind).where(ParticipationEnd.patient_id == patient.id)
        ):
            raise Conflict(f"patient {ref} has left the study and cannot be allocated")
        enrollment = session.scalar(select(Enrollment).where(Enrollment.patient_id == patient.id))
        if enrollment is None:
            if consent_date is None:
                raise IneligibleError(f"patient {ref} is not enrolled: give the consent date")
            enroll_in(session, actor, patient, consent_date, today)
            enrollment = session.scalars(
                select(Enrollment).where(Enrollment.patient_id == patient.id)
            ).one()
        screening = latest_screening(session, patient)
        if not screening.eligible:
            # Re-screened as ineligible after enrolment: the gate holds on every path.
            raise IneligibleError(
                f"patient {patient.study_id} failed the latest screening "
                f"({screening.screened_on}); cannot allocate"
            )
        if allocation_date < enrollment.consent_date:
            raise Conflict(
                f"allocation date {allocation_date} is before consent ({enrollment.consent_date})"
            )
        protocol = protocol_version(session, enrollment.protocol_version_id).protocol
        method = protocol.allocation
        _check_assignment(method, arm, basis, reason)
        past = history(session, protocol.id)
        factors = _factors(method_fields(method), screening.field_values, patient, ref)
        decision = allocate(
            method,
            [a.id for a in protocol.arms],
            past,
            factors,
            len(past) + 1,
            trial_stream(protocol, secret),
            assigned_arm=arm,
        )
        session.add(
            Allocation(
                patient_id=patient.id,
                protocol_id=protocol.id,
                position=len(past) + 1,
                arm=decision.arm,
                method=method.method,
                stratum=decision.stratum,
                factors=dict(decision.factors),
                # Never decision.concealed: it would reveal the rest of a permuted block.
                detail=dict(decision.detail),
                basis=basis,
                reason=reason,
                allocation_date=allocation_date,
                allocated_at=utc_now(),
                allocated_by=actor,
            )
        )
        plan = plan_arm(
            protocol,
            decision.arm,
            allocation_date,
            site_calendar(session, patient.site_code),
            capacity=site_capacity(
                session, patient.site_code, exclude_patient=patient.id, since=allocation_date
            ),
        )
        store_plan(session, patient, plan)
        session.flush()
        return AllocationOutcome(
            study_id=patient.study_id or "",
            protocol_id=protocol.id,
            site_code=patient.site_code,
            arm=decision.arm,
            position=len(past) + 1,
            method=method.method,
            stratum=decision.stratum,
            allocation_date=allocation_date,
            events=[
                {
                    "event": e.id,
                    "label": e.label,
                    "target": e.target,
                    "earliest": e.earliest,
                    "latest": e.latest,
                    "flags": ", ".join(f.code for f in e.flags),
                }
                for e in plan.events
            ],
            # Events the planner could not place cleanly (a constraint, capacity) need a look.
            warnings=[
                *plan.warnings,
                *(f"{e.id}: {f.message}" for e in plan.events for f in e.flags),
            ],
        )


def _check_assignment(
    method: object, arm: str | None, basis: str | None, reason: str | None
) -> None:
    if not isinstance(method, AssignedAllocation):
        if basis or reason:
            raise Conflict("a basis and reason are only recorded for assigned (non-random) arms")
        return
    if arm is None:
        raise Conflict("this trial's arm is assigned: give --arm, --basis and --reason")
    if basis is None:
        raise Conflict(f"an assigned arm needs --basis (one of {', '.join(method.bases)})")
    if basis not in method.bases:
        raise Conflict(f"basis must be one of {', '.join(method.bases)} (got {basis!r})")
    if method.reason_required and not (reason and reason.strip()):
        raise Conflict("an assigned arm needs a reason (e.g. the MDT meeting and its decision)")


def _factors(
    fields: Sequence[str], values: dict[str, Any], patient: Patient, ref: str
) -> dict[str, str]:
    factors = {}
    for name in fields:
        value = patient.site_code if name == SITE_FACTOR else values.get(name)
        if value is None:
            raise IneligibleError(
                f"patient {ref}: the screening has no value for {name}, an allocation factor"
            )
        factors[name] = factor_level(value)
    return factors
