"""The CONSORT participant flow of one trial, counted from the database: ``consort_flow``.
The diagram and the table of it are drawn by ``sarcoma_sched.reports.consort``.

Definitions (also printed under the diagram):

- **Assessed**: every patient screened for the trial; the *latest* screening of each counts
  (a re-screened patient is one patient). A voided screening (recorded by mistake) counts
  nowhere; how many were voided is reported beside the flow.
- **Excluded** (before allocation): not meeting the criteria (counted per failed criterion id;
  a patient failing several is counted under each), screening incomplete (no failure, but a
  value missing; counted per criterion left undecided), or eligible but not allocated (consent
  pending or declined).
- **Received the allocated intervention**: at least one of the arm's treatment events
  (radiotherapy, infusion, oral or surgery) recorded done. This is "the first treatment
  given", read generously: a patient who skipped cycle 1 but had cycles 2 and 3 received the
  intervention. Otherwise the reason: not started yet (treatment still planned), withdrawn or
  excluded before any treatment, or the treatment recorded missed / skipped.
- **Lost to follow-up**: not a status the engine records (a missed visit is a deviation, not a
  loss), so the diagram says "not recorded" rather than a zero nobody counted.
- **Discontinued**: withdrawals and post-allocation exclusions, with their reasons.
- **Analysed**: intention to treat, every allocated patient, withdrawn and excluded included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
    Screening,
)
from sarcoma_sched.services.lookups import current_protocol
from sarcoma_sched.vocabulary import NOT_HAPPENED, TREATMENT_KINDS, EndKind, EventStatus, ReasonCode

__all__ = ["ArmFlow", "ConsortFlow", "consort_flow"]

BASIS_LABELS = {
    "mdt_decision": "MDT decision",
    "patient_preference": "patient preference",
    "other": "other",
}
NOT_STARTED = "not started yet (treatment planned)"


@dataclass
class ArmFlow:
    arm: str
    label: str
    allocated: int = 0
    # Assigned designs: how many by each basis (MDT decision, patient preference, other).
    by_basis: Counter[str] = field(default_factory=Counter)
    received: int = 0
    not_received: Counter[str] = field(default_factory=Counter)
    withdrawn: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)

    @property
    def did_not_receive(self) -> int:
        return self.allocated - self.received

    @property
    def discontinued(self) -> int:
        return sum(self.withdrawn.values()) + sum(self.excluded.values())

    @property
    def analysed(self) -> int:
        # Intention to treat: nobody allocated is ever left out.
        return self.allocated


@dataclass
class ConsortFlow:
    protocol_id: str
    registry_id: str
    title: str
    method: str
    assessed: int = 0
    not_eligible: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    incomplete: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    eligible_not_allocated: int = 0
    # Screenings voided as recorded by mistake (``screen void``): not counted in any box.
    voided: int = 0
    arms: list[ArmFlow] = field(default_factory=list)
    criteria_text: dict[str, str] = field(default_factory=dict)

    @property
    def allocated(self) -> int:
        return sum(a.allocated for a in self.arms)

    @property
    def excluded(self) -> int:
        return self.not_eligible + self.incomplete + self.eligible_not_allocated

    @property
    def randomized(self) -> bool:
        return self.method in ("stratified_blocks", "minimization")


def consort_flow(session: Session, protocol_id: str) -> ConsortFlow:
    """Count the flow of ``protocol_id`` from the database (raises NotFound if not loaded)."""
    protocol = current_protocol(session, protocol_id).protocol
    pid = protocol.id
    flow = ConsortFlow(
        protocol_id=pid,
        registry_id=protocol.study.registry_id,
        title=protocol.study.title,
        method=protocol.allocation.method,
        criteria_text={c.id: c.text for c in protocol.criteria},
    )
    arms = {a.id: ArmFlow(a.id, a.label) for a in protocol.arms}

    allocated: dict[int, Allocation] = {
        a.patient_id: a
        for a in session.scalars(select(Allocation).where(Allocation.protocol_id == pid))
    }
    latest = (
        select(Screening.patient_id, func.max(Screening.id).label("id"))
        .where(Screening.voided_at.is_(None))
        .group_by(Screening.patient_id)
        .subquery()
    )
    flow.voided = session.execute(
        select(func.count())
        .select_from(Screening)
        .join(Patient, Patient.id == Screening.patient_id)
        .where(Patient.protocol_id == pid, Screening.voided_at.is_not(None))
    ).scalar_one()
    screened = session.execute(
        select(Patient.id, Screening.eligible, Screening.results)
        .join(latest, latest.c.patient_id == Patient.id)
        .join(Screening, Screening.id == latest.c.id)
        .where(Patient.protocol_id == pid)
    ).all()
    flow.assessed = len({r.id for r in screened} | set(allocated))
    for r in screened:
        if r.id in allocated:
            continue
        results = r.results or {}
        failed = list(results.get("failed") or [])
        if r.eligible:
            flow.eligible_not_allocated += 1
        elif failed:
            flow.not_eligible += 1
            flow.failed.update(failed)
        else:
            flow.incomplete += 1
            flow.missing.update(results.get("missing") or [])

    ends = {
        e.patient_id: e
        for e in session.scalars(
            select(ParticipationEnd)
            .join(Patient, Patient.id == ParticipationEnd.patient_id)
            .where(Patient.protocol_id == pid)
        )
    }
    treatments: dict[int, list[Any]] = {}
    for row in session.execute(
        select(
            ScheduledEvent.patient_id,
            ScheduledEvent.status,
            ScheduledEvent.reason,
            ScheduledEvent.first_day,
        )
        .join(Patient, Patient.id == ScheduledEvent.patient_id)
        .where(Patient.protocol_id == pid, ScheduledEvent.kind.in_(TREATMENT_KINDS))
        .order_by(ScheduledEvent.first_day, ScheduledEvent.id)
    ):
        treatments.setdefault(row.patient_id, []).append(row)

    for patient_id, a in sorted(allocated.items(), key=lambda item: item[1].id):
        arm = arms.setdefault(a.arm, ArmFlow(a.arm, a.arm))
        arm.allocated += 1
        if a.method == "assigned":
            arm.by_basis[BASIS_LABELS.get(a.basis or "", a.basis or "not recorded")] += 1
        events = treatments.get(patient_id, [])
        end = ends.get(patient_id)
        if any(e.status == EventStatus.DONE for e in events):
            arm.received += 1
        else:
            arm.not_received[_why_not(events, end)] += 1
        if end is not None:
            if end.kind == EndKind.WITHDRAWN:
                arm.withdrawn[str(ReasonCode.of(end.reason))] += 1
            else:
                code = str(ReasonCode.of(end.reason))
                reason = f"{end.criterion_id}: {code}" if end.criterion_id else code
                arm.excluded[reason] += 1
    flow.arms = list(arms.values())
    return flow


def _why_not(events: list[Any], end: ParticipationEnd | None) -> str:
    if end is not None:
        return f"{end.kind} before treatment"
    for e in events:
        if e.status in NOT_HAPPENED:
            code = ReasonCode.of(e.reason)
            return f"treatment {e.status}" + (f": {code}" if code else "")
    if any(e.status == EventStatus.PLANNED for e in events):
        return NOT_STARTED
    return "no treatment event scheduled"
