"""Calendars to export: a patient's, or a site's master calendar, as ``CalendarEvent`` values
(``exports.ical`` turns them into iCalendar).

Read-only. Only pseudonymous columns are selected (study id, protocol, site): a name is never
stored and the birth date is never read, so neither can reach a calendar file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Allocation, Enrollment, Patient, ScheduledEvent, Site
from sarcoma_sched.errors import NotFound
from sarcoma_sched.protocol.schedule import Component, Event
from sarcoma_sched.services.lookups import find_patient, get_site, protocol_version
from sarcoma_sched.vocabulary import TENTATIVE_FLAGS, EventStatus, ReasonCode

if TYPE_CHECKING:
    from sarcoma_sched.exports.ical import CalendarEvent

__all__ = ["patient_calendar", "site_calendar_export"]


@dataclass(frozen=True)
class _Shape:
    """What the protocol says about an event key: how it is shown and what to do."""

    show_as: Literal["days", "period"] = "days"
    span_days: int = 1
    instructions: str = ""


_DEFAULT_SHAPE = _Shape()


class _Shapes:
    """Event shapes per (protocol version, arm); each version is parsed once per export."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[tuple[int, str], dict[str, _Shape]] = {}

    def get(self, version_id: int, arm_id: str, event_key: str) -> _Shape:
        key = (version_id, arm_id)
        if key not in self._cache:
            arm = protocol_version(self._session, version_id).protocol.arm(arm_id)
            shapes: dict[str, _Shape] = {}
            for event in arm.events:
                parts: list[Event | Component] = [event, *event.components]
                for part in parts:
                    shapes[part.key] = _Shape(
                        part.span.show_as, part.span.days, part.description.strip()
                    )
            self._cache[key] = shapes
        # A key the protocol no longer has (cannot happen for a stored version): a plain visit.
        return self._cache[key].get(event_key, _DEFAULT_SHAPE)


# Named columns, not entities: the birth date is never even loaded, and a site calendar of
# tens of thousands of rows skips the ORM's per-object identity map and state tracking (a
# third of the export's time when it loaded ScheduledEvent objects).
_EVENT_COLUMNS = (
    ScheduledEvent.uid,
    ScheduledEvent.event_key,
    ScheduledEvent.event_id,
    ScheduledEvent.label,
    ScheduledEvent.kind,
    ScheduledEvent.days,
    ScheduledEvent.local_time,
    ScheduledEvent.target,
    ScheduledEvent.earliest,
    ScheduledEvent.latest,
    ScheduledEvent.status,
    ScheduledEvent.revision,
    ScheduledEvent.updated_at,
    ScheduledEvent.reason,
    ScheduledEvent.deviation,
    ScheduledEvent.actual_date,
    ScheduledEvent.flags,
)


def _query() -> Select[Any]:
    return (
        select(
            *_EVENT_COLUMNS,
            Patient.study_id,
            Patient.protocol_id,
            Patient.site_code,
            Allocation.arm,
            Enrollment.protocol_version_id,
            Site.time_zone,
            Site.name.label("site_name"),
        )
        .join(Patient, Patient.id == ScheduledEvent.patient_id)
        .join(Allocation, Allocation.patient_id == Patient.id)
        .join(Enrollment, Enrollment.patient_id == Patient.id)
        .join(Site, Site.code == Patient.site_code)
        .order_by(ScheduledEvent.first_day, ScheduledEvent.uid)
    )


def _unconfirmed(status: str, flags: list[Any] | None) -> tuple[str, ...]:
    """Why a planned date is not one to rely on: the planner's flags that put it in doubt (a
    hard rule it breaks, a resource over capacity). Planner text: dates and the protocol's
    constraint wording, never a note."""
    if status != EventStatus.PLANNED:
        return ()
    return tuple(
        f"{f['code']}: {f['message']}" for f in flags or () if f.get("code") in TENTATIVE_FLAGS
    )


def _events(session: Session, query: Select[Any]) -> list[CalendarEvent]:
    # The export's value type; icalendar itself loads only when a calendar is exported.
    from sarcoma_sched.exports.ical import CalendarEvent

    shapes = _Shapes(session)
    events = []
    date = dt.date.fromisoformat
    for r in session.execute(query):
        shape = shapes.get(r.protocol_version_id, r.arm, r.event_key)
        events.append(
            CalendarEvent(
                uid=r.uid,
                study_id=r.study_id,
                protocol_id=r.protocol_id,
                site_code=r.site_code,
                event_id=r.event_id,
                label=r.label,
                kind=r.kind,
                days=tuple(sorted(date(d) for d in r.days)),
                show_as=shape.show_as,
                local_time=dt.time.fromisoformat(r.local_time) if r.local_time else None,
                time_zone=r.time_zone,
                target=r.target,
                earliest=r.earliest,
                latest=r.latest,
                status=r.status,
                revision=r.revision,
                updated_at=r.updated_at,
                instructions=shape.instructions,
                # The code only: a note never reaches a calendar someone else subscribes to.
                reason=ReasonCode.of(r.reason),
                deviation=r.deviation,
                actual_date=r.actual_date,
                span_days=shape.span_days,
                location=r.site_name,
                unconfirmed=_unconfirmed(r.status, r.flags),
            )
        )
    return events


def patient_calendar(session: Session, ref: str) -> tuple[list[CalendarEvent], str]:
    """Every event of one allocated patient, cancelled ones included, and the calendar name."""
    patient = find_patient(session, ref)
    allocated = session.scalar(select(Allocation.id).where(Allocation.patient_id == patient.id))
    if allocated is None or patient.study_id is None:
        raise NotFound(f"{ref} has no calendar: the patient is not allocated")
    events = _events(session, _query().where(ScheduledEvent.patient_id == patient.id))
    return events, f"{patient.study_id} · {patient.protocol_id} ({patient.site_code})"


def site_calendar_export(
    session: Session,
    site_code: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> tuple[list[CalendarEvent], str]:
    """The site's master calendar: every event of its allocated patients (every trial) with a
    day in ``[date_from, date_to]`` (either end open). Cancelled events are kept, so a client
    subscribed to the calendar removes them instead of keeping a stale visit."""
    site = get_site(session, site_code)
    query = _query().where(Patient.site_code == site.code)
    # first_day/last_day are indexed: the database narrows, the days themselves decide below.
    if date_from is not None:
        query = query.where(ScheduledEvent.last_day >= date_from)
    if date_to is not None:
        query = query.where(ScheduledEvent.first_day <= date_to)
    events = [e for e in _events(session, query) if _touches(e, date_from, date_to)]
    return events, f"{site.name} ({site.code}) · trial visits{_range(date_from, date_to)}"


def _touches(event: CalendarEvent, date_from: dt.date | None, date_to: dt.date | None) -> bool:
    low = date_from or dt.date.min
    high = date_to or dt.date.max
    if event.show_as == "period":
        # A period covers every day between its ends.
        return event.days[0] <= high and event.days[-1] >= low
    # An RT course across a weekend has no visit on the Saturday.
    return any(low <= day <= high for day in event.days)


def _range(date_from: dt.date | None, date_to: dt.date | None) -> str:
    if date_from and date_to:
        return f", {date_from.isoformat()} to {date_to.isoformat()}"
    if date_from:
        return f", from {date_from.isoformat()}"
    if date_to:
        return f", until {date_to.isoformat()}"
    return ""
