"""Enrolment: a consented patient whose latest screening passed gets a study id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ScalarSelect, bindparam, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from sarcoma_sched.db.audit import insert_audited, update_audited
from sarcoma_sched.db.core_read import core_execute
from sarcoma_sched.db.models import Enrollment, Patient, Screening
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, IneligibleError
from sarcoma_sched.services.active_versions import version_at, version_name
from sarcoma_sched.services.lookups import find_patient

__all__ = [
    "EnrollmentOutcome",
    "enroll",
    "enroll_in",
    "enroll_row",
    "latest_screening",
    "latest_screening_id",
]


# The patients a site has enrolled in a trial: the next study id is one more.
_ENROLLED = (
    select(func.count())
    .select_from(Patient)
    .where(
        Patient.protocol_id == bindparam("protocol"),
        Patient.site_code == bindparam("site"),
        Patient.study_id.is_not(None),
    )
)


@dataclass(frozen=True)
class EnrollmentOutcome:
    study_id: str
    screening_number: str
    protocol_id: str
    site_code: str
    consent_date: dt.date


def latest_screening_id(patient_id: QueryableAttribute[int] | int) -> ScalarSelect[int]:
    """The id of a patient's latest screening that counts: a voided one (``screen void``) never
    decides. ``patient_id`` may be ``Patient.id``, correlated in a query that reads more."""
    return (
        select(Screening.id)
        .where(Screening.patient_id == patient_id, Screening.voided_at.is_(None))
        .order_by(Screening.screened_on.desc(), Screening.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def latest_screening(session: Session, patient: Patient) -> Screening:
    """The latest screening that counts, or ``IneligibleError`` when every one is voided."""
    screening = session.scalar(
        select(Screening).where(Screening.id == latest_screening_id(patient.id))
    )
    if screening is None:
        raise IneligibleError(
            f"patient {patient.screening_number} has no screening that counts (every one is "
            "voided): screen the patient again"
        )
    return screening


def _check_version_active(
    session: Session, patient: Patient, screening: Screening, consent_date: dt.date
) -> None:
    """A patient consents to the version the site runs on the consent date, and is enrolled
    under it: one screened under another (an amendment approved between screening and consent,
    with other criteria perhaps) is screened again under the version in force."""
    active = version_at(session, patient.protocol_id, patient.site_code, consent_date)
    if active.version_id == screening.protocol_version_id:
        return
    screened = version_name(session, screening.protocol_version_id)
    raise Conflict(
        f"patient {patient.screening_number} was screened under {patient.protocol_id} "
        f"{screened} ({screening.screened_on}), but site {patient.site_code} runs "
        f"{active.protocol.version} on the consent date {consent_date}: screen the patient "
        f"again under {active.protocol.version}"
    )


def enroll(
    db: Database, actor: str, patient_ref: str, consent_date: dt.date, *, today: dt.date
) -> EnrollmentOutcome:
    with db.write(actor, "enroll") as session:
        return enroll_in(session, actor, find_patient(session, patient_ref), consent_date, today)


def enroll_in(
    session: Session, actor: str, patient: Patient, consent_date: dt.date, today: dt.date
) -> EnrollmentOutcome:
    """Inside a caller's transaction."""
    enroll_row(session, actor, patient, consent_date, today)
    return EnrollmentOutcome(
        patient.study_id or "",
        patient.screening_number,
        patient.protocol_id,
        patient.site_code,
        consent_date,
    )


def enroll_row(
    session: Session,
    actor: str,
    patient: Patient,
    consent_date: dt.date,
    today: dt.date,
    latest: Screening | None = None,
) -> tuple[Enrollment, Screening]:
    """The enrolment, written, and the screening it rests on: ``latest``, when the caller has
    just read the patient's latest screening that counts (``allocate`` reads it with the
    patient)."""
    ref = patient.study_id or patient.screening_number
    if patient.study_id is not None:
        raise Conflict(f"patient {ref} is already enrolled")
    if consent_date > today:
        raise Conflict(f"consent date {consent_date} is in the future")
    screening = latest or latest_screening(session, patient)
    if not screening.eligible:
        failed = ", ".join(
            c["id"] for c in screening.results.get("criteria", []) if c["outcome"] != "pass"
        )
        raise IneligibleError(
            f"patient {ref} is not eligible at the latest screening ({screening.screened_on}): "
            f"{failed} not passed"
        )
    _check_version_active(session, patient, screening, consent_date)
    count = core_execute(
        session, _ENROLLED, {"protocol": patient.protocol_id, "site": patient.site_code}
    ).scalar_one()
    update_audited(
        session, patient, {"study_id": f"{patient.site_code}-{patient.protocol_id}-{count + 1:04d}"}
    )
    row = {
        "patient_id": patient.id,
        "protocol_version_id": screening.protocol_version_id,
        "screening_id": screening.id,
        "consent_date": consent_date,
        "enrolled_at": utc_now(),
        "enrolled_by": actor,
    }
    # Written and audited at once, without the unit of work (db.audit.insert_audited): the
    # object returned is a detached copy of the stored row, for the caller to read.
    (enrollment_id,) = insert_audited(session, Enrollment.__tablename__, [row])
    return Enrollment(id=enrollment_id, **row), screening
