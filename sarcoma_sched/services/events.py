"""What happened and what the coordinator moved: record, reschedule, and the re-plan both cause.

A re-plan takes every recorded actual and every coordinator's pin from the stored rows, plans the
arm again from the allocation date, and brings the rows in line (``apply_plan``): moved events get
a new revision (the iCalendar SEQUENCE), nothing is deleted, and each change is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar import Actual, Notice, Pin, Plan, plan_arm
from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import Conflict, NotFound
from sarcoma_sched.services.capacity import site_capacity
from sarcoma_sched.services.lookups import find_patient, protocol_version, site_calendar
from sarcoma_sched.services.queries.schedule import patient_schedule
from sarcoma_sched.services.reasons import coded
from sarcoma_sched.services.schedules import actuals_of, apply_plan
from sarcoma_sched.vocabulary import (
    PLACEMENT_RULES,
    RECORDABLE_STATUSES,
    UNSAFE_FLAGS,
    EventStatus,
    PinPolicy,
    ReasonCode,
    ViolationRule,
)

__all__ = [
    "EventChange",
    "EventOutcome",
    "patient_events",
    "plan_patient",
    "record_event",
    "replan_patient",
    "reschedule_event",
]


@dataclass(frozen=True)
class EventChange:
    """One event the re-plan changed: its days and/or its status."""

    event_id: str
    label: str
    old_days: tuple[dt.date, ...]
    new_days: tuple[dt.date, ...]
    old_status: str
    new_status: str

    @property
    def shift_days(self) -> int:
        return (self.new_days[0] - self.old_days[0]).days

    def __str__(self) -> str:
        if self.old_days != self.new_days:
            sign = "+" if self.shift_days >= 0 else ""
            text = f"{self.old_days[0]} → {self.new_days[0]} ({sign}{self.shift_days} days)"
        else:
            text = f"{self.old_status} → {self.new_status}"
        return f"{self.event_id}: {text}"


@dataclass(frozen=True)
class EventOutcome:
    study_id: str
    event_id: str
    label: str
    status: str
    days: tuple[dt.date, ...]
    target: dt.date
    earliest: dt.date
    latest: dt.date
    moved: list[EventChange]  # other events the re-plan changed
    # "event: message", this event's first: those this change made or changed, not every one
    # the calendar holds (`deviations` lists those).
    deviations: list[str]
    flags: list[str]  # "event: message" for events the planner could not place cleanly
    # Every flag and notice of the calendar as re-planned: what ``schedule`` now shows.
    warnings: tuple[Notice, ...]


def patient_events(session: Session, patient: Patient) -> list[ScheduledEvent]:
    return list(
        session.scalars(
            select(ScheduledEvent)
            .where(ScheduledEvent.patient_id == patient.id)
            .order_by(ScheduledEvent.first_day, ScheduledEvent.id)
        )
    )


def _days(row: ScheduledEvent) -> tuple[dt.date, ...]:
    return tuple(dt.date.fromisoformat(d) for d in row.days)


def _pins(rows: Sequence[ScheduledEvent]) -> dict[str, Pin]:
    return {
        row.event_id: Pin(row.pinned, row.reason or "", keep=row.pin_policy == PinPolicy.KEEP)
        for row in rows
        if row.pinned is not None and row.status == EventStatus.PLANNED
    }


def plan_patient(
    session: Session,
    patient: Patient,
    rows: Sequence[ScheduledEvent],
    *,
    actuals: dict[str, Actual] | None = None,
    pins: dict[str, Pin] | None = None,
) -> Plan:
    """The patient's plan from what the rows record plus ``actuals``/``pins``; writes nothing."""
    allocation = session.scalar(select(Allocation).where(Allocation.patient_id == patient.id))
    enrollment = session.scalar(select(Enrollment).where(Enrollment.patient_id == patient.id))
    if allocation is None or enrollment is None:
        ref = patient.study_id or patient.screening_number
        raise Conflict(f"patient {ref} is not allocated: there is no calendar yet")
    protocol = protocol_version(session, enrollment.protocol_version_id).protocol
    return plan_arm(
        protocol,
        allocation.arm,
        allocation.allocation_date,
        site_calendar(session, patient.site_code),
        actuals={**actuals_of(rows), **(actuals or {})},
        pins={**_pins(rows), **(pins or {})},
        capacity=site_capacity(
            session,
            patient.site_code,
            exclude_patient=patient.id,
            since=allocation.allocation_date,
        ),
    )


