"""``transition``: a patient re-consents to a new protocol version and is re-planned under it.

One write: the enrolment names the new version, a ``protocol_transitions`` row keeps the move
with its re-consent date, and the calendar is brought in line. What was recorded (done, missed,
skipped) stays exactly as it is; open events are planned again under the new version from the
recorded history; an event the new version no longer has is cancelled with the reason code
``protocol_amendment`` (its row stays); one it adds appears. A row that continues keeps its
UID, and each change raises its revision, the iCalendar SEQUENCE, so calendar clients update
the copy they hold instead of adding another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    ProtocolTransition,
    ScheduledEvent,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.services.active_versions import find_version, version_at, version_name
from sarcoma_sched.services.events import patient_events, plan_patient
from sarcoma_sched.services.lookups import find_patient, protocol_version, site_today
from sarcoma_sched.services.schedules import apply_plan
from sarcoma_sched.vocabulary import RECORDABLE_STATUSES, EventStatus, ReasonCode

__all__ = ["EventState", "TransitionChange", "TransitionOutcome", "transition_patient"]


@dataclass(frozen=True)
class EventState:
    status: str
    first_day: dt.date
    last_day: dt.date
    earliest: dt.date
    latest: dt.date

    @classmethod
    def of(cls, row: ScheduledEvent) -> EventState:
        return cls(str(row.status), row.first_day, row.last_day, row.earliest, row.latest)

    def __str__(self) -> str:
        days = str(self.first_day)
        if self.last_day != self.first_day:
            days += f"..{self.last_day}"
        return f"{days} [{self.earliest}..{self.latest}] {self.status}"

    def as_json(self) -> dict[str, str]:
        return {
            "status": self.status,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "earliest": self.earliest.isoformat(),
            "latest": self.latest.isoformat(),
        }


@dataclass(frozen=True)
class TransitionChange:
    """One event of the calendar the new version changed; ``before`` None: a new event."""

    event_id: str
    label: str
    uid: str
    before: EventState | None
    after: EventState
    sequence: int  # the row's revision: the iCalendar SEQUENCE now

    @property
    def change(self) -> str:
        if self.before is None:
            return "new"
        if self.after.status == EventStatus.CANCELLED:
            return "cancelled"
        if (self.before.first_day, self.before.last_day) != (
            self.after.first_day,
            self.after.last_day,
        ):
            return "moved"
        return "window"

    def as_json(self) -> dict[str, object]:
        return {
            "event": self.event_id,
            "label": self.label,
            "uid": self.uid,
            "change": self.change,
            "before": None if self.before is None else self.before.as_json(),
            "after": self.after.as_json(),
            "sequence": self.sequence,
        }


@dataclass(frozen=True)
class TransitionOutcome:
    study_id: str
    protocol_id: str
    from_version: str
    to_version: str
    reconsent_date: dt.date
    allocated: bool
    changes: tuple[TransitionChange, ...]


def transition_patient(
    db: Database,
    actor: str,
    patient_ref: str,
    to_version: str,
    reconsent_date: dt.date,
    *,
    now: dt.datetime | None = None,
) -> TransitionOutcome:
    """Move an enrolled patient to ``to_version`` on re-consenting on ``reconsent_date``.

    Refused unless the version is active at the patient's site on that date (a patient never
    runs a version the site's ethics committee has not approved by then), and for a patient
    not enrolled, one who has left the study, a date in the future, before consent or before
    an earlier re-consent, or a version without the patient's arm.
    """
    with db.write(actor, "transition") as session:
        patient = find_patient(session, patient_ref, for_update=True)
        ref = patient.study_id or patient.screening_number
        enrollment = session.scalar(select(Enrollment).where(Enrollment.patient_id == patient.id))
        if enrollment is None:
            raise Conflict(
                f"patient {ref} is not enrolled: a patient not yet enrolled is screened under "
                "the version the site runs, not transitioned"
            )
        ended = session.scalar(
            select(ParticipationEnd.kind).where(ParticipationEnd.patient_id == patient.id)
        )
        if ended is not None:
            raise Conflict(f"patient {ref} has left the study ({ended}): nothing to re-plan")
        target_id = find_version(session, patient.protocol_id, to_version)
        current = version_name(session, enrollment.protocol_version_id)
        target = protocol_version(session, target_id).protocol
        if target_id == enrollment.protocol_version_id:
            raise Conflict(f"patient {ref} already runs {patient.protocol_id} {current}")
        _check_date(session, patient, enrollment, reconsent_date, now)
        active = version_at(session, patient.protocol_id, patient.site_code, reconsent_date)
        if active.version_id != target_id:
            raise Conflict(
                f"{patient.protocol_id} {target.version} is not active at site "
                f"{patient.site_code} on {reconsent_date} (the site runs "
                f"{active.protocol.version} then): `sarcoma-sched protocol activate "
                f"{patient.protocol_id} {target.version} --site {patient.site_code} "
                "--approved DATE` records its ethics approval first"
            )
        allocation = session.scalar(select(Allocation).where(Allocation.patient_id == patient.id))
        if allocation is not None:
            target.arm(allocation.arm)  # NotFound naming the arms the new version has
        from_version_id = enrollment.protocol_version_id
        enrollment.protocol_version_id = target_id
        session.add(
            ProtocolTransition(
                patient_id=patient.id,
                from_version_id=from_version_id,
                to_version_id=target_id,
                reconsent_date=reconsent_date,
                recorded_at=utc_now(),
                recorded_by=actor,
            )
        )
        session.flush()
        changes: list[TransitionChange] = []
        if allocation is not None:
            changes = _replan(session, patient, target, allocation.arm)
        session.flush()
        return TransitionOutcome(
            ref,
            patient.protocol_id,
            current,
            target.version,
            reconsent_date,
            allocation is not None,
            tuple(changes),
        )


def _check_date(
    session: Session,
    patient: Patient,
    enrollment: Enrollment,
    reconsent_date: dt.date,
    now: dt.datetime | None,
) -> None:
    today = site_today(session, patient.site_code, now)
    if reconsent_date > today:
        raise Conflict(
            f"--reconsent-date {reconsent_date} is in the future (today at "
            f"{patient.site_code} is {today})"
        )
    if reconsent_date < enrollment.consent_date:
        raise Conflict(
            f"--reconsent-date {reconsent_date} is before the patient's consent "
            f"({enrollment.consent_date})"
        )
    last = session.scalar(
        select(func.max(ProtocolTransition.reconsent_date)).where(
            ProtocolTransition.patient_id == patient.id
        )
    )
    if last is not None and reconsent_date < last:
        raise Conflict(
            f"--reconsent-date {reconsent_date} is before the patient's last re-consent ({last})"
        )


def _replan(
    session: Session, patient: Patient, target: Protocol, arm_id: str
) -> list[TransitionChange]:
    rows = patient_events(session, patient)
    ids = {o.id for o in occurrences(target.arm(arm_id))}
    recorded = {r.event_id for r in rows if r.status in RECORDABLE_STATUSES}
    before = {r.event_id: EventState.of(r) for r in rows}
    # The new plan anchors on what happened and keeps the pins, of the events it still has.
    plan = plan_patient(session, patient, [r for r in rows if r.event_id in ids])
    # What was recorded stays as recorded: the plan never rewrites those rows.
    plan = replace(plan, events=tuple(e for e in plan.events if e.id not in recorded), _index={})
    open_rows = [r for r in rows if r.event_id not in recorded]
    changed = apply_plan(session, patient, open_rows, plan)
    out = []
    for row in changed:
        if row.status == EventStatus.CANCELLED and row.event_id not in ids:
            row.reason = ReasonCode.PROTOCOL_AMENDMENT.value
        out.append(
            TransitionChange(
                row.event_id,
                row.label,
                row.uid,
                before.get(row.event_id),
                EventState.of(row),
                row.revision,
            )
        )
    out.sort(key=lambda c: (c.after.first_day, c.event_id))
    return out
