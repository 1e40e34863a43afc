"""Enrol + allocate + schedule + audit: one transaction, all or nothing.

Every write transaction holds the database's single write lock from its first statement
(``Database.write``), so the position read here is still the next free one at commit: two
coordinators never share or skip a position, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.orm import Session

from sarcoma_sched.allocation import (
    DrawStream,
    PriorAllocation,
    TrialCounts,
    allocate_counted,
    factor_level,
    method_fields,
    trial_key,
)
from sarcoma_sched.allocation.secret import check_for_database, key_fingerprint
from sarcoma_sched.calendar import Notice, Plan, notices_of, plan_arm
from sarcoma_sched.db.audit import insert_audited
from sarcoma_sched.db.facts import known, learned
from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    Screening,
    TrialKey,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict, IneligibleError, SecretError
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    AssignedAllocation,
    ConcealedAllocation,
    is_randomized,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.allocation_counts import trial_counts
from sarcoma_sched.services.capacity import site_capacity
from sarcoma_sched.services.enrollment import enroll_row, latest_screening, latest_screening_id
from sarcoma_sched.services.lookups import (
    current_protocol,
    installation,
    may_read,
    only_patient,
    patient_key,
    patient_named,
    protocol_version,
    site_calendar,
)
from sarcoma_sched.services.schedules import store_plan
from sarcoma_sched.vocabulary import DatabasePurpose

__all__ = [
    "AllocationOutcome",
    "allocate_patient",
    "history",
    "init_server_secret",
    "key_file_needed",
    "needs_secret",
    "server_secret",
    "trial_stream",
]

# Fixed and assigned designs draw nothing; their stream is never read.
_UNUSED_KEY = b"\x00" * 32


@dataclass(frozen=True)
class AllocationOutcome:
    study_id: str
    protocol_id: str
    site_code: str
    arm: str
    # None when the server drew: where in the sequence a patient fell is not a site's to know.
    position: int | None
    method: str
    stratum: str | None
    allocation_date: dt.date
    events: list[dict[str, Any]]
    # Every flag and notice of the new calendar (events the planner could not place cleanly,
    # holidays still estimated): what ``schedule`` shows from now on.
    warnings: tuple[Notice, ...]
    plan: Plan  # the calendar as stored
    time_zone: str  # the site's


def needs_secret(protocol: Protocol) -> bool:
    return is_randomized(protocol.allocation)


def trial_stream(protocol: Protocol, secret: bytes | None) -> DrawStream:
    if not needs_secret(protocol):
        return DrawStream(_UNUSED_KEY)
    if secret is None:  # the CLI loads the secret; a library caller must pass it
        raise Conflict(f"{protocol.id} is randomized: the trial secret is needed to allocate")
    return DrawStream(trial_key(secret, protocol.id))


def server_holds_secret(session: Session, protocol_id: str) -> bool:
    """Whether this PostgreSQL database holds ``protocol_id``'s secret and draws its arms."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    if session.scalar(text("SELECT to_regprocedure('sarcoma_has_server_secret(text)')")) is None:
        return False
    return bool(session.scalar(text("SELECT sarcoma_has_server_secret(:p)"), {"p": protocol_id}))


def key_file_needed(db: Database, protocol_id: str) -> bool:
    """Whether allocating or verifying ``protocol_id`` needs a key file (or $SARCOMA_SCHED_SECRET):
    a randomized trial whose secret the server does not hold."""
    with db.read() as session:
        protocol = current_protocol(session, protocol_id).protocol
        return needs_secret(protocol) and not server_holds_secret(session, protocol.id)


def server_secret(db: Database, protocol_id: str) -> bytes | None:
    """The server-held secret, for a statistician's replay; None when the server holds none.
    Anyone else is refused by the database itself."""
    with db.read() as session:
        if not server_holds_secret(session, protocol_id):
            return None
        value = session.scalar(text("SELECT sarcoma_trial_secret(:p)"), {"p": protocol_id})
        return None if value is None else bytes(value)


