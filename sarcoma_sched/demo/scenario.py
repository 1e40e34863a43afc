"""The demonstration: a fresh database, both trials, a synthetic cohort and what happened to it.

Everything goes through the same services a coordinator's commands use (screen, allocate,
record, reschedule, withdraw, close a site), so the demo database is what a real one looks like:
audited, re-planned, with deviations where the story has them. Dates are relative to ``as_of``
(default today), so ``visits`` and ``overdue`` show something right after the demo.

The patients are synthetic. No names or birth dates exist anywhere.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sarcoma_sched.allocation.secret import DEMO_SECRET
from sarcoma_sched.db.session import Database
from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT
from sarcoma_sched.vocabulary import (
    NOT_HAPPENED,
    DatabasePurpose,
    DeviationKind,
    EndKind,
    EventStatus,
    Resource,
)

if TYPE_CHECKING:
    from sarcoma_sched.db.models import ScheduledEvent
    from sarcoma_sched.services.events import EventChange

__all__ = ["DemoResult", "Story", "run_demo"]

ACTOR = "demo"
# A fixed, published demo key so `allocation verify NATARS-R --secret-file DIR/demo.key`
# reproduces the demo's minimization draws; every database but a demo's refuses it.

NATARS_SITES = ("PKUIH", "BJFH", "XJTU1", "PKUFH", "SHCH", "SHZS", "QDUAH")
MDT_REASONS = {
    "NEOADJUVANT": "MDT: borderline resectable, fit for neoadjuvant AI + anlotinib",
    "SURGERY_ONLY": "MDT: R0 resection feasible now; neoadjuvant therapy not advised",
}
HISTOLOGIES = ("DDLPS", "DDLPS", "LMS", "UPS", "SFT")


@dataclass(frozen=True)
class Story:
    """Something that happened to one event of one demo patient."""

    event: str
    # LATE (done N days late), MISSED or SKIPPED (recorded so), "withdraw", "reschedule" (+N days)
    kind: str
    days: int = 0
    reason: str = ""


@dataclass
class DemoPatient:
    protocol: str
    site: str
    values: dict[str, str]
    allocated_days_ago: int
    arm: str | None = None  # assigned designs
    stories: tuple[Story, ...] = ()  # given by _cast once the calendars exist
    study_id: str = ""


@dataclass
class DemoResult:
    as_of: dt.date
    screened: list[tuple[str, str, bool, list[str]]] = field(default_factory=list)
    allocated: list[tuple[str, str, str, str]] = field(default_factory=list)
    recorded: int = 0
    delays: list[str] = field(default_factory=list)
    closure: list[str] = field(default_factory=list)
    capacity: list[str] = field(default_factory=list)
    calendars: list[Path] = field(default_factory=list)


def _natars_values(rng: random.Random, **overrides: str) -> dict[str, str]:
    values = dict(ELIGIBLE_NATARS, histology=rng.choice(HISTOLOGIES), **overrides)
    if values["histology"] == "SFT":
        values["sft_risk_score"] = str(rng.randint(6, 7))  # high-risk SFT only (INC-06)
    return values


# What happens in the demo, each to the first patient it fits (allocated earliest, in that
# trial and arm, with the event due): delays that move later events, a missed visit, a skipped
# cycle, a surgery moved for the theatre list, and a withdrawal.
STORIES: tuple[tuple[str, Story], ...] = (
    ("NATARS", Story("ai.2", DeviationKind.LATE, 7, "grade 3 neutropenia; cycle delayed one week")),
    ("NATARS", Story("ai.1", DeviationKind.LATE, 3, "no inpatient bed")),
    ("NATARS", Story("restaging", EventStatus.MISSED, reason="CT scanner down")),
    ("NATARS", Story("ai.1", "withdraw", reason="withdrew consent after cycle 1")),
    ("NATARS-R", Story("ai.1", EventStatus.SKIPPED, reason="patient declined cycle 1")),
    ("TNT-STS", Story("rt", DeviationKind.LATE, 2, "RT planning CT repeated")),
    ("TNT-STS", Story("surgery", "reschedule", 5, "theatre list full that week")),
)


def _cohort(rng: random.Random) -> list[DemoPatient]:
    patients: list[DemoPatient] = []
    # TNT-STS, single site, fixed arm: 8 screened, one fails ECOG.
    for i in range(8):
        values = dict(ELIGIBLE_TNT, age_years=str(rng.randint(24, 74)))
        if i == 5:
            values["ecog"] = "3"
        patients.append(DemoPatient("TNT-STS", "FJMUUH", values, 20 + 14 * i))
    # NATARS (registered design: arm by MDT decision) over the seven hospitals.
    for i in range(12):
        values = _natars_values(
            rng, age_years=str(rng.randint(30, 74)), tumour_size_cm=f"{rng.uniform(6, 25):.1f}"
        )
        if i == 4:
            values["age_years"] = "15"
        if i == 9:
            values["metastasis"] = "yes"
        site = NATARS_SITES[i % len(NATARS_SITES)]
        arm = "NEOADJUVANT" if i % 3 != 2 else "SURGERY_ONLY"
        patients.append(DemoPatient("NATARS", site, values, 12 + 13 * i, arm=arm))
    # NATARS-R (the randomized template): minimization on histology and site.
    for i in range(10):
        values = _natars_values(rng)
        if i == 6:
            values["prior_resection_or_therapy"] = "yes"
        site = NATARS_SITES[(i * 3) % len(NATARS_SITES)]
        patients.append(DemoPatient("NATARS-R", site, values, 8 + 15 * i))
    return patients


def _cast(db: Database, patients: list[DemoPatient], as_of: dt.date) -> None:
    """Give each story to the first allocated patient whose calendar has that event in reach."""
    cutoff = as_of - dt.timedelta(days=2)
    order = sorted((p for p in patients if p.study_id), key=lambda p: -p.allocated_days_ago)
    for protocol, story in STORIES:
        for p in order:
            if p.protocol != protocol or p.stories:
                continue
            row = _row(db, p.study_id, story.event)
            if row is None or row.status != EventStatus.PLANNED:
                continue
            in_reach = (
                row.first_day > as_of if story.kind == "reschedule" else (row.first_day < cutoff)
            )
            if in_reach:
                p.stories = (story,)
                break


def run_demo(
    db: Database,
    out_dir: Path,
    as_of: dt.date,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    from sarcoma_sched.services.protocols import initialize

    initialize(db, ACTOR, purpose=DatabasePurpose.DEMO)
    _capacities(db)
    result = DemoResult(as_of)
    patients = _cohort(random.Random(2026))
    progress(f"screening and allocating {len(patients)} synthetic patients")
    for patient in sorted(patients, key=lambda p: -p.allocated_days_ago):
        _enrol(db, patient, as_of, result)
    progress("recording what happened (actual dates, delays, a missed visit, a withdrawal)")
    _cast(db, patients, as_of)
    for patient in patients:
        if patient.study_id:
            _live(db, patient, as_of, result)
    _close_a_site(db, as_of, result)
    _theatre_week(db, as_of, result)
    progress("writing calendars")
    _export(db, out_dir, result)
    return result


# What the demo sites can do: PKUIH has two sarcoma theatre sessions a week and a 6-bed
# infusion ward; FJMUUH starts at most 4 new RT courses a week and operates Wednesday and Friday.
CAPACITIES = (
    ("PKUIH", Resource.THEATRE, {"tue": 1, "thu": 1}, None),
    (
        "PKUIH",
        Resource.INFUSION,
        dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), 6),
        None,
    ),
    ("FJMUUH", Resource.THEATRE, {"wed": 1, "fri": 1}, None),
    ("FJMUUH", Resource.RT_COURSE, None, 4),
)


def _capacities(db: Database) -> None:
    from sarcoma_sched.services.capacity import set_capacity

    for site, resource, per_weekday, per_week in CAPACITIES:
        set_capacity(db, ACTOR, site, resource, per_weekday=per_weekday, per_week=per_week)


def _theatre_week(db: Database, as_of: dt.date, result: DemoResult) -> None:
    """Two PKUIH patients whom the MDT sends straight to surgery on the same day: the same
    target, one theatre session that day, so the second surgery moves to the next session
    inside its window."""
    rng = random.Random(11)
    pair = [
        DemoPatient("NATARS", "PKUIH", _natars_values(rng), 1, arm="SURGERY_ONLY") for _ in range(2)
    ]
    for patient in pair:
        _enrol(db, patient, as_of, result)
    first, second = (_row(db, p.study_id, "surgery") for p in pair)
    if first is None or second is None:
        return
    result.capacity.append(
        f"PKUIH theatre (tue 1, thu 1): {pair[0].study_id} surgery {first.first_day} "
        f"(target {first.target}); {pair[1].study_id}, same target, moved to "
        f"{second.first_day}, the next free session in its window "
        f"({second.earliest} … {second.latest})"
    )


def _enrol(db: Database, p: DemoPatient, as_of: dt.date, result: DemoResult) -> None:
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.screening import screen

    allocated_on = as_of - dt.timedelta(days=p.allocated_days_ago)
    screened_on = allocated_on - dt.timedelta(days=3)
    # The story's today is as_of, whatever the calendar says: noon UTC is that date at every
    # demo site (all in China), so a screening before it is in the story's past.
    noon = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
    outcome = screen(db, ACTOR, p.protocol, p.site, p.values, screened_on=screened_on, now=noon)
    eligible = outcome.result.eligible
    failed = [*outcome.result.failed, *(f"{m} (no value)" for m in outcome.result.missing)]
    result.screened.append((outcome.screening_number, p.protocol, eligible, failed))
    if not eligible:
        return
    allocated = allocate_patient(
        db,
        ACTOR,
        outcome.screening_number,
        today=allocated_on,
        allocation_date=allocated_on,
        consent_date=screened_on + dt.timedelta(days=1),
        arm=p.arm,
        basis="mdt_decision" if p.arm else None,
        reason=MDT_REASONS.get(p.arm or ""),
        secret=DEMO_SECRET,
    )
    p.study_id = allocated.study_id
    result.allocated.append((allocated.study_id, p.protocol, allocated.arm, allocated.method))


def _next_due(db: Database, study_id: str, before: dt.date) -> ScheduledEvent | None:
    from sqlalchemy import select

    from sarcoma_sched.db.models import ScheduledEvent
    from sarcoma_sched.services.lookups import find_patient

    with db.read() as session:
        patient = find_patient(session, study_id)
        return session.scalars(
            select(ScheduledEvent)
            .where(
                ScheduledEvent.patient_id == patient.id,
                ScheduledEvent.status == EventStatus.PLANNED,
                ScheduledEvent.first_day < before,
            )
            .order_by(ScheduledEvent.first_day, ScheduledEvent.id)
            .limit(1)
        ).first()


def _moved(changes: Sequence[EventChange]) -> str:
    shown = [f"{c.event_id} {c.shift_days:+d}d" for c in changes[:4]]
    more = f" and {len(changes) - 4} more" if len(changes) > 4 else ""
    return (", ".join(shown) + more) or "nothing"


def _live(db: Database, p: DemoPatient, as_of: dt.date, result: DemoResult) -> None:
    """Record every event due before the last two days, as the story says; the last two days
    stay unrecorded so `overdue` has something to show."""
    from sarcoma_sched.services.events import record_event
    from sarcoma_sched.services.participation import end_participation

    stories = {s.event: s for s in p.stories}
    cutoff = as_of - dt.timedelta(days=2)
    for planned in p.stories:
        if planned.kind == "reschedule":
            _reschedule(db, p, planned, as_of, result)
    while (row := _next_due(db, p.study_id, cutoff)) is not None:
        story = stories.get(row.event_id)
        kind = story.kind if story else EventStatus.DONE
        if kind in NOT_HAPPENED:
            assert story is not None
            record_event(
                db, ACTOR, p.study_id, row.event_id, kind,
                date=None, reason=story.reason, today=as_of,
            )  # fmt: skip
            result.delays.append(f"{p.study_id} {row.event_id} {kind}: {story.reason}")
            result.recorded += 1
            continue
        day = row.first_day
        if kind == DeviationKind.LATE:
            assert story is not None
            day = _working_day(db, p.site, day + dt.timedelta(days=story.days))
        if day > as_of:
            break
        outcome = record_event(
            db, ACTOR, p.study_id, row.event_id, EventStatus.DONE, date=day,
            reason=story.reason if story and kind == DeviationKind.LATE else None, today=as_of,
        )  # fmt: skip
        result.recorded += 1
        if kind == DeviationKind.LATE:
            assert story is not None
            result.delays.append(
                f"{p.study_id} {row.event_id} done {(day - row.first_day).days} days late "
                f"({story.reason}); moved: {_moved(outcome.moved)}"
            )
        if kind == "withdraw":
            assert story is not None
            withdrawn_on = min(as_of, row.last_day + dt.timedelta(days=3))
            end = end_participation(
                db, ACTOR, p.study_id, EndKind.WITHDRAWN, story.reason,
                effective_date=withdrawn_on, today=as_of,
            )  # fmt: skip
            result.delays.append(
                f"{p.study_id} withdrawn {withdrawn_on} ({story.reason}): "
                f"{len(end.cancelled)} planned events cancelled, kept in the ITT analysis"
            )
            return


def _working_day(db: Database, site: str, day: dt.date) -> dt.date:
    from sarcoma_sched.services.lookups import site_calendar

    with db.read() as session:
        calendar = site_calendar(session, site)
    return day if calendar.is_working_day(day) else calendar.next_working_day(day)


def _reschedule(
    db: Database, p: DemoPatient, story: Story, as_of: dt.date, result: DemoResult
) -> None:
    from sarcoma_sched.errors import SarcomaSchedError
    from sarcoma_sched.services.events import reschedule_event

    row = _row(db, p.study_id, story.event)
    if row is None or row.first_day <= as_of:
        return
    target = _working_day(db, p.site, row.first_day + dt.timedelta(days=story.days))
    try:
        outcome = reschedule_event(
            db, ACTOR, p.study_id, story.event, target, reason=story.reason, today=as_of
        )
    except SarcomaSchedError as exc:  # the story asked for more than the protocol allows
        result.delays.append(f"{p.study_id} {story.event} not moved: {exc}")
        return
    result.delays.append(
        f"{p.study_id} {story.event} rescheduled {row.first_day} → {target} ({story.reason}); "
        f"moved: {_moved(outcome.moved)}"
    )


def _row(db: Database, study_id: str, event_id: str) -> ScheduledEvent | None:
    from sqlalchemy import select

    from sarcoma_sched.db.models import ScheduledEvent
    from sarcoma_sched.services.lookups import find_patient

    with db.read() as session:
        patient = find_patient(session, study_id)
        return session.scalar(
            select(ScheduledEvent).where(
                ScheduledEvent.patient_id == patient.id, ScheduledEvent.event_id == event_id
            )
        )


def _close_a_site(db: Database, as_of: dt.date, result: DemoResult) -> None:
    """PKUIH's day ward closes for two working days: the days of its next planned event at
    least three days ahead, so the closure visibly moves someone."""
    from sqlalchemy import select

    from sarcoma_sched.db.models import Patient, ScheduledEvent
    from sarcoma_sched.services.sites import close_site

    with db.read() as session:
        first = session.scalar(
            select(ScheduledEvent.first_day)
            .join(Patient, Patient.id == ScheduledEvent.patient_id)
            .where(
                Patient.site_code == "PKUIH",
                ScheduledEvent.status == EventStatus.PLANNED,
                ScheduledEvent.first_day >= as_of + dt.timedelta(days=3),
            )
            .order_by(ScheduledEvent.first_day)
            .limit(1)
        )
    first = _working_day(db, "PKUIH", first or as_of + dt.timedelta(days=10))
    last = _working_day(db, "PKUIH", first + dt.timedelta(days=1))
    outcome = close_site(db, ACTOR, "PKUIH", first, last, "day ward closed for disinfection")
    result.closure.append(
        f"PKUIH closed {first} … {last}: "
        + (
            "; ".join(f"{sid} {_moved(changes)}" for sid, changes in outcome.moved.items())
            or "no planned event fell on those days"
        )
    )


def _export(db: Database, out_dir: Path, result: DemoResult) -> None:
    from sarcoma_sched.exports.ical import to_ics
    from sarcoma_sched.files import write_atomic
    from sarcoma_sched.services.queries import patient_calendar, site_calendar_export

    out_dir.mkdir(parents=True, exist_ok=True)
    with db.read() as session:
        for study_id, *_ in result.allocated:
            events, name = patient_calendar(session, study_id)
            path = out_dir / f"{study_id}.ics"
            write_atomic(path, to_ics(events, name))
            result.calendars.append(path)
        for site in ("PKUIH", "FJMUUH"):
            events, name = site_calendar_export(session, site)
            path = out_dir / f"site-{site}.ics"
            write_atomic(path, to_ics(events, name))
            result.calendars.append(path)
