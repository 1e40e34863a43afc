"""Site capacities in the database: set them, and load them with everyone's bookings for the
planner (the listing of use is ``services.queries.capacity_usage``).

Bookings are read inside the caller's write transaction, which holds the database's one write
lock (``Database.write``): two coordinators placing surgeries at once are serialised, so the
second sees the first's booking and a session is never overbooked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar.capacity import RESOURCES, WEEKDAYS, Capacity, Limit
from sarcoma_sched.db.models import SiteResource
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, InputError
from sarcoma_sched.limits import MAX_CAPACITY
from sarcoma_sched.services.lookups import get_site
from sarcoma_sched.services.queries.capacity import bookings, site_limits

__all__ = ["set_capacity", "site_capacity"]


def site_capacity(
    session: Session, site_code: str, *, exclude_patient: int | None, since: dt.date
) -> Capacity | None:
    """The site's limits and every other patient's bookings from ``since`` on; None when the
    site limits nothing (planning then ignores capacity)."""
    limits = site_limits(session, site_code)
    if not limits:
        return None
    return Capacity(limits, bookings(session, site_code, since, exclude_patient))


def _check_at_most(what: str, n: int) -> None:
    # The command line refuses these already; a library caller gets the same bound, before the
    # write (PostgreSQL's integer would refuse 2**31 mid-transaction, SQLite store it).
    if n > MAX_CAPACITY:
        raise InputError(f"{what}: a capacity is at most {MAX_CAPACITY}")


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
        _check_at_most(f"--day {name}={n}", n)
        days[WEEKDAYS.index(key)] = n
    if per_week is not None and per_week < 0:
        raise Conflict(f"--week {per_week}: a capacity cannot be negative")
    if per_week is not None:
        _check_at_most(f"--week {per_week}", per_week)
    with db.write(actor, "site capacity") as session:
        site = get_site(session, site_code)
        # Row by row through the session, so each replaced capacity gets its audit entry (a bulk
        # DELETE would bypass the log; the write guard refuses one). Flushed before the new rows
        # go in: the unit of work would insert first and trip the unique weekday.
        for old in session.scalars(
            select(SiteResource).where(
                SiteResource.site_code == site.code, SiteResource.resource == resource
            )
        ):
            session.delete(old)
        session.flush()
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
