"""``protocol activate``: a site starts running a version from its ethics approval date.

A trial admin records it (on PostgreSQL only that role may insert an activation: grants), in
one audited write. From the approval date on, the site's new screenings and enrolments are
under the version; patients already enrolled stay on theirs until they re-consent
(``transition``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Enrollment,
    Patient,
    ProtocolActivation,
    ProtocolTransition,
    Screening,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict
from sarcoma_sched.protocol.activation import Activation, active_version
from sarcoma_sched.services.active_versions import (
    find_version,
    trial_activations,
    version_name,
)
from sarcoma_sched.services.lookups import get_site, protocol_version, site_today

__all__ = ["ActivationOutcome", "activate_version"]


@dataclass(frozen=True)
class ActivationOutcome:
    protocol_id: str
    version: str
    site_code: str
    approved_on: dt.date
    previous: str  # the version the site ran on the approval date until now


def activate_version(
    db: Database,
    actor: str,
    protocol_id: str,
    version: str,
    site_code: str,
    approved_on: dt.date,
    *,
    now: dt.datetime | None = None,
) -> ActivationOutcome:
    """Record that ``site_code`` runs ``version`` of ``protocol_id`` from ``approved_on``.

    Refused: an approval dated later than today at the site, a version that does not list the
    site, one already activated there, and an approval dated before screenings, enrolments or
    re-consents already recorded at the site under another version (they would then have run
    a version not active on their date).
    """
    with db.write(actor, "protocol activate") as session:
        site = get_site(session, site_code)
        version_id = find_version(session, protocol_id, version)
        protocol = protocol_version(session, version_id).protocol
        if all(s.code != site.code for s in protocol.sites):
            known = ", ".join(s.code for s in protocol.sites)
            raise Conflict(
                f"{protocol.id} {protocol.version} does not list site {site.code} "
                f"(its sites: {known})"
            )
        today = site_today(session, site.code, now)
        if approved_on > today:
            raise Conflict(
                f"--approved {approved_on} is in the future (today at {site.code} is {today}): "
                "record an ethics approval once it is given"
            )
        existing = session.scalar(
            select(ProtocolActivation.approved_on).where(
                ProtocolActivation.version_id == version_id,
                ProtocolActivation.site_code == site.code,
            )
        )
        if existing is not None:
            raise Conflict(
                f"{protocol.id} {protocol.version} is already active at {site.code} "
                f"(approved {existing})"
            )
        activations = trial_activations(session, protocol.id)
        before = active_version(activations, site.code, approved_on)
        previous = "none" if before is None else version_name(session, before)
        row = ProtocolActivation(
            protocol_id=protocol.id,
            version_id=version_id,
            site_code=site.code,
            approved_on=approved_on,
            activated_at=utc_now(),
            activated_by=actor,
        )
        after = [*activations, Activation(version_id, site.code, approved_on, _next(activations))]
        _check_history_kept(session, protocol.id, site.code, approved_on, after)
        session.add(row)
        session.flush()
        return ActivationOutcome(protocol.id, protocol.version, site.code, approved_on, previous)


def _next(activations: list[Activation]) -> int:
    return max((a.order for a in activations), default=0) + 1


def _check_history_kept(
    session: Session,
    protocol_id: str,
    site_code: str,
    approved_on: dt.date,
    after: list[Activation],
) -> None:
    """Every screening, enrolment and re-consent at the site from ``approved_on`` on must still
    have run the version active on its date once this activation is added."""
    at_site = Patient.site_code == site_code, Patient.protocol_id == protocol_id
    recorded: list[tuple[str, str, dt.date, int]] = []
    for number, on, version_id in session.execute(
        select(Patient.screening_number, Screening.screened_on, Screening.protocol_version_id)
        .join(Patient, Patient.id == Screening.patient_id)
        .where(*at_site, Screening.screened_on >= approved_on, Screening.voided_at.is_(None))
    ):
        recorded.append(("screened", number, on, version_id))
    for number, on, version_id in session.execute(
        select(Patient.screening_number, Enrollment.consent_date, Enrollment.protocol_version_id)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .where(*at_site, Enrollment.consent_date >= approved_on)
    ):
        # An enrolment later moved to another version is judged by its first one: the
        # transition row holds what it moved from.
        first = session.scalar(
            select(ProtocolTransition.from_version_id)
            .join(Patient, Patient.id == ProtocolTransition.patient_id)
            .where(Patient.screening_number == number, *at_site)
            .order_by(ProtocolTransition.id)
            .limit(1)
        )
        recorded.append(("consented", number, on, first if first is not None else version_id))
    for number, on, version_id in session.execute(
        select(
            Patient.screening_number,
            ProtocolTransition.reconsent_date,
            ProtocolTransition.to_version_id,
        )
        .join(Patient, Patient.id == ProtocolTransition.patient_id)
        .where(*at_site, ProtocolTransition.reconsent_date >= approved_on)
    ):
        recorded.append(("re-consented", number, on, version_id))
    broken = sorted(
        (on, what, number, version_id)
        for what, number, on, version_id in recorded
        if active_version(after, site_code, on) != version_id
    )
    if broken:
        on, what, number, version_id = broken[0]
        raise Conflict(
            f"approval date {approved_on} is before {len(broken)} record(s) at {site_code} "
            f"under another version (first: {number} {what} {on} under "
            f"{version_name(session, version_id)}): a version runs at a site from its "
            "approval on, so give the date from which the site actually ran it"
        )
