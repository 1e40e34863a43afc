"""A site's resource limits and the bookings against them, and the capacity listing
(``capacity_usage``: booked vs capacity per slot).

``site_limits`` and ``bookings`` are also what planning reads inside a write transaction
(``services.capacity.site_capacity``): there the database's one write lock serialises two
coordinators placing surgeries at once, so the second sees the first's booking.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar.capacity import RESOURCES, Limit, resource_units, week_of
from sarcoma_sched.db.core_read import core_execute
from sarcoma_sched.db.models import Patient, ScheduledEvent, SiteResource
from sarcoma_sched.services.lookups import get_site
from sarcoma_sched.vocabulary import BOOKED_STATUSES

__all__ = ["USAGE_COLUMNS", "bookings", "capacity_usage", "site_limits"]

USAGE_COLUMNS = ["slot", "resource", "booked", "capacity", "free", "over_capacity"]
_KINDS = tuple(kind for kind, _, _ in RESOURCES.values())


# Built once: every allocation and re-plan reads it.
_LIMITS = select(SiteResource.resource, SiteResource.weekday, SiteResource.capacity).where(
    SiteResource.site_code == bindparam("site")
)


def site_limits(session: Session, site_code: str) -> dict[str, Limit]:
    per_weekday: dict[str, dict[int, int]] = {}
    limits: dict[str, Limit] = {}
    for row in core_execute(session, _LIMITS, {"site": site_code}):
        if row.weekday is None:
            limits[row.resource] = Limit(row.resource, per_week=row.capacity)
        else:
            per_weekday.setdefault(row.resource, {})[row.weekday] = row.capacity
    for resource, days in per_weekday.items():
        limits[resource] = Limit(resource, per_weekday=days)
    return limits


# Built once, as _LIMITS: every allocation and re-plan reads the site's bookings.
_BOOKINGS = (
    select(ScheduledEvent.kind, ScheduledEvent.days)
    .join(Patient, Patient.id == ScheduledEvent.patient_id)
    .where(
        Patient.site_code == bindparam("site"),
        ScheduledEvent.status.in_(BOOKED_STATUSES),
        ScheduledEvent.kind.in_(_KINDS),
        ScheduledEvent.last_day >= bindparam("from"),
    )
)
_BOOKINGS_OF_OTHERS = _BOOKINGS.where(ScheduledEvent.patient_id != bindparam("patient"))


def bookings(
    session: Session, site_code: str, since: dt.date, exclude_patient: int | None
) -> Counter[tuple[str, dt.date]]:
    params = {"site": site_code, "from": week_of(since), "patient": exclude_patient}
    query = _BOOKINGS if exclude_patient is None else _BOOKINGS_OF_OTHERS
    booked: Counter[tuple[str, dt.date]] = Counter()
    for kind, days in core_execute(session, query, params):
        booked.update(resource_units(kind, (dt.date.fromisoformat(d) for d in days)))
    return booked


def capacity_usage(
    session: Session,
    site_code: str,
    date_from: dt.date,
    date_to: dt.date,
) -> list[dict[str, Any]]:
    """Booked vs capacity per limited resource and slot (day, or week for weekly resources)."""
    site = get_site(session, site_code)
    limits = site_limits(session, site.code)
    booked = bookings(session, site.code, date_from, None)
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