def init_server_secret(
    db: Database, actor: str, protocol_id: str, secret: bytes | None = None
) -> str:
    """Give the server ``protocol_id``'s secret (a new random one, or an existing key file's
    when the trial already allocated with it); returns the key's fingerprint. PostgreSQL only:
    the key never leaves the server afterwards except to statisticians."""
    if db.backend != "postgresql":
        raise Conflict(
            "a server-held secret needs PostgreSQL with `access setup`; on SQLite the key file "
            "is the secret (`sarcoma-sched allocation init-secret`)"
        )
    with db.write(actor, "allocation init-secret") as session:
        protocol = current_protocol(session, protocol_id).protocol
        if not needs_secret(protocol):
            raise Conflict(f"{protocol.id} is not randomized: it has no secret")
        if (
            session.scalar(text("SELECT to_regprocedure('sarcoma_trial_secret_init(text, bytea)')"))
            is None
        ):
            raise Conflict(
                "access is not set up on this database: run `sarcoma-sched access setup`"
            )
        return str(
            session.scalar(
                text("SELECT sarcoma_trial_secret_init(:p, :secret)"),
                {"p": protocol.id, "secret": secret},
            )
        )


def _server_draw(
    session: Session, patient: Patient, factors: dict[str, str], allocation_date: dt.date
) -> dict[str, Any]:
    session.flush()  # the enrolment, if this call made it, before the server reads
    # The server reads the method from the patient's protocol version, never from the caller.
    drawn = session.scalar(
        text("SELECT sarcoma_allocate(:patient, CAST(:factors AS jsonb), :day)"),
        {"patient": patient.id, "factors": json.dumps(factors), "day": allocation_date},
    )
    return dict(drawn)


def commit_key(session: Session, protocol_id: str, secret: bytes | None) -> None:
    """Refuse a key this database must not use, and hold every allocation of a trial to the
    first key it drew with: that key's fingerprint is written (audited) at the first draw."""
    if secret is None:
        raise Conflict(f"{protocol_id} is randomized: the trial secret is needed to allocate")
    facts = installation(session)
    demo = facts is not None and facts.purpose == DatabasePurpose.DEMO
    check_for_database(secret, "the trial secret", demo=demo)
    fingerprint = key_fingerprint(secret, protocol_id)
    committed = committed_key(session, protocol_id)
    if committed is None:
        session.add(
            TrialKey(
                protocol_id=protocol_id,
                fingerprint=fingerprint,
                committed_at=utc_now(),
                committed_by=str(session.info.get("sarcoma_actor", "")),
            )
        )
    elif not hmac.compare_digest(committed.fingerprint, fingerprint):
        raise SecretError(
            f"this is not the key {protocol_id} committed to at its first allocation "
            f"({committed.committed_at:%Y-%m-%d}, fingerprint {committed.fingerprint[:12]}…): "
            "refusing to allocate with another key"
        )


@dataclass(frozen=True)
class CommittedKey:
    fingerprint: str
    committed_at: dt.datetime


def committed_key(session: Session, protocol_id: str) -> CommittedKey | None:
    """The key fingerprint a trial committed to at its first allocation. Written once and
    never changed, so read once per Database (``db.facts``)."""
    key = ("trial_key", protocol_id)
    found = known(session, key)
    if found is None:
        row = session.execute(
            select(TrialKey.fingerprint, TrialKey.committed_at).where(
                TrialKey.protocol_id == protocol_id
            )
        ).first()
        if row is None:
            return None
        found = CommittedKey(row.fingerprint, row.committed_at)
        learned(session, key, found)
    return found


def history(session: Session, protocol_id: str) -> list[PriorAllocation]:
    """Every allocation of the trial in position order, withdrawn and excluded included (ITT)."""
    rows = session.execute(
        select(Allocation.position, Allocation.arm, Allocation.factors, Allocation.stratum)
        .where(Allocation.protocol_id == protocol_id)
        .order_by(Allocation.position)
    )
    return [PriorAllocation(r.position, r.arm, r.factors, r.stratum) for r in rows]


