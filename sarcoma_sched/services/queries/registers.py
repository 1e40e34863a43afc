"""The registers a coordinator and a data manager page through: patients and screenings.

Plain dict rows, one page at a time (``Page``): a stable order (by protocol, then the number a
patient was given, then the row's id) so that ``offset`` and ``limit`` walk every row exactly
once. Who may see a row is decided below this module: on PostgreSQL the row-level security of
``patients`` (and of the tables keyed by patient) shows a site role only its sites' rows, so the
same statement lists a coordinator's own patients and a data manager's whole network.

No name or birth date is read: a patient is his screening number and study id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, case, cast, func, literal, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    Screening,
)
from sarcoma_sched.services.lookups import get_site
from sarcoma_sched.vocabulary import EndKind, PatientStatus

__all__ = [
    "LISTED_STATUSES",
    "PATIENT_COLUMNS",
    "SCREENING_COLUMNS",
    "SCREENING_RESULTS",
    "VOIDED_CHOICES",
    "Page",
    "patient_listing",
    "screening_listing",
]

PATIENT_COLUMNS = [
    "screening_number",
    "study_id",
    "protocol",
    "site",
    "status",
    "arm",
    "screened_on",
    "enrolled_on",
    "allocated_on",
]
SCREENING_COLUMNS = [
    "screening",
    "screening_number",
    "study_id",
    "protocol",
    "site",
    "screened_on",
    "result",
    "failed",
    "missing",
    "voided",
]

# Where a patient stands now, one word each (``PatientStatus``): ``screened`` is a patient whose
# latest counting screening did not pass, ``eligible`` one that passed and is not yet enrolled;
# an allocated patient is ``on_study``, ``withdrawn`` or ``excluded``. ``allocated`` as a filter
# means any of those three.
LISTED_STATUSES = (
    PatientStatus.SCREENED,
    PatientStatus.ELIGIBLE,
    PatientStatus.ENROLLED,
    PatientStatus.ALLOCATED,
    PatientStatus.ON_STUDY,
    PatientStatus.WITHDRAWN,
    PatientStatus.EXCLUDED,
)
SCREENING_RESULTS = ("eligible", "not_eligible", "incomplete")
VOIDED_CHOICES = ("include", "exclude", "only")


@dataclass(frozen=True)
class Page:
    """One page of a listing: its rows, where it starts, and how many rows match in all."""

    rows: list[dict[str, Any]]
    offset: int
    total: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.rows)
        return end if end < self.total else None


def _page(session: Session, query: Select[Any], offset: int, limit: int | None) -> tuple[Any, int]:
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    paged = query.offset(offset)
    if limit is not None:
        paged = paged.limit(limit)
    return session.execute(paged).all(), int(total)


def _latest_counting() -> Any:
    """Each patient's latest screening that still counts (not voided), by id."""
    return (
        select(Screening.patient_id, func.max(Screening.id).label("id"))
        .where(Screening.voided_at.is_(None))
        .group_by(Screening.patient_id)
        .subquery()
    )