def replan_patient(
    session: Session,
    patient: Patient,
    rows: Sequence[ScheduledEvent],
    *,
    actuals: dict[str, Actual] | None = None,
    pins: dict[str, Pin] | None = None,
) -> tuple[Plan, list[EventChange]]:
    """Plan again and bring the rows in line; returns the plan and what changed."""
    plan = plan_patient(session, patient, rows, actuals=actuals, pins=pins)
    before = {row.event_id: (_days(row), row.status) for row in rows}
    changed = apply_plan(session, patient, rows, plan)
    changes = []
    for row in changed:
        old_days, old_status = before.get(row.event_id, ((), "new"))
        if old_days and (old_days != _days(row) or old_status != row.status):
            changes.append(
                EventChange(row.event_id, row.label, old_days, _days(row), old_status, row.status)
            )
    return plan, changes


def _locate(
    session: Session, ref: str, event_id: str
) -> tuple[Patient, list[ScheduledEvent], ScheduledEvent]:
    patient = find_patient(session, ref)
    study_id = patient.study_id or patient.screening_number
    rows = patient_events(session, patient)
    if not rows:
        raise Conflict(f"patient {study_id} is not allocated: there is no calendar yet")
    row = next((r for r in rows if r.event_id == event_id), None)
    if row is None:
        known = ", ".join(r.event_id for r in rows)
        raise NotFound(f"patient {study_id} has no event {event_id!r} (events: {known})")
    return patient, rows, row


def _check_not_before_study(session: Session, patient: Patient, day: dt.date, what: str) -> None:
    enrollment = session.scalar(select(Enrollment).where(Enrollment.patient_id == patient.id))
    allocation = session.scalar(select(Allocation).where(Allocation.patient_id == patient.id))
    assert enrollment is not None and allocation is not None  # the patient has a calendar
    if day < enrollment.consent_date:
        raise Conflict(
            f"{what} {day} is before {patient.study_id}'s consent ({enrollment.consent_date})"
        )
    if day < allocation.allocation_date:
        raise Conflict(
            f"{what} {day} is before {patient.study_id}'s allocation "
            f"({allocation.allocation_date}, day 0)"
        )


def _outcome(
    patient: Patient,
    row: ScheduledEvent,
    plan: Plan,
    changes: list[EventChange],
    session: Session,
    stored: dict[str, str],
) -> EventOutcome:
    # A deviation is told once, when it arises: one the rows already held before this change
    # (a late cycle recorded last month) is the `deviations` listing's, not news of this
    # record. A changed one (late by more days now) differs in its text, so it is told again.
    fresh = [d for d in plan.deviations if d.message not in _messages(stored.get(d.event))]
    deviations = [f"{d.event}: {d.message}" for d in fresh if d.event == row.event_id]
    deviations += [f"{d.event}: {d.message}" for d in fresh if d.event != row.event_id]
    flags = [
        f"{e.id}: {f.message}"
        for e in plan.events
        if e.status == EventStatus.PLANNED
        for f in e.flags
    ]
    return EventOutcome(
        study_id=patient.study_id or "",
        event_id=row.event_id,
        label=row.label,
        status=row.status,
        days=_days(row),
        target=row.target,
        earliest=row.earliest,
        latest=row.latest,
        moved=[c for c in changes if c.event_id != row.event_id],
        deviations=deviations,
        flags=flags,
        # On the session's connection, after the caller's flush: the rows as this change left them.
        warnings=patient_schedule(session.connection(), patient.study_id or "").warnings,
    )


def _messages(stored: str | None) -> tuple[str, ...]:
    """The messages of a row's ``deviation`` column, which ``apply_plan`` joins with "; "."""
    return tuple(stored.split("; ")) if stored else ()


def _stored_deviations(rows: Sequence[ScheduledEvent]) -> dict[str, str]:
    """Each event's deviations as stored before a change (the rows are updated in place)."""
    return {row.event_id: row.deviation for row in rows if row.deviation}


