"""The sites: calendar, how many patients each has allocated, and the closures still ahead."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Allocation, Patient, Site, SiteClosure
from sarcoma_sched.vocabulary import SiteDayKind

__all__ = ["SITE_COLUMNS", "list_sites"]

SITE_COLUMNS = [
    "site",
    "name",
    "time_zone",
    "holidays",
    "inpatient_over_holidays",
    "allocated",
    "closures",
]


def list_sites(session: Session, today: dt.date) -> list[dict[str, object]]:
    patients = dict(
        session.execute(
            select(Patient.site_code, func.count(Allocation.id))
            .join(Allocation, Allocation.patient_id == Patient.id)
            .group_by(Patient.site_code)
        ).all()
    )
    closures: dict[str, list[str]] = {}
    for c in session.scalars(
        select(SiteClosure)
        .where(SiteClosure.last_day >= today, SiteClosure.kind == SiteDayKind.CLOSED)
        .order_by(SiteClosure.first_day)
    ):
        span = str(c.first_day) if c.first_day == c.last_day else f"{c.first_day}..{c.last_day}"
        closures.setdefault(c.site_code, []).append(span)
    return [
        {
            "site": s.code,
            "name": s.name,
            "time_zone": s.time_zone,
            "holidays": s.holiday_country
            + (f"-{s.holiday_subdivision}" if s.holiday_subdivision else ""),
            "inpatient_over_holidays": "allow" if s.inpatient_over_holidays else "avoid",
            "allocated": patients.get(s.code, 0),
            "closures": ", ".join(closures.get(s.code, [])),
        }
        for s in session.scalars(select(Site).order_by(Site.code))
    ]