def patient_listing(
    session: Session,
    *,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
    status: str | None = None,
    enrolled_from: dt.date | None = None,
    enrolled_to: dt.date | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Page:
    """Patients with where each stands. ``enrolled_on`` is the consent date the enrolment
    recorded (a local date at the site, as the coordinator gave it)."""
    latest = _latest_counting()
    latest_row = Screening.__table__.alias("latest_screening")
    status_expr = case(
        (ParticipationEnd.kind == EndKind.WITHDRAWN, literal(PatientStatus.WITHDRAWN.value)),
        (ParticipationEnd.kind == EndKind.EXCLUDED, literal(PatientStatus.EXCLUDED.value)),
        (Allocation.id.is_not(None), literal(PatientStatus.ON_STUDY.value)),
        (Enrollment.id.is_not(None), literal(PatientStatus.ENROLLED.value)),
        (latest_row.c.eligible.is_(True), literal(PatientStatus.ELIGIBLE.value)),
        else_=literal(PatientStatus.SCREENED.value),
    )
    query = (
        select(
            Patient.screening_number,
            Patient.study_id,
            Patient.protocol_id,
            Patient.site_code,
            status_expr.label("status"),
            Allocation.arm,
            latest_row.c.screened_on,
            Enrollment.consent_date,
            Allocation.allocation_date,
        )
        .select_from(Patient)
        .outerjoin(latest, latest.c.patient_id == Patient.id)
        .outerjoin(latest_row, latest_row.c.id == latest.c.id)
        .outerjoin(Enrollment, Enrollment.patient_id == Patient.id)
        .outerjoin(Allocation, Allocation.patient_id == Patient.id)
        .outerjoin(ParticipationEnd, ParticipationEnd.patient_id == Patient.id)
    )
    if site:
        query = query.where(Patient.site_code == site.upper())
    if protocol:
        query = query.where(Patient.protocol_id == protocol.upper())
    if arm:
        query = query.where(Allocation.arm == arm.upper())
    if status == PatientStatus.ALLOCATED:
        query = query.where(Allocation.id.is_not(None))
    elif status:
        query = query.where(status_expr == status)
    if enrolled_from:
        query = query.where(Enrollment.consent_date >= enrolled_from)
    if enrolled_to:
        query = query.where(Enrollment.consent_date <= enrolled_to)
    query = query.order_by(Patient.protocol_id, Patient.screening_number, Patient.id)
    rows, total = _page(session, query, offset, limit)
    if site and not total:
        get_site(session, site)  # a mistyped site is a mistake to name, not an empty list
    return Page(
        [
            {
                "screening_number": r.screening_number,
                "study_id": r.study_id,
                "protocol": r.protocol_id,
                "site": r.site_code,
                "status": r.status,
                "arm": r.arm,
                "screened_on": r.screened_on,
                "enrolled_on": r.consent_date,
                "allocated_on": r.allocation_date,
            }
            for r in rows
        ],
        offset,
        total,
    )


def _failed_clause(criterion: str) -> Any:
    # The failed ids are a JSON list inside ``results``; its text form is the same on both
    # backends, and an id is quoted there, so '"INC-01"' does not match 'INC-011'. It also
    # matches the id under "missing" or "criteria": the exact test is made on the rows read.
    return cast(Screening.results, String).like(f'%"{criterion}"%')


def screening_listing(
    session: Session,
    *,
    site: str | None = None,
    protocol: str | None = None,
    result: str | None = None,
    failed: str | None = None,
    voided: str = "include",
    screened_from: dt.date | None = None,
    screened_to: dt.date | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Page:
    """Every screening, voided ones included unless asked otherwise. ``result`` is
    ``eligible``, ``not_eligible`` (a criterion failed) or ``incomplete`` (none failed, a value
    missing); ``failed`` keeps screenings that failed that criterion id."""
    query = select(
        Screening.id,
        Screening.screened_on,
        Screening.eligible,
        Screening.results,
        Screening.voided_at,
        Screening.void_reason,
        Patient.screening_number,
        Patient.study_id,
        Patient.protocol_id,
        Patient.site_code,
    ).join(Patient, Patient.id == Screening.patient_id)
    if site:
        query = query.where(Patient.site_code == site.upper())
    if protocol:
        query = query.where(Patient.protocol_id == protocol.upper())
    if screened_from:
        query = query.where(Screening.screened_on >= screened_from)
    if screened_to:
        query = query.where(Screening.screened_on <= screened_to)
    if voided == "exclude":
        query = query.where(Screening.voided_at.is_(None))
    elif voided == "only":
        query = query.where(Screening.voided_at.is_not(None))
    if result == "eligible":
        query = query.where(Screening.eligible.is_(True))
    elif result is not None:
        query = query.where(Screening.eligible.is_(False))
    query = query.order_by(Patient.protocol_id, Patient.screening_number, Screening.id)
    if result in ("not_eligible", "incomplete") or failed:
        # What failed is inside the stored result (JSON): narrowed by SQL where it can be,
        # decided exactly here, then paged.
        if failed:
            query = query.where(_failed_clause(failed))
        rows = [r for r in session.execute(query).all() if _keeps(r.results, result, failed)]
        total = len(rows)
        rows = rows[offset:] if limit is None else rows[offset : offset + limit]
    else:
        rows, total = _page(session, query, offset, limit)
    if site and not total:
        get_site(session, site)
    return Page([_screening_row(r) for r in rows], offset, total)


def _ids(results: Any, key: str) -> list[str]:
    value = (results or {}).get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def _keeps(results: Any, result: str | None, failed: str | None) -> bool:
    failures = _ids(results, "failed")
    if result == "not_eligible" and not failures:
        return False
    if result == "incomplete" and failures:
        return False
    return not failed or failed in failures


def _screening_row(r: Any) -> dict[str, Any]:
    failures = _ids(r.results, "failed")
    verdict = "eligible" if r.eligible else ("not_eligible" if failures else "incomplete")
    return {
        "screening": r.id,
        "screening_number": r.screening_number,
        "study_id": r.study_id,
        "protocol": r.protocol_id,
        "site": r.site_code,
        "screened_on": r.screened_on,
        "result": verdict,
        "failed": " ".join(failures),
        "missing": " ".join(_ids(r.results, "missing")),
        # The code only: the words typed beside it stay in the database.
        "voided": (r.void_reason or "voided") if r.voided_at is not None else "",
    }