def record_event(
    db: Database,
    actor: str,
    patient_ref: str,
    event_id: str,
    status: str,
    *,
    date: dt.date | None,
    reason: str | None,
    today: dt.date,
    correct: bool = False,
    reason_code: str | None = None,
    day_number: int | None = None,
    with_components: bool = False,
) -> EventOutcome:
    """Record what happened to one event, then re-plan the events timed from it.

    A recorded event is history: recording it again is refused unless ``correct`` (with a
    reason) says it is a correction; the audit log keeps what it replaced.

    ``day_number`` records the actual date of one day of a course (an RT fraction, an infusion
    day): day 1 starts it; a later day of a course already recorded done moves that day, and
    the days after it that would no longer follow it are laid out again from it by the span's
    rule (the fraction the machine was down for, and the ones after). ``with_components``
    records the cycle's still-planned components (its at-home dosing period, its labs) done
    on their days as re-planned from the cycle's actual start; each can be recorded apart too.
    """
    if day_number is not None:
        if status != EventStatus.DONE or date is None:
            raise Conflict("--day records the date a day of a course was given: give --status "
                           "done and its --date")  # fmt: skip
        if day_number < 1:
            raise Conflict(f"--day counts the days of a course from 1 (got {day_number})")
    if with_components and status != EventStatus.DONE:
        raise Conflict(f"--with-components records components done with their cycle; a "
                       f"{status} cycle's components are recorded apart")  # fmt: skip
    if status not in RECORDABLE_STATUSES:
        raise Conflict(f"status must be one of {', '.join(RECORDABLE_STATUSES)} (got {status!r})")
    if status == EventStatus.DONE and date is None:
        raise Conflict("a done event needs its date (--date)")
    if status != EventStatus.DONE and date is not None:
        raise Conflict(f"--date is the day a done event happened; a {status} event has none")
    if date is not None and date > today:
        raise Conflict(f"date {date} is in the future; record an event once it has happened")
    # The code leaves the database (deviations, calendars); the note (--reason) stays in it.
    code, note = coded(
        reason_code,
        reason,
        default=ReasonCode.DATA_ERROR if correct else ReasonCode.OTHER,
        required="a correction needs --reason (what was wrong)" if correct else None,
    )
    with db.write(actor, f"record {status}") as session:
        patient, rows, row = _locate(session, patient_ref, event_id)
        if row.status == EventStatus.CANCELLED:
            raise Conflict(
                f"{patient.study_id} {event_id} is cancelled ({row.reason or 'no reason'}); "
                "nothing to record"
            )
        by_day = day_number is not None and day_number > 1
        if by_day and row.status != EventStatus.DONE:
            raise Conflict(
                f"{patient.study_id} {event_id} is {row.status}: record day 1 (its start) "
                f"before day {day_number}"
            )
        if row.status != EventStatus.PLANNED and not correct and not by_day:
            when = f" on {row.actual_date}" if row.actual_date else ""
            raise Conflict(
                f"{patient.study_id} {event_id} is already recorded as {row.status}{when}; "
                "to change it give --correct and --reason"
            )
        if correct and row.status == EventStatus.PLANNED:
            raise Conflict(f"{patient.study_id} {event_id} has nothing recorded to correct")
        ended = session.scalar(
            select(ParticipationEnd).where(ParticipationEnd.patient_id == patient.id)
        )
        if date is not None:
            _check_not_before_study(session, patient, date, "date")
            if ended is not None and date >= ended.effective_date:
                raise Conflict(
                    f"{patient.study_id} was {ended.kind} from {ended.effective_date}; "
                    f"an event on {date} is after that"
                )
        if status == EventStatus.MISSED and row.first_day > today:
            raise Conflict(
                f"{patient.study_id} {event_id} is planned for {row.first_day}; it can only be "
                "missed once that day has passed (a decision not to give it is `skipped`)"
            )
        # A correction needs no reset: the new actual replaces the recorded one in the re-plan.
        if by_day:
            assert date is not None and day_number is not None
            days = _with_day(session, patient, rows, row, day_number, date)
            why = str(code) if code else row.reason or ""
            actual = Actual(EventStatus.DONE, days[0], days=days, reason=why)
        else:
            actual = Actual(EventStatus(status), date, reason=str(code) if code else "")
        actuals = {event_id: actual}
        if with_components:
            actuals.update(_components_done(session, patient, rows, event_id, actuals, today))
        stored = _stored_deviations(rows)
        plan, changes = replan_patient(session, patient, rows, actuals=actuals)
        order = [
            v.message
            for v in plan.violations
            if v.rule == ViolationRule.ORDER and event_id in v.events
        ]
        if order:
            raise Conflict(f"{patient.study_id} {event_id} on {date}: {order[0]}")
        if note is not None or not by_day:
            row.note = f"corrected: {note}" if correct and note else note
        session.flush()
        return _outcome(patient, row, plan, changes, session, stored)


