"""Sites: add one, close one for some days or open it on an extra day (and re-plan whoever
that moves)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.columns import text_length
from sarcoma_sched.db.models import (
    Allocation,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
    Site,
    SiteClosure,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, InputError, NotFound
from sarcoma_sched.limits import MAX_CLOSURE_DAYS, is_time_zone, shown
from sarcoma_sched.services.events import EventChange, patient_events, replan_patient
from sarcoma_sched.services.lookups import get_site, site_calendar
from sarcoma_sched.services.reasons import coded
from sarcoma_sched.vocabulary import EventStatus, ReasonCode, SiteDayKind

__all__ = [
    "ClosureOutcome",
    "DoneOnClosure",
    "SiteOutcome",
    "add_site",
    "close_site",
    "open_site",
    "revoke_closure",
    "revoke_open_day",
    "set_site",
]

SITE_CODE = re.compile(r"[A-Z][A-Z0-9]{1,15}")


@dataclass(frozen=True)
class DoneOnClosure:
    """An event recorded done on a day the new closure covers: kept as recorded, reported."""

    study_id: str
    event_id: str
    days: tuple[dt.date, ...]  # its days that fall on the closure

    def __str__(self) -> str:
        return f"{self.study_id} {self.event_id} ({', '.join(map(str, self.days))})"


@dataclass(frozen=True)
class ClosureOutcome:
    site_code: str
    first_day: dt.date
    last_day: dt.date
    moved: dict[str, list[EventChange]]  # study id → what moved
    flags: dict[str, list[str]]  # study id → events that could not be placed cleanly
    # Done events with days on the closure (one entered after the fact): never changed, never
    # made deviations, but the coordinator should know the record and the closure disagree.
    done: tuple[DoneOnClosure, ...] = ()


@dataclass(frozen=True)
class SiteOutcome:
    site_code: str
    changed: bool
    moved: dict[str, list[EventChange]]
    flags: dict[str, list[str]]


def _check_calendar(time_zone: str, country: str, subdivision: str | None) -> None:
    import holidays

    if not is_time_zone(time_zone):
        raise Conflict(f"--time-zone: {shown(time_zone)} is not an IANA time zone")
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise Conflict(
            f"--holiday-country: {shown(country)} is not a country the holidays package has"
        )
    if subdivision is not None and subdivision not in supported[country]:
        choices = ", ".join(supported[country]) or "none"
        raise Conflict(
            f"--holiday-subdivision: {shown(subdivision)} is not a subdivision of {country} "
            f"(known: {choices})"
        )


def add_site(
    db: Database,
    actor: str,
    code: str,
    name: str,
    *,
    time_zone: str,
    holiday_country: str,
    holiday_subdivision: str | None = None,
) -> Site:
    code = code.strip().upper()
    if not SITE_CODE.fullmatch(code):
        raise Conflict(f"site code {shown(code)}: 2-16 letters and digits, starting with a letter")
    if not name.strip():
        raise Conflict("a site needs a name")
    # What the columns hold, checked before the write: SQLite would store a longer name that
    # PostgreSQL refuses.
    longest = text_length(Site.name)
    if len(name.strip()) > longest:
        raise InputError(
            f"--name: {len(name.strip())} characters; a site name has at most {longest}"
        )
    country = holiday_country.strip().upper()
    _check_calendar(time_zone, country, holiday_subdivision)
    with db.write(actor, "site add") as session:
        if session.get(Site, code) is not None:
            raise Conflict(f"site {code} already exists")
        site = Site(
            code=code,
            name=name.strip(),
            time_zone=time_zone,
            holiday_country=country,
            holiday_subdivision=holiday_subdivision,
            created_at=utc_now(),
        )
        session.add(site)
        session.flush()
        return site


def close_site(
    db: Database,
    actor: str,
    code: str,
    first_day: dt.date,
    last_day: dt.date,
    reason: str,
    reason_code: str | None = None,
) -> ClosureOutcome:
    """Record days the site cannot treat and re-plan every patient with planned events there.

    Events already recorded never move; planned ones that fall on the closure move to the next
    day their window and the protocol's constraints allow, or are flagged when none does. A
    closure entered after the fact never changes a done event either, nor makes it a deviation
    (the record says the site treated that day): such events are reported in ``done``.
    """
    if last_day < first_day:
        raise Conflict(f"closure ends ({last_day}) before it starts ({first_day})")
    days = (last_day - first_day).days + 1
    if days > MAX_CLOSURE_DAYS:
        # Every planned event inside would be pushed past the closure: a closure of centuries
        # moved calendars to before 1900 and after 2199, dates no trial can mean.
        raise InputError(
            f"closure {first_day}..{last_day} lasts {days:,} days; a closure lasts at most "
            f"{MAX_CLOSURE_DAYS} days"
        )
    # The code reaches the site calendar; the words (--reason) stay in the database.
    why, note = coded(
        reason_code,
        reason,
        default=ReasonCode.SITE_CLOSED,
        required="a closure needs a reason (e.g. ward refurbishment)",
    )
    with db.write(actor, "site close") as session:
        site = get_site(session, code)
        opened = _recorded(session, site, SiteDayKind.OPEN, first_day, last_day)
        if opened:
            listed = ", ".join(str(r.first_day) for r in opened)
            raise Conflict(
                f"{site.code} is recorded open on {listed}: revoke that first "
                f"(site open {site.code} {opened[0].first_day} --revoke)"
            )
        session.add(
            SiteClosure(
                site_code=site.code,
                first_day=first_day,
                last_day=last_day,
                reason=str(why),
                note=note,
                created_at=utc_now(),
                kind=SiteDayKind.CLOSED,
            )
        )
        session.flush()
        moved, flags = _replan_site(session, site)
        done = _done_on(session, site, first_day, last_day)
        return ClosureOutcome(site.code, first_day, last_day, moved, flags, done)


def revoke_closure(
    db: Database,
    actor: str,
    code: str,
    first_day: dt.date,
    last_day: dt.date,
) -> ClosureOutcome:
    """Take back a closure recorded by mistake (the one from ``first_day`` to ``last_day``
    exactly) and re-plan the site's patients without it: planned events the closure pushed
    return to the days the planner prefers, printed old → new. The row is deleted; the audit
    log keeps it (who recorded it, when, why, and who revoked it)."""
    with db.write(actor, "site close --revoke") as session:
        site = get_site(session, code)
        rows = list(
            session.scalars(
                select(SiteClosure).where(
                    SiteClosure.site_code == site.code,
                    SiteClosure.kind == SiteDayKind.CLOSED,
                    SiteClosure.first_day == first_day,
                    SiteClosure.last_day == last_day,
                )
            )
        )
        if not rows:
            recorded = session.execute(
                select(SiteClosure.first_day, SiteClosure.last_day)
                .where(SiteClosure.site_code == site.code, SiteClosure.kind == SiteDayKind.CLOSED)
                .order_by(SiteClosure.first_day)
            ).all()
            known = ", ".join(f"{a}..{b}" for a, b in recorded) or "none"
            raise NotFound(
                f"{site.code} has no closure {first_day}..{last_day} to revoke (closures: {known})"
            )
        for row in rows:
            session.delete(row)
        session.flush()
        moved, flags = _replan_site(session, site)
        return ClosureOutcome(site.code, first_day, last_day, moved, flags)


def open_site(
    db: Database,
    actor: str,
    code: str,
    day: dt.date,
    reason: str | None = None,
    reason_code: str | None = None,
) -> ClosureOutcome:
    """Record an extra working day at a site (a Sunday, or a public holiday, on which it
    treats) and re-plan its patients: a planned event the day now lets be placed earlier, or
    nearer its target, moves there, printed old → new. Done events never move."""
    why, note = coded(reason_code, reason, default=ReasonCode.OTHER)
    with db.write(actor, "site open") as session:
        site = get_site(session, code)
        closed = _recorded(session, site, SiteDayKind.CLOSED, day, day)
        if closed:
            c = closed[0]
            raise Conflict(
                f"{site.code} is recorded closed {c.first_day}..{c.last_day}: revoke that "
                f"first (site close {site.code} --from {c.first_day} --to {c.last_day} --revoke)"
            )
        calendar = site_calendar(session, site.code)
        if calendar.is_working_day(day):
            raise Conflict(f"{day} is already a working day at {site.code}: nothing to open")
        session.add(
            SiteClosure(
                site_code=site.code,
                first_day=day,
                last_day=day,
                reason=str(why or ReasonCode.OTHER),
                note=note,
                created_at=utc_now(),
                kind=SiteDayKind.OPEN,
            )
        )
        session.flush()
        moved, flags = _replan_site(session, site)
        return ClosureOutcome(site.code, day, day, moved, flags)


def revoke_open_day(db: Database, actor: str, code: str, day: dt.date) -> ClosureOutcome:
    """Take back an extra working day recorded by mistake: the row is deleted (the audit log
    keeps it and who revoked it) and the site's patients are re-planned without it."""
    with db.write(actor, "site open --revoke") as session:
        site = get_site(session, code)
        rows = _recorded(session, site, SiteDayKind.OPEN, day, day)
        if not rows:
            known = session.scalars(
                select(SiteClosure.first_day)
                .where(SiteClosure.site_code == site.code, SiteClosure.kind == SiteDayKind.OPEN)
                .order_by(SiteClosure.first_day)
            ).all()
            listed = ", ".join(map(str, known)) or "none"
            raise NotFound(
                f"{site.code} has no extra working day {day} to revoke (open days: {listed})"
            )
        for row in rows:
            session.delete(row)
        session.flush()
        moved, flags = _replan_site(session, site)
        return ClosureOutcome(site.code, day, day, moved, flags)