def allocate_patient(
    db: Database,
    actor: str,
    patient_ref: str,
    *,
    today: dt.date,
    allocation_date: dt.date | None = None,
    consent_date: dt.date | None = None,
    arm: str | None = None,
    basis: str | None = None,
    reason: str | None = None,
    secret: bytes | None = None,
) -> AllocationOutcome:
    """Allocate a screened patient, enrolling first when ``consent_date`` is given.

    The gate: the latest screening passes every criterion (attestations affirmed), consent is
    recorded, the patient has no allocation and has not left the study. Nothing is written
    unless everything succeeds.
    """
    allocation_date = allocation_date or today
    if allocation_date > today:
        raise Conflict(f"allocation date {allocation_date} is in the future")
    with db.write(actor, "allocate") as session:
        # The enrolment, the allocation and the calendar are written as plain rows with their
        # audit entries (db.audit.insert_audited), not through the unit of work; only a trial's
        # first key commitment is an ORM object, flushed with the rest.
        session.autoflush = False
        state = _allocation_state(session, patient_ref)
        patient = state.patient
        ref = patient.study_id or patient.screening_number
        if state.allocated:
            raise Conflict(f"patient {ref} is already allocated; an allocation is never redone")
        if state.ended is not None:
            raise Conflict(f"patient {ref} has left the study and cannot be allocated")
        enrollment = state.enrollment
        if enrollment is None:
            if consent_date is None:
                raise IneligibleError(f"patient {ref} is not enrolled: give the consent date")
            # Enrolled here on the latest screening, which it has just checked.
            enrollment, screening = enroll_row(
                session, actor, patient, consent_date, today, state.screening
            )
        else:
            screening = state.screening or latest_screening(session, patient)
        if not screening.eligible:
            # Re-screened as ineligible after enrolment: the gate holds on every path.
            raise IneligibleError(
                f"patient {patient.study_id} failed the latest screening "
                f"({screening.screened_on}); cannot allocate"
            )
        if allocation_date < enrollment.consent_date:
            raise Conflict(
                f"allocation date {allocation_date} is before consent ({enrollment.consent_date})"
            )
        protocol = protocol_version(session, enrollment.protocol_version_id).protocol
        method = protocol.allocation
        _check_assignment(method, arm, basis, reason)
        factors = _factors(method_fields(method), screening.field_values, patient, ref)
        if needs_secret(protocol) and server_holds_secret(session, protocol.id):
            # PostgreSQL with `access setup`: the server draws from the whole history, which
            # the coordinator's row-level security hides, with a key no site role can read.
            drawn = _server_draw(session, patient, factors, allocation_date)
            arm_drawn, position, stratum = drawn["arm"], None, drawn["stratum"]
        elif isinstance(method, ConcealedAllocation):
            raise Conflict(
                f"{protocol.id} is randomized and its method is concealed from your role, but "
                "the server holds no secret for it yet: a statistician runs "
                f"`sarcoma-sched allocation init-secret --server {protocol.id}`"
            )
        else:
            if needs_secret(protocol):
                commit_key(session, protocol.id, secret)
            # A site role may not read the sequence; the server's trigger numbers the row
            # (only fixed and assigned arms are written by a client once access is set up).
            numbered_here = may_read(session, "allocations", "position")
            arm_ids = [a.id for a in protocol.arms]
            counts = (
                trial_counts(session, protocol.id, method, arm_ids, factors)
                if numbered_here
                else TrialCounts(0, 0, frozenset())
            )
            position = counts.allocated + 1
            decision = allocate_counted(
                method,
                arm_ids,
                counts,
                factors,
                position,
                trial_stream(protocol, secret),
                assigned_arm=arm,
            )
            arm_drawn, stratum = decision.arm, decision.stratum
            row = {
                "patient_id": patient.id,
                "protocol_id": protocol.id,
                "position": position if numbered_here else 0,
                "arm": decision.arm,
                "method": method.method,
                "stratum": decision.stratum,
                "factors": dict(decision.factors),
                # Never decision.concealed: it would reveal the rest of a permuted block.
                "detail": dict(decision.detail),
                "basis": basis,
                "reason": reason,
                "allocation_date": allocation_date,
                "allocated_at": utc_now(),
                "allocated_by": actor,
            }
            insert_audited(session, Allocation.__tablename__, [row])
            if not numbered_here:
                position = None
        calendar = site_calendar(session, patient.site_code)
        plan = plan_arm(
            protocol,
            arm_drawn,
            allocation_date,
            calendar,
            capacity=site_capacity(
                session, patient.site_code, exclude_patient=patient.id, since=allocation_date
            ),
        )
        store_plan(session, patient, plan)
        session.flush()
        return AllocationOutcome(
            study_id=patient.study_id or "",
            protocol_id=protocol.id,
            site_code=patient.site_code,
            arm=arm_drawn,
            position=position,
            method=method.design if isinstance(method, ConcealedAllocation) else method.method,
            stratum=stratum,
            allocation_date=allocation_date,
            events=[
                {
                    "event": e.id,
                    "label": e.label,
                    "target": e.target,
                    "earliest": e.earliest,
                    "latest": e.latest,
                    "flags": ", ".join(f.code for f in e.flags),
                }
                for e in plan.events
            ],
            warnings=notices_of(plan.events, calendar),
            plan=plan,
            time_zone=calendar.time_zone,
        )


