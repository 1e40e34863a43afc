"""Site workload: how many event-days of each kind fall on each day or week (the counts; the
chart is ``reports.workload``).

An *event-day* is one patient at the site on one day for one planned event: each RT fraction and
each inpatient infusion day counts on its own day (five fractions are five event-days, a D1-D5
infusion five ward days), a surgery or a follow-up visit one. Planned and done events count;
missed, skipped and cancelled ones do not (nobody comes). Oral dosing (anlotinib D1-D14) is
home medication, so it is not ward or clinic load and is left out; its cycle's infusion and
labs are counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.calendar.capacity import week_of
from sarcoma_sched.db.models import Patient, ScheduledEvent
from sarcoma_sched.errors import Conflict, InputError
from sarcoma_sched.limits import MAX_REPORT_DAYS
from sarcoma_sched.services.lookups import get_site, site_calendar
from sarcoma_sched.vocabulary import BOOKED_STATUSES, WORKLOAD_KINDS

__all__ = [
    "COUNTED_STATUSES",
    "non_working_days",
    "workload",
    "workload_columns",
]

COUNTED_STATUSES = BOOKED_STATUSES
PERIODS = ("day", "week")


def workload_columns(by: str) -> list[str]:
    return [by, *WORKLOAD_KINDS, "total"]


def _period(day: dt.date, by: str) -> dt.date:
    return week_of(day) if by == "week" else day


def workload(
    session: Session,
    date_from: dt.date,
    date_to: dt.date,
    *,
    site: str | None = None,
    protocol: str | None = None,
    by: str = "day",
) -> list[dict[str, Any]]:
    """One row per day (or per week, keyed by its Monday) in [from, to], zeros included, with
    event-days per kind and the total."""
    if by not in PERIODS:
        raise Conflict(f"--by {by}: choose day or week")
    if date_to < date_from:
        raise Conflict(f"--to {date_to} is before --from {date_from}")
    days = (date_to - date_from).days + 1
    if days > MAX_REPORT_DAYS:
        # One row a day is built for the whole span: 300 years took minutes and gigabytes.
        raise InputError(
            f"--from {date_from} --to {date_to} spans {days:,} days; a workload report covers "
            f"at most {MAX_REPORT_DAYS:,} (three years)"
        )
    if site is not None:
        site = get_site(session, site).code
    query = (
        select(ScheduledEvent.kind, ScheduledEvent.days)
        .join(Patient, Patient.id == ScheduledEvent.patient_id)
        .where(
            ScheduledEvent.first_day <= date_to,
            ScheduledEvent.last_day >= date_from,
            ScheduledEvent.status.in_(COUNTED_STATUSES),
            ScheduledEvent.kind.in_(WORKLOAD_KINDS),
        )
    )
    if site is not None:
        query = query.where(Patient.site_code == site)
    if protocol is not None:
        query = query.where(Patient.protocol_id == protocol.upper())

    rows: dict[dt.date, dict[str, Any]] = {}
    day = date_from
    while day <= date_to:
        key = _period(day, by)
        rows.setdefault(key, {by: key, **dict.fromkeys(WORKLOAD_KINDS, 0), "total": 0})
        day += dt.timedelta(days=1)
    for kind, days in session.execute(query):
        for text in days:
            d = dt.date.fromisoformat(text)
            if date_from <= d <= date_to:
                row = rows[_period(d, by)]
                row[kind] += 1
                row["total"] += 1
    return [rows[k] for k in sorted(rows)]


def non_working_days(
    session: Session, site: str, date_from: dt.date, date_to: dt.date
) -> list[dt.date]:
    """The site's days off in [from, to]: weekends, public holidays (make-up working days are
    working days) and recorded closures, from the same calendar the planner uses."""
    calendar = site_calendar(session, site.upper())
    days = []
    day = date_from
    while day <= date_to:
        if not calendar.is_working_day(day):
            days.append(day)
        day += dt.timedelta(days=1)
    return days