def _with_day(
    session: Session,
    patient: Patient,
    rows: Sequence[ScheduledEvent],
    row: ScheduledEvent,
    number: int,
    date: dt.date,
) -> tuple[dt.date, ...]:
    """The days of a recorded course with day ``number`` given on ``date``."""
    days = list(_days(row))
    ref = f"{patient.study_id} {row.event_id}"
    if number > len(days):
        raise Conflict(f"{ref} has {len(days)} day(s); there is no day {number}")
    if days[number - 2] >= date:
        raise Conflict(
            f"{ref} day {number} on {date} is not after day {number - 1} ({days[number - 2]})"
        )
    days[number - 1] = date
    later = days[number:]
    if later and later[0] <= date:
        # The days after it follow it again, by the span's rule: consecutive working days for
        # an RT course, calendar days for an inpatient course or a dosing period.
        event = plan_patient(session, patient, rows)[row.event_id]
        if event.consecutive_working_days:
            calendar = site_calendar(session, patient.site_code)
            later = list(calendar.working_days_from(date, len(later) + 1)[1:])
        else:
            later = [date + dt.timedelta(days=i + 1) for i in range(len(later))]
        days[number:] = later
    return tuple(days)


def _components_done(
    session: Session,
    patient: Patient,
    rows: Sequence[ScheduledEvent],
    event_id: str,
    actuals: dict[str, Actual],
    today: dt.date,
) -> dict[str, Actual]:
    """The cycle's still-planned components, done on their days as planned from its actual
    start (a component due after today is refused: it has not happened yet)."""
    plan = plan_patient(session, patient, rows, actuals=actuals)
    key = plan[event_id].key
    status = {r.event_id: r.status for r in rows}
    found = {}
    for e in plan.events:
        # A component is timed from its cycle and numbered with it; the next cycle, timed
        # from this one too, has the cycle's own key.
        if e.anchor != event_id or e.key == key or status.get(e.id) != EventStatus.PLANNED:
            continue
        if e.start > today:
            raise Conflict(
                f"{patient.study_id} {e.id} is planned to start {e.start}, after today: "
                "record it once it has"
            )
        found[e.id] = Actual(EventStatus.DONE, e.start, days=e.days if len(e.days) > 1 else None)
    if not found:
        raise Conflict(f"{patient.study_id} {event_id} has no planned component to record")
    return found


def reschedule_event(
    db: Database,
    actor: str,
    patient_ref: str,
    event_id: str,
    to: dt.date,
    *,
    reason: str | None,
    today: dt.date,
    reason_code: str | None = None,
    pin_policy: str = PinPolicy.RELEASE,
) -> EventOutcome:
    """Move a planned event to a coordinator's date: inside its window freely, outside it only
    with a reason (a recorded deviation), never onto a day the site does not work when the event
    needs a working day, and never so that a hard protocol constraint breaks.

    ``pin_policy`` says what the date does if a later re-plan makes it break one: released to
    the first valid day (the default), or kept and flagged (``PinPolicy.KEEP``)."""
    policy = PinPolicy(pin_policy)
    code, note = coded(reason_code, reason, default=ReasonCode.OTHER)
    if to < today:
        raise Conflict(f"{to} is in the past; record what happened with `sarcoma-sched record`")
    with db.write(actor, "reschedule") as session:
        patient, rows, row = _locate(session, patient_ref, event_id)
        if row.status != EventStatus.PLANNED:
            raise Conflict(
                f"{patient.study_id} {event_id} is {row.status}; only planned events move"
            )
        _check_not_before_study(session, patient, to, "new date")
        if _days(row)[0] == to:
            raise Conflict(f"{patient.study_id} {event_id} is already on {to}")
        calendar = site_calendar(session, patient.site_code)
        if plan_patient(session, patient, rows)[
            event_id
        ].working_days_only and not calendar.is_working_day(to):
            raise Conflict(
                f"{to} is not a working day at {patient.site_code} "
                f"({calendar.why_not_working(to)}); {event_id} needs one"
            )
        if not row.earliest <= to <= row.latest and code is None:
            raise Conflict(
                f"{to} is outside {event_id}'s window ({row.earliest} … {row.latest}); "
                "give --reason to move it there as a recorded deviation"
            )
        # Held as if it must stand, so a date that breaks a rule now is refused, not released.
        pin = Pin(to, str(code) if code else "", keep=True)
        stored = _stored_deviations(rows)
        plan, changes = replan_patient(session, patient, rows, pins={event_id: pin})
        broken = [f.message for f in plan[event_id].flags if f.code in UNSAFE_FLAGS] + [
            v.message
            for v in plan.violations
            if event_id in v.events and v.rule not in PLACEMENT_RULES
        ]
        if broken:
            raise Conflict(f"cannot move {event_id} to {to}: {broken[0]}")
        row.note = note
        row.pin_policy = None if policy == PinPolicy.RELEASE else str(policy)
        session.flush()
        return _outcome(patient, row, plan, changes, session, stored)
