"""Site capacities in the database: set them, load them with everyone's bookings, report use.

Bookings are read inside the caller's write transaction, which holds the database's one write
lock (``Database.write``): two coordinators placing surgeries at once are serialised, so the
second sees the first's booking and a session is never overbooked.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar.capacity import (
    RESOURCES,
    WEEKDAYS,
    Capacity,
    Limit,
    resource_units,
    week_of,
)
from sarcoma_sched.db.models import Patient, ScheduledEvent, SiteResource
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict

__all__ = [
    "USAGE_COLUMNS",
    "capacity_usage",
    "set_capacity",
    "site_capacity",
    "site_limits",
]

USAGE_COLUMNS = ["slot", "resource", "booked", "capacity", "free", "over_capacity"]
_KINDS = tuple(kind for kind, _, _ in RESOURCES.values())


def site_limits(session: Session, site_code: str) -> dict[str, Limit]:
    per_weekday: dict[str, dict[int, int]] = {}
    limits: dict[str, Limit] = {}
    for row in session.scalars(select(SiteResource).where(SiteResource.site_code == site_code)):
        if row.weekday is None:
            limits[row.resource] = Limit(row.resource, per_week=row.capacity)
        else:
            per_weekday.setdefault(row.resource, {})[row.weekday] = row.capacity
    for resource, days in per_weekday.items():
        limits[resource] = Limit(resource, per_weekday=days)
    return limits


def _bookings(
    session: Session, site_code: str, since: dt.date, exclude_patient: int | None
) -> Counter[tuple[str, dt.date]]:
    query = (
        select(ScheduledEvent.kind, ScheduledEvent.days)
        .join(Patient, Patient.id == ScheduledEvent.patient_id)
        .where(
            Patient.site_code == site_code,
            ScheduledEvent.status.in_(("planned", "done")),
            ScheduledEvent.kind.in_(_KINDS),
            ScheduledEvent.last_day >= week_of(since),
        )
    )
    if exclude_patient is not None:
        query = query.where(ScheduledEvent.patient_id != exclude_patient)
    booked: Counter[tuple[str, dt.date]] = Counter()
    for kind, days in session.execute(query):
        booked.update(resource_units(kind, (dt.date.fromisoformat(d) for d in days)))
    return booked


def site_capacity(
    session: Session, site_code: str, *, exclude_patient: int | None, since: dt.date
) -> Capacity | None:
    """The site's limits and every other patient's bookings from ``since`` on; None when the
    site limits nothing (planning then ignores capacity)."""
    limits = site_limits(session, site_code)
    if not limits:
        return None
    return Capacity(limits, _bookings(session, site_code, since, exclude_patient))


def set_capacity(
    db: Database,
    actor: str,
    site_code: str,
    resource: str,
    *,
    per_weekday: Mapping[str, int] | None = None,
    per_week: int | None = None,
) -> Limit | None:
    """Replace a resource's capacity at a site; neither given removes the limit.

    Patients already booked keep their days: a lower capacity shows as over-capacity in
    ``capacity`` and is flagged when their calendar is next re-planned.
    """
    from sarcoma_sched.services.sites import get_site

    if resource not in RESOURCES:
        raise Conflict(f"resource must be one of {', '.join(RESOURCES)} (got {resource!r})")
    if per_weekday and per_week is not None:
        raise Conflict("give capacities per weekday (--day) or per week (--week), not both")
    if RESOURCES[resource][2] == "week" and per_weekday:
        raise Conflict(f"{resource} is counted per week: use --week N")
    if RESOURCES[resource][2] == "day" and per_week is not None:
        raise Conflict(f"{resource} is counted per day: use --day mon=N ...")
    days: dict[int, int] = {}
    for name, n in (per_weekday or {}).items():
        key = name.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise Conflict(f"--day {name}={n}: the day must be one of {', '.join(WEEKDAYS)}")
        if n < 0:
            raise Conflict(f"--day {name}={n}: a capacity cannot be negative")
        days[WEEKDAYS.index(key)] = n
    if per_week is not None and per_week < 0:
        raise Conflict(f"--week {per_week}: a capacity cannot be negative")
    with db.write(actor, "site capacity") as session:
        site = get_site(session, site_code)
        session.execute(
            delete(SiteResource).where(
                SiteResource.site_code == site.code, SiteResource.resource == resource
            ),
            execution_options={"synchronize_session": "fetch"},
        )
        now = utc_now()
        rows = [
            SiteResource(
                site_code=site.code, resource=resource, weekday=d, capacity=n, updated_at=now
            )
            for d, n in sorted(days.items())
        ]
        if per_week is not None:
            rows.append(
                SiteResource(
                    site_code=site.code,
                    resource=resource,
                    weekday=None,
                    capacity=per_week,
                    updated_at=now,
                )
            )
        session.add_all(rows)
        session.flush()
        return site_limits(session, site.code).get(resource)


def capacity_usage(
    session: Session,
    site_code: str,
    date_from: dt.date,
    date_to: dt.date,
) -> list[dict[str, Any]]:
    """Booked vs capacity per limited resource and slot (day, or week for weekly resources)."""
    from sarcoma_sched.services.sites import get_site

    site = get_site(session, site_code)
    limits = site_limits(session, site.code)
    booked = _bookings(session, site.code, date_from, None)
    rows = []
    for resource, limit in sorted(limits.items()):
        period = RESOURCES[resource][2]
        slot = week_of(date_from) if period == "week" else date_from
        step = dt.timedelta(days=7 if period == "week" else 1)
        while slot <= date_to:
            capacity = limit.at(slot)
            used = booked[(resource, slot)]
            if capacity or used:
                rows.append(
                    {
                        "slot": slot,
                        "resource": resource,
                        "booked": used,
                        "capacity": capacity,
                        "free": max(capacity - used, 0),
                        "over_capacity": max(used - capacity, 0),
                    }
                )
            slot += step
    rows.sort(key=lambda r: (r["slot"], r["resource"]))
    return rows
