"""Screening: evaluate a patient against the criteria and keep the record, pass or fail.

Screen failures are never discarded: they are the "excluded" box of the CONSORT flow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Patient, Screening
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.eligibility import EligibilityResult, evaluate, parse_field_values
from sarcoma_sched.errors import Conflict, InputError, InputFileError, NotFound
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.active_versions import version_at
from sarcoma_sched.services.lookups import (
    StoredProtocol,
    current_protocol,
    find_patient,
    site_today,
    site_zone,
)
from sarcoma_sched.vocabulary import SEXES, CriterionStage, Sex

__all__ = ["ScreeningOutcome", "screen", "screen_in"]


@dataclass(frozen=True)
class ScreeningOutcome:
    """``screening_id`` is None for a dry run, which stored nothing; a new patient's
    ``screening_number`` is then the number a real screening would give now."""

    screening_number: str
    protocol_id: str
    site_code: str
    screening_id: int | None
    result: EligibilityResult
    screened_on: dt.date

    @property
    def stored(self) -> bool:
        return self.screening_id is not None


def screen(
    db: Database,
    actor: str,
    protocol_id: str,
    site_code: str | None,
    raw_values: Mapping[str, Any] | None,
    *,
    screened_on: dt.date | None = None,
    sex: str = Sex.UNKNOWN,
    birth_date: dt.date | None = None,
    patient_ref: str | None = None,
    source: str = "--field",
    field_values: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> ScreeningOutcome:
    """Record a screening. A new patient gets a screening number; ``patient_ref`` re-screens.

    Typing mistakes (unknown field, impossible value) are refused before anything is written;
    failing a criterion is a result, stored like a pass. ``field_values`` (typed as
    ``--field NAME=VALUE``) override ``raw_values`` (from ``source``, e.g. a file; None when
    there is no file); each problem names where its value came from.

    ``screened_on`` defaults to today at the site, and may not be later: ``now`` (an aware
    instant, the current one by default) read in the site's time zone.

    ``dry_run`` makes every check and the evaluation, in a read session, and stores nothing.
    """
    if dry_run:
        with db.read() as session:
            return screen_in(
                session, actor, protocol_id, site_code, raw_values, screened_on=screened_on,
                sex=sex, birth_date=birth_date, patient_ref=patient_ref, source=source,
                field_values=field_values, now=now, store=False,
            )  # fmt: skip
    with db.write(actor, "screen") as session:
        return screen_in(
            session, actor, protocol_id, site_code, raw_values, screened_on=screened_on,
            sex=sex, birth_date=birth_date, patient_ref=patient_ref, source=source,
            field_values=field_values, now=now,
        )  # fmt: skip


def screen_in(
    session: Session,
    actor: str,
    protocol_id: str,
    site_code: str | None,
    raw_values: Mapping[str, Any] | None,
    *,
    screened_on: dt.date | None = None,
    sex: str = Sex.UNKNOWN,
    birth_date: dt.date | None = None,
    patient_ref: str | None = None,
    source: str = "--field",
    field_values: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    store: bool = True,
) -> ScreeningOutcome:
    """``screen`` inside a session the caller holds: a write transaction (a batch import puts
    every row of a file in one), or with ``store=False`` any session, which is left as found."""
    if sex not in SEXES:
        raise Conflict(f"sex must be one of {', '.join(SEXES)} (got {sex!r})")
    # The newest version names the trial's sites and their time zones; the criteria are those
    # of the version active at the patient's site on the screening date (``_evaluated``).
    protocol = current_protocol(session, protocol_id).protocol
    if patient_ref is not None:
        patient = find_patient(session, patient_ref)
        if patient.protocol_id != protocol.id:
            raise Conflict(f"patient {patient_ref} is in {patient.protocol_id}, not {protocol.id}")
        if site_code and site_code.upper() != patient.site_code:
            raise Conflict(f"patient {patient_ref} is at site {patient.site_code}, not {site_code}")
        if patient.study_id is not None:
            raise Conflict(f"patient {patient_ref} is already enrolled as {patient.study_id}")
        screened_on = _screening_date(session, protocol, patient.site_code, screened_on, now)
        stored, values, result = _evaluated(
            session, protocol.id, patient.site_code, screened_on, raw_values, source, field_values
        )
    else:
        if not site_code:
            raise Conflict("a new patient needs --site")
        site = next((s for s in protocol.sites if s.code == site_code.upper()), None)
        if site is None:
            known = ", ".join(s.code for s in protocol.sites)
            raise NotFound(f"protocol {protocol.id} has no site {site_code!r} (sites: {known})")
        screened_on = _screening_date(session, protocol, site.code, screened_on, now)
        stored, values, result = _evaluated(
            session, protocol.id, site.code, screened_on, raw_values, source, field_values
        )
        count = session.execute(
            select(func.count())
            .select_from(Patient)
            .where(Patient.protocol_id == protocol.id, Patient.site_code == site.code)
        ).scalar_one()
        patient = Patient(
            protocol_id=protocol.id,
            site_code=site.code,
            # The write lock makes count + 1 safe: no other writer is between read and insert.
            screening_number=f"{site.code}-{protocol.id}-S{count + 1:04d}",
            sex=sex,
            birth_date=birth_date,
            age_at_consent=_age(values),
            created_at=utc_now(),
        )
        if not store:
            return ScreeningOutcome(
                patient.screening_number, protocol.id, site.code, None, result, screened_on
            )
        session.add(patient)
        session.flush()
    if not store:
        return ScreeningOutcome(
            patient.screening_number, protocol.id, patient.site_code, None, result, screened_on
        )
    row = Screening(
        patient_id=patient.id,
        protocol_version_id=stored.version_id,
        screened_on=screened_on,
        field_values={k: _jsonable(v) for k, v in values.items()},
        results=result.to_json(),
        eligible=result.eligible,
        recorded_at=utc_now(),
        recorded_by=actor,
    )
    session.add(row)
    session.flush()
    return ScreeningOutcome(
        patient.screening_number, protocol.id, patient.site_code, row.id, result, screened_on
    )


def _evaluated(
    session: Session,
    protocol_id: str,
    site_code: str,
    screened_on: dt.date,
    raw_values: Mapping[str, Any] | None,
    source: str,
    field_values: Mapping[str, Any] | None,
) -> tuple[StoredProtocol, dict[str, Any], EligibilityResult]:
    """The screening under the version the site runs on ``screened_on`` (its own fields and
    criteria: an amendment may change a threshold), never one not active there."""
    stored = version_at(session, protocol_id, site_code, screened_on)
    protocol = stored.protocol
    if all(s.code != site_code for s in protocol.sites):
        raise Conflict(
            f"site {site_code} is not a site of {protocol.id} {protocol.version}, the version "
            f"active there on {screened_on}: activate a version that lists it "
            f"(`sarcoma-sched protocol activate {protocol.id} VERSION --site {site_code} "
            "--approved DATE`)"
        )
    values = _parse_all(protocol, [(source, raw_values or {}), ("--field", field_values or {})])
    if not values and protocol.fields:
        # Every criterion would count as not passed: the patient would be stored as a
        # screen failure (a CONSORT exclusion) for a file that was empty or a forgotten
        # --field, not for anything about the patient.
        raise InputError(_no_values(source if raw_values is not None else None))
    return stored, values, evaluate(protocol, values, CriterionStage.SCREENING)


def _no_values(file: str | None) -> str:
    why = "a screening without any would be stored as a screen failure"
    if file is None:
        return f"no screening values: give --field NAME=VALUE or --from-file FILE ({why})"
    return f"{file}: no screening values in it, and none given with --field ({why})"


def _screening_date(
    session: Session,
    protocol: Protocol,
    site_code: str,
    screened_on: dt.date | None,
    now: dt.datetime | None,
) -> dt.date:
    today = site_today(session, site_code, now, protocol)
    if screened_on is None:
        return today
    if screened_on > today:
        # The latest screening decides enrolment (enrollment.latest_screening): one dated ahead
        # would stay the latest, and a failed one would block every later re-screen, until then.
        zone = site_zone(session, site_code, protocol)
        raise Conflict(
            f"screening date {screened_on} is in the future: today at site {site_code} "
            f"({zone}) is {today}"
        )
    return screened_on


def _parse_all(protocol: Any, sources: list[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems = []
    for source, raw in sources:
        try:
            values.update(parse_field_values(protocol, raw, source))
        except InputFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputFileError(problems)
    return values


def _age(values: Mapping[str, Any]) -> int | None:
    age = values.get("age_years")
    return age if isinstance(age, int) else None


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