def _recorded(
    session: Session, site: Site, kind: SiteDayKind, first_day: dt.date, last_day: dt.date
) -> list[SiteClosure]:
    """The site's recorded days of ``kind`` that overlap ``first_day … last_day``."""
    return list(
        session.scalars(
            select(SiteClosure)
            .where(
                SiteClosure.site_code == site.code,
                SiteClosure.kind == kind,
                SiteClosure.first_day <= last_day,
                SiteClosure.last_day >= first_day,
            )
            .order_by(SiteClosure.first_day)
        )
    )


def set_site(db: Database, actor: str, code: str, *, inpatient_over_holidays: bool) -> SiteOutcome:
    """Change a site's planning setting and re-plan its patients' planned events under it."""
    with db.write(actor, "site set") as session:
        site = get_site(session, code)
        changed = site.inpatient_over_holidays != inpatient_over_holidays
        site.inpatient_over_holidays = inpatient_over_holidays
        session.flush()
        moved, flags = _replan_site(session, site) if changed else ({}, {})
        return SiteOutcome(site.code, changed, moved, flags)


def _done_on(
    session: Session, site: Site, first_day: dt.date, last_day: dt.date
) -> tuple[DoneOnClosure, ...]:
    """Every event of the site's patients recorded done with a day in ``first_day … last_day``
    (withdrawn patients included: their history is the site's too)."""
    rows = session.execute(
        select(Patient.study_id, ScheduledEvent.event_id, ScheduledEvent.days)
        .join(Patient, Patient.id == ScheduledEvent.patient_id)
        .where(
            Patient.site_code == site.code,
            ScheduledEvent.status == EventStatus.DONE,
            ScheduledEvent.first_day <= last_day,
            ScheduledEvent.last_day >= first_day,
        )
        .order_by(Patient.study_id, ScheduledEvent.first_day, ScheduledEvent.id)
    ).all()
    found = []
    for study_id, event_id, days in rows:
        closed = tuple(
            d for d in (dt.date.fromisoformat(text) for text in days) if first_day <= d <= last_day
        )
        if closed:  # a course with a gap may straddle the closure without a day on it
            found.append(DoneOnClosure(study_id or "", event_id, closed))
    return tuple(found)


def _replan_site(
    session: Session, site: Site
) -> tuple[dict[str, list[EventChange]], dict[str, list[str]]]:
    """Re-plan every patient of the site still on study with planned events: what moved and
    what is flagged, by study id."""
    moved: dict[str, list[EventChange]] = {}
    flags: dict[str, list[str]] = {}
    active = (
        select(Patient)
        .join(Allocation, Allocation.patient_id == Patient.id)
        .where(
            Patient.site_code == site.code,
            select(ScheduledEvent.id)
            .where(
                ScheduledEvent.patient_id == Patient.id,
                ScheduledEvent.status == EventStatus.PLANNED,
            )
            .exists(),
            ~select(ParticipationEnd.id).where(ParticipationEnd.patient_id == Patient.id).exists(),
        )
        .order_by(Patient.study_id)
    )
    for patient in session.scalars(active).all():
        plan, changes = replan_patient(session, patient, patient_events(session, patient))
        if changes:
            moved[patient.study_id or ""] = changes
        problems = [f"{e.id}: {f.message}" for e in plan.events for f in e.flags]
        if problems:
            flags[patient.study_id or ""] = problems
    session.flush()
    return moved, flags
