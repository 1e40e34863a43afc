"""Finding a patient by the identifiers coordinators use."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Patient
from sarcoma_sched.errors import Conflict, NotFound

__all__ = ["find_patient"]


def find_patient(session: Session, ref: str, *, for_update: bool = False) -> Patient:
    """By study id (``PKUIH-NATARS-0007``) or screening number (``PKUIH-NATARS-S0007``)."""
    query = select(Patient).where(or_(Patient.study_id == ref, Patient.screening_number == ref))
    if for_update:
        query = query.with_for_update()
    found = session.scalars(query).all()
    if not found:
        raise NotFound(f"no patient with study id or screening number {ref!r}")
    if len(found) > 1:
        trials = ", ".join(sorted(p.protocol_id for p in found))
        raise Conflict(f"{ref!r} names patients in several trials ({trials}); use the study id")
    return found[0]
