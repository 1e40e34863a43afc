"""A patient's calendar in the database: stored from the planner, re-planned, cancelled.

Rows are never deleted. A re-plan updates what moved and raises its revision (the iCalendar
SEQUENCE, so calendar clients replace their copy); an event the new plan no longer has, or every
future event of a withdrawn patient, becomes ``cancelled``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar import Actual, Plan, PlannedEvent
from sarcoma_sched.db.audit import insert_audited
from sarcoma_sched.db.models import Installation, ParticipationEnd, Patient, ScheduledEvent
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.services.lookups import installation
from sarcoma_sched.vocabulary import RECORDABLE_STATUSES, DatabasePurpose, EventStatus

__all__ = [
    "actuals_of",
    "apply_plan",
    "cancel_future",
    "event_fields",
    "event_rows",
    "event_uid",
    "installation_uid",
    "store_plan",
]


def event_uid(study_id: str | None, event_id: str, installation: str) -> str:
    """An event's iCalendar UID: stable for the life of the event, pseudonymous by construction,
    and unique across trials and across databases. Two trial databases (a site's own and the
    network's, a copy restored for training) number their patients alike, and a calendar client
    holding both would take one's PKUIH-NATARS-0001 ai.1 for the other's: the installation id,
    made once per database (``init`` or migration 0012), tells them apart. A row keeps the UID
    it was stored with (events stored before 0012 keep theirs, so calendars already handed out
    update in place instead of doubling).

    The id's first 12 hex digits (48 bits) are enough to tell a trial's few databases apart,
    and keep a UID line within the 75 octets RFC 5545 folds at."""
    short = installation.replace("-", "")[:12]
    return f"{study_id}.{event_id}@{short}.sarcoma-sched".lower()


def installation_uid(session: Session) -> str:
    """This database's installation id (its one ``installation`` row). ``init`` and migration
    0012 write the row; a database set up otherwise (``db upgrade`` then ``protocol load``)
    gets it, as a trial's, in the write that stores its first event (audited with it)."""
    known = installation(session)
    if known is not None:
        return known.uid
    row = Installation(
        id=1, uid=str(uuid.uuid4()), purpose=DatabasePurpose.TRIAL, created_at=utc_now()
    )
    session.add(row)
    session.flush()
    return row.uid


def _deviations(plan: Plan) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for deviation in plan.deviations:
        found.setdefault(deviation.event, []).append(deviation.message)
    return {event: "; ".join(messages) for event, messages in found.items()}


def event_fields(event: PlannedEvent, deviation: str | None) -> dict[str, Any]:
    """A planned event as the columns of its ``scheduled_events`` row (all but the patient's,
    the uid, the revision and the time of writing).

    The one place that turns the planner's output into row values: ``store_plan``, ``apply_plan``
    and bulk writers use it, so derived columns (``first_day``, ``last_day``, ``span_days``) can
    never disagree with ``days``.
    """
    return {
        "event_key": event.key,
        "kind": event.kind,
        "label": event.label,
        "cycle": event.cycle,
        "target": event.target,
        "earliest": event.earliest,
        "latest": event.latest,
        "days": [d.isoformat() for d in event.days],
        "first_day": event.start,
        "last_day": event.end,
        "span_days": (event.end - event.start).days,
        "pinned": event.start if event.pinned else None,
        "local_time": event.time.strftime("%H:%M") if event.time else None,
        # Plain text into the row and its JSON, whichever str the planner handed over.
        "status": str(event.status),
        "actual_date": event.days[0] if event.status == EventStatus.DONE else None,
        "deviation": deviation,
        "reason": event.reason or None,
        "flags": [{"code": str(f.code), "message": f.message} for f in event.flags],
    }


def event_rows(
    patient: Patient, plan: Plan, installation: str, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """A new calendar as complete ``scheduled_events`` rows (every column but the id);
    ``installation`` the database's id (``installation_uid``), which the UIDs carry."""
    deviations = _deviations(plan)
    now = now or utc_now()
    return [
        {
            "patient_id": patient.id,
            "uid": event_uid(patient.study_id, event.id, installation),
            "event_id": event.id,
            "revision": 0,
            "updated_at": now,
            "pin_policy": None,  # set by a coordinator's reschedule only
            "note": None,  # a coordinator's words, never the planner's
            **event_fields(event, deviations.get(event.id)),
        }
        for event in plan.events
    ]


def store_plan(session: Session, patient: Patient, plan: Plan) -> list[int]:
    """Write a new calendar in one statement with its audit entries; the rows' ids."""
    rows = event_rows(patient, plan, installation_uid(session))
    return insert_audited(session, ScheduledEvent.__tablename__, rows)


def apply_plan(
    session: Session, patient: Patient, rows: Sequence[ScheduledEvent], plan: Plan
) -> list[ScheduledEvent]:
    """Bring stored rows in line with a new plan; returns the rows that changed."""
    deviations = _deviations(plan)
    by_id = {row.event_id: row for row in rows}
    changed = []
    now = utc_now()
    # The planner knows nothing of a withdrawal: a period it runs past one ends there still.
    ended = session.scalar(
        select(ParticipationEnd.effective_date).where(ParticipationEnd.patient_id == patient.id)
    )
    for event in plan.events:
        if ended is not None and event.start < ended <= event.end:
            event = replace(event, days=tuple(d for d in event.days if d < ended))
        fields = event_fields(event, deviations.get(event.id))
        row = by_id.pop(event.id, None)
        if row is None:
            new = ScheduledEvent(
                patient_id=patient.id,
                uid=event_uid(patient.study_id, event.id, installation_uid(session)),
                event_id=event.id,
                revision=0,
                updated_at=now,
                **fields,
            )
            session.add(new)
            changed.append(new)
            continue
        if row.status == EventStatus.CANCELLED:
            continue
        if any(getattr(row, k) != v for k, v in fields.items()):
            for key, value in fields.items():
                setattr(row, key, value)
            row.revision += 1
            row.updated_at = now
            changed.append(row)
    for row in by_id.values():  # no longer in the plan (e.g. a cycle dropped): keep, cancelled
        if row.status == EventStatus.PLANNED:
            row.status = EventStatus.CANCELLED
            row.revision += 1
            row.updated_at = now
            changed.append(row)
    return changed


def cancel_future(
    session: Session,
    rows: Sequence[ScheduledEvent],
    reason: str,
    from_date: dt.date,
    *,
    note: str | None = None,
) -> list[ScheduledEvent]:
    """Withdrawal or exclusion: planned events from ``from_date`` on are cancelled, never
    removed. Earlier ones stay planned: they were due while the patient was in the study, so
    the coordinator still records what happened (done, missed) instead of losing them. One in
    progress on ``from_date`` (planned or done) ends the day before it."""
    now = utc_now()
    cancelled = []
    for row in rows:
        if row.status in (EventStatus.PLANNED, EventStatus.DONE) and (
            row.first_day < from_date <= row.last_day
        ):
            # In progress (a dosing period, a course): it ends the day before the patient left.
            days = [d for d in row.days if dt.date.fromisoformat(d) < from_date]
            row.days = days
            row.last_day = dt.date.fromisoformat(days[-1])
            row.span_days = (row.last_day - row.first_day).days
            row.revision += 1
            row.updated_at = now
            continue
        if row.status == EventStatus.PLANNED and row.target >= from_date:
            row.status = EventStatus.CANCELLED
            row.reason = reason  # the code; the why in words stays with the participation end
            row.note = note
            row.revision += 1
            row.updated_at = now
            cancelled.append(row)
    return cancelled


def actuals_of(rows: Sequence[ScheduledEvent]) -> dict[str, Actual]:
    """What happened, as the planner takes it, from the stored rows."""
    actuals = {}
    for row in rows:
        if row.status in RECORDABLE_STATUSES:
            done = row.status == EventStatus.DONE
            days = tuple(dt.date.fromisoformat(d) for d in row.days) if done else None
            actuals[row.event_id] = Actual(
                EventStatus(row.status),
                row.actual_date,
                days=days if days and len(days) > 1 else None,
                reason=row.reason or "",
            )
    return actuals
