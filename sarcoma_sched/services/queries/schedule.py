"""One patient's schedule as the coordinator reads it: every event with its days, window,
status, actual date, deviation and flags."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Patient, ScheduledEvent
from sarcoma_sched.services.lookups import find_patient
from sarcoma_sched.services.queries.days import days_text, window_text
from sarcoma_sched.vocabulary import OFF_CALENDAR, ReasonCode

__all__ = ["SCHEDULE_COLUMNS", "patient_schedule"]

SCHEDULE_COLUMNS = [
    "event",
    "label",
    "kind",
    "days",
    "target",
    "window",
    "status",
    "actual",
    "deviation",
    "flags",
]

E = ScheduledEvent


def patient_schedule(session: Session, ref: str) -> tuple[Patient, list[dict[str, Any]]]:
    patient = find_patient(session, ref)
    rows = session.execute(
        select(E).where(E.patient_id == patient.id).order_by(E.first_day, E.id)
    ).scalars()
    out = []
    for r in rows:
        actual = r.actual_date.isoformat() if r.actual_date else None
        if r.status in OFF_CALENDAR:
            code = ReasonCode.of(r.reason)
            actual = r.status + (f": {code}" if code else "")
        out.append(
            {
                "event": r.event_id,
                "label": r.label,
                "kind": r.kind,
                "days": days_text(r.days, r.local_time),
                "target": r.target,
                "window": window_text(r.earliest, r.latest),
                "status": r.status + (" (rescheduled)" if r.pinned else ""),
                "actual": actual,
                "deviation": r.deviation,
                "flags": "; ".join(f"{f['code']}: {f['message']}" for f in r.flags) or None,
            }
        )
    return patient, out