@dataclass(frozen=True)
class _State:
    patient: Patient
    allocated: bool
    ended: str | None  # how the patient left the study, if they did
    enrollment: Enrollment | None
    screening: Screening | None  # the latest that counts


def _state_query() -> Select[Patient, bool, str | None, Enrollment, Screening]:
    allocated = (
        select(Allocation.id).where(Allocation.patient_id == Patient.id).correlate(Patient).exists()
    )
    ended = (
        select(ParticipationEnd.kind)
        .where(ParticipationEnd.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )
    return (
        select(Patient, allocated, ended, Enrollment, Screening)
        .outerjoin(Enrollment, Enrollment.patient_id == Patient.id)
        .outerjoin(Screening, Screening.id == latest_screening_id(Patient.id).correlate(Patient))
        .where(patient_named(bindparam("ref")))
    )


# Built once: composing this statement cost a third of a millisecond per allocation.
_STATE = _state_query()


def _allocation_state(session: Session, ref: str) -> _State:
    """The patient, whether allocated or gone, the enrolment and the latest screening that
    counts: what the gate checks, in one statement instead of five."""
    rows = [
        _State(patient, bool(allocated), ended, enrollment, screening)
        for patient, allocated, ended, enrollment, screening in session.execute(
            _STATE, {"ref": patient_key(ref)}
        )
    ]
    return only_patient(rows, ref, lambda state: state.patient)


def _check_assignment(
    method: object, arm: str | None, basis: str | None, reason: str | None
) -> None:
    if not isinstance(method, AssignedAllocation):
        if basis or reason:
            raise Conflict("a basis and reason are only recorded for assigned (non-random) arms")
        return
    if arm is None:
        raise Conflict("this trial's arm is assigned: give --arm, --basis and --reason")
    if basis is None:
        raise Conflict(f"an assigned arm needs --basis (one of {', '.join(method.bases)})")
    if basis not in method.bases:
        raise Conflict(f"basis must be one of {', '.join(method.bases)} (got {basis!r})")
    if method.reason_required and not (reason and reason.strip()):
        raise Conflict("an assigned arm needs a reason (e.g. the MDT meeting and its decision)")


def _factors(
    fields: Sequence[str], values: dict[str, Any], patient: Patient, ref: str
) -> dict[str, str]:
    factors = {}
    for name in fields:
        value = patient.site_code if name == SITE_FACTOR else values.get(name)
        if value is None:
            raise IneligibleError(
                f"patient {ref}: the screening has no value for {name}, an allocation factor"
            )
        factors[name] = factor_level(value)
    return factors
