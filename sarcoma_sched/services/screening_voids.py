"""Voiding a screening recorded by mistake: kept, audited, no longer counted.

A screening typed against the wrong patient or with a value later found mistyped must leave the
CONSORT flow (it would stay an "excluded" box) and stop deciding the enrolment gate, but it is
never deleted: the row keeps every value it had, and its void (when, who, the reason code, the
note) is one audited change in one ``Database.write``. The patient's latest screening that
still counts decides from then on; a patient with none left is screened again.

Not voidable: a screening already voided (a void is final, which PostgreSQL's trigger also
enforces), and the screening a patient was enrolled on (the enrolment rests on it: record an
exclusion instead, which keeps the patient in the analysis).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from sarcoma_sched.db.models import Enrollment, Patient, Screening
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, InputError, NotFound
from sarcoma_sched.vocabulary import REASON_CODES

__all__ = ["VoidOutcome", "void_screening"]


@dataclass(frozen=True)
class VoidOutcome:
    screening_id: int
    screening_number: str
    protocol_id: str
    site_code: str
    screened_on: dt.date
    reason_code: str
    # The screening that counts for the patient now, or None: none left, screen again.
    counting_id: int | None


def void_screening(
    db: Database, actor: str, screening_id: int, reason_code: str, note: str | None = None
) -> VoidOutcome:
    if reason_code not in REASON_CODES:
        raise InputError(
            f"--reason-code: {reason_code!r} is not a reason code ({', '.join(REASON_CODES)})"
        )
    with db.write(actor, "void") as session:
        # On PostgreSQL a screening of another site's patient is not visible (row-level
        # security): it is "no screening", as for a number that does not exist.
        row = session.get(Screening, screening_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no screening {screening_id} (see `sarcoma-sched screenings`)")
        patient = session.get(Patient, row.patient_id)
        if patient is None:  # pragma: no cover - the foreign key and the policy agree
            raise NotFound(f"no screening {screening_id}")
        if row.voided_at is not None:
            raise Conflict(
                f"screening {screening_id} ({patient.screening_number}) is already voided "
                f"({row.void_reason}, {row.voided_at:%Y-%m-%d})"
            )
        enrolled_on = session.scalar(
            select(Enrollment.id).where(Enrollment.screening_id == screening_id)
        )
        if enrolled_on is not None:
            raise Conflict(
                f"screening {screening_id} is the one {patient.study_id} was enrolled on: "
                "it cannot be voided (record an exclusion instead: sarcoma-sched exclude)"
            )
        row.voided_at = utc_now()
        row.voided_by = actor
        row.void_reason = reason_code
        row.void_note = note or None
        session.flush()
        counting = session.scalar(
            select(Screening.id)
            .where(Screening.patient_id == patient.id, Screening.voided_at.is_(None))
            .order_by(Screening.screened_on.desc(), Screening.id.desc())
            .limit(1)
        )
        return VoidOutcome(
            screening_id,
            patient.screening_number,
            patient.protocol_id,
            patient.site_code,
            row.screened_on,
            reason_code,
            counting,
        )
