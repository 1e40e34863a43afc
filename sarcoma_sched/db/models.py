"""The schedule database: SQLAlchemy 2 typed models.

Nothing here is ever deleted by the engine: screen failures feed the CONSORT flow, withdrawals
and exclusions are rows of their own, and cancelled events keep their row with status cancelled.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sarcoma_sched.db.types import UtcDateTime
from sarcoma_sched.vocabulary import DatabasePurpose, EndKind, EventStatus, Sex, SiteDayKind

__all__ = [
    "AUDITED",
    "AccessGrant",
    "Allocation",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Enrollment",
    "Installation",
    "ParticipationEnd",
    "Patient",
    "ProtocolActivation",
    "ProtocolDefinition",
    "ProtocolTransition",
    "ProtocolVersion",
    "ScheduledEvent",
    "Screening",
    "Site",
    "SiteClosure",
    "TrialKey",
]

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL and let a batch
# migration on SQLite find the constraint it must drop.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, vocabulary: type[StrEnum]) -> CheckConstraint:
    """The CHECK of a closed vocabulary, ``column IN ('a', 'b')``, as the migrations wrote it."""
    words = ", ".join(f"'{member.value}'" for member in vocabulary)
    return CheckConstraint(f"{column} IN ({words})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        dt.datetime: UtcDateTime,
    }


class ProtocolVersion(Base):
    """A protocol definition exactly as loaded; a patient keeps the version he enrolled under."""

    __tablename__ = "protocol_versions"
    __table_args__ = (UniqueConstraint("protocol_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(80))
    source_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime]
    loaded_by: Mapped[str] = mapped_column(String(64))


class ProtocolDefinition(Base):
    """What is derived from a version's source for readers who may not see it (site roles: the
    concealed definition) and for the server's draw (the method). Not audited: both are pure
    functions of the audited source, and ``audit verify`` derives them again."""

    __tablename__ = "protocol_definitions"

    version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"), primary_key=True)
    site_definition: Mapped[str] = mapped_column(Text)
    allocation: Mapped[str] = mapped_column(Text)


class ProtocolActivation(Base):
    """Version ``version_id`` runs at ``site_code`` from the site's ethics approval date
    ``approved_on`` (``protocol activate``). With neither site nor date, the trial's baseline:
    the version every site runs from the beginning until an activation there (migration 0011;
    the rule is ``protocol.activation.active_version``)."""

    __tablename__ = "protocol_activations"
    __table_args__ = (
        UniqueConstraint("version_id", "site_code"),
        CheckConstraint(
            "(site_code IS NULL AND approved_on IS NULL) "
            "OR (site_code IS NOT NULL AND approved_on IS NOT NULL)",
            name="baseline",
        ),
        Index(None, "protocol_id", "site_code", "approved_on"),
        # One baseline per trial: NULL site codes are distinct in the constraint above.
        Index(
            "ix_protocol_activations_baseline",
            "protocol_id",
            unique=True,
            sqlite_where=text("site_code IS NULL"),
            postgresql_where=text("site_code IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    site_code: Mapped[str | None] = mapped_column(ForeignKey("sites.code"))
    approved_on: Mapped[dt.date | None] = mapped_column(Date)
    activated_at: Mapped[dt.datetime]
    activated_by: Mapped[str] = mapped_column(String(64))


class Site(Base):
    __tablename__ = "sites"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64))
    holiday_country: Mapped[str] = mapped_column(String(3))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    # The site lets a multi-day inpatient course run into a holiday block (its ward runs
    # through holidays); by default the planner keeps stays clear of one (migration 0009).
    inpatient_over_holidays: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    created_at: Mapped[dt.datetime]


class SiteClosure(Base):
    """Days a coordinator set apart from the site's holiday calendar: ``kind`` closed, days it
    cannot treat (ward closure, strike, local holiday the tables miss), or open, extra working
    days (a Sunday or holiday it works: ``site open``, migration 0012)."""

    __tablename__ = "site_closures"
    __table_args__ = (
        CheckConstraint("first_day <= last_day", name="ordered"),
        _one_of("kind", SiteDayKind),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    # What the coordinator typed beside the code in ``reason``: stays in the database.
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(
        String(8), default=SiteDayKind.CLOSED, server_default=SiteDayKind.CLOSED.value
    )


class SiteResource(Base):
    """A site's capacity for one resource (see ``calendar.capacity``): per weekday (``weekday``
    0 = Monday) or per week (``weekday`` NULL). Setting a resource replaces all its rows."""

    __tablename__ = "site_resources"
    __table_args__ = (
        UniqueConstraint("site_code", "resource", "weekday"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name="weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    resource: Mapped[str] = mapped_column(String(32))
    weekday: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime]


class Patient(Base):
    """A pseudonymous patient: no name is ever required or stored.

    ``screening_number`` is given at first screening (screen failures need an identity for the
    CONSORT flow); ``study_id`` only at enrolment.
    """

    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("protocol_id", "screening_number"),
        UniqueConstraint("protocol_id", "study_id"),
        _one_of("sex", Sex),
        # Coordinators name a patient by either number without the trial (``find_patient``);
        # the unique indexes above start with protocol_id and cannot serve that lookup.
        Index(None, "study_id"),
        Index(None, "screening_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(32))
    site_code: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    screening_number: Mapped[str] = mapped_column(String(64))
    study_id: Mapped[str | None] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(8), default=Sex.UNKNOWN.value)
    # Only what eligibility needs; a birth date is optional and never exported by default.
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    age_at_consent: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]


class Screening(Base):
    __tablename__ = "screenings"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    screened_on: Mapped[dt.date] = mapped_column(Date)
    field_values: Mapped[dict[str, Any]]
    results: Mapped[dict[str, Any]]
    eligible: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(String(64))
    # A screening recorded by mistake is voided, never deleted (migration 0010): it is kept and
    # audited, and no longer counts (CONSORT, enrolment). ``void_reason`` is the code,
    # ``void_note`` the words typed beside it, which stay in the database.
    voided_at: Mapped[dt.datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(64))
    void_reason: Mapped[str | None] = mapped_column(String(32))
    void_note: Mapped[str | None] = mapped_column(Text)


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), unique=True)
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"))
    consent_date: Mapped[dt.date] = mapped_column(Date)
    enrolled_at: Mapped[dt.datetime]
    enrolled_by: Mapped[str] = mapped_column(String(64))


class ProtocolTransition(Base):
    """A patient moved from one protocol version to another on re-consenting (``transition``);
    the enrolment then names ``to_version_id``. The patient's version history, oldest first."""

    __tablename__ = "protocol_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    from_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    reconsent_date: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(String(64))


class Allocation(Base):
    """One allocation; ``position`` is the patient's place in the trial's allocation sequence."""

    __tablename__ = "allocations"
    __table_args__ = (UniqueConstraint("protocol_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), unique=True)
    protocol_id: Mapped[str] = mapped_column(String(32))
    # Deferred: site roles may not read where in the sequence a patient fell, nor the
    # minimization scores (column privileges on PostgreSQL), so nothing loads them unasked.
    # A change that replaces one unread is audited with the stored value (audit.remember_replaced).
    position: Mapped[int] = mapped_column(Integer, deferred=True)
    arm: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    stratum: Mapped[str | None] = mapped_column(String(200))
    factors: Mapped[dict[str, Any]]
    detail: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    # Assigned (non-randomized) designs: why this arm (MDT decision, patient preference, other).
    basis: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    allocation_date: Mapped[dt.date] = mapped_column(Date)
    allocated_at: Mapped[dt.datetime]
    allocated_by: Mapped[str] = mapped_column(String(64))


def _span_days(context: Any) -> int:
    row = context.get_current_parameters()
    return (row["last_day"] - row["first_day"]).days


class ScheduledEvent(Base):
    """One planned occurrence (``ai.2``, ``follow_up.m12``) of a patient's calendar."""

    __tablename__ = "scheduled_events"
    __table_args__ = (
        UniqueConstraint("patient_id", "event_id"),
        _one_of("status", EventStatus),
        # The target may leave the window (a recorded deviation); the window itself may not invert.
        CheckConstraint("earliest <= latest", name="window"),
        # ``visits`` relies on span_days to bound its search (see ``span_days`` below): the
        # database itself refuses a row whose span disagrees with its days. SQLite keeps a
        # Date as 'YYYY-MM-DD' text, hence julianday().
        CheckConstraint(
            "span_days = julianday(last_day) - julianday(first_day)", name="span"
        ).ddl_if(dialect="sqlite"),
        CheckConstraint("span_days = last_day - first_day", name="span").ddl_if(
            dialect="postgresql"
        ),
        Index(None, "target"),
        Index(None, "first_day"),
        Index(None, "last_day"),
        Index(None, "span_days"),
        # Overdue across the network: planned and started before today, one short range.
        Index(None, "status", "first_day"),
        # A site's queries walk its patients and read each one's events of a status in a date
        # range: a few index entries per patient instead of the whole network's range.
        Index(None, "patient_id", "status", "first_day"),
        # Deviations are a few percent of the rows: small partial indexes for the network's
        # list by date and for a site's patients.
        Index(
            "ix_scheduled_events_deviation_first_day",
            "first_day",
            sqlite_where=text("deviation IS NOT NULL"),
            postgresql_where=text("deviation IS NOT NULL"),
        ),
        Index(
            "ix_scheduled_events_deviation_patient_id_first_day",
            "patient_id",
            "first_day",
            sqlite_where=text("deviation IS NOT NULL"),
            postgresql_where=text("deviation IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    # Stable identifier used for iCalendar UIDs; never reused for another event.
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    cycle: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[dt.date] = mapped_column(Date)
    earliest: Mapped[dt.date] = mapped_column(Date)
    latest: Mapped[dt.date] = mapped_column(Date)
    days: Mapped[list[Any]]
    # The first and last of ``days``, as columns so "what touches these dates" uses an index.
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    # ``last_day - first_day`` in days (0 for a one-day event). Its maximum, one index lookup,
    # bounds "events touching [from, to]" from below: ``first_day >= from - max(span_days)``,
    # so the date index reads weeks instead of all history. Set by ``services.schedules.
    # event_fields``; the default covers a row written without it.
    span_days: Mapped[int] = mapped_column(Integer, default=_span_days)
    local_time: Mapped[str | None] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PLANNED.value)
    actual_date: Mapped[dt.date | None] = mapped_column(Date)
    # A coordinator's chosen start (``reschedule``); the planner keeps it through re-plans.
    pinned: Mapped[dt.date | None] = mapped_column(Date)
    # vocabulary.PinPolicy: NULL releases the pin when a re-plan makes its date unsafe.
    pin_policy: Mapped[str | None] = mapped_column(String(8))
    deviation: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    # What the coordinator typed beside the code in ``reason``: stays in the database.
    note: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[list[Any]]
    # Raised on every change; iCalendar SEQUENCE so calendar clients replace the old copy.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime]


class ParticipationEnd(Base):
    """Withdrawal or post-allocation exclusion: the patient stays in the analysis (ITT)."""

    __tablename__ = "participation_ends"
    __table_args__ = (_one_of("kind", EndKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    # What the coordinator typed beside the code in ``reason``: stays in the database.
    note: Mapped[str | None] = mapped_column(Text)
    criterion_id: Mapped[str | None] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(String(64))


class Installation(Base):
    """This database itself, one row: an id that tells two installations' calendars apart, and
    whether it is a demonstration (whose published key may then allocate) or a trial."""

    __tablename__ = "installation"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        _one_of("purpose", DatabasePurpose),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uid: Mapped[str] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime]


class AccessGrant(Base):
    """A login's role in the trial, at one site (coordinator, monitor) or at all (``site_code``
    NULL). On PostgreSQL the row-level security policies read it; on SQLite it is a record only,
    since whoever can write the file is trusted there."""

    __tablename__ = "access_grants"
    __table_args__ = (UniqueConstraint("login", "role", "site_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(32))
    site_code: Mapped[str | None] = mapped_column(ForeignKey("sites.code"))
    granted_at: Mapped[dt.datetime]
    granted_by: Mapped[str] = mapped_column(String(64))


class TrialKey(Base):
    """The commitment to a trial's allocation secret, written when the trial first draws.

    ``fingerprint`` is a keyed hash of the secret that reveals nothing about it, so anyone can
    read it, while a different key (a coordinator's own, one chosen to steer the next arms) no
    longer matches and is refused."""

    __tablename__ = "trial_keys"

    protocol_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    committed_at: Mapped[dt.datetime]
    committed_by: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One link of the hash chain. ``at`` and ``change`` are text so the hash is over exactly
    the bytes stored, whatever the backend does with timestamps or JSON."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "entity", "entity_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    change: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link, one row. Writers lock it first, which serialises every write
    transaction (gap-free audit and allocation sequences) and lets `audit verify` notice
    entries cut from the end of the log."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# Tables whose every change is written to the audit log, keyed by the entity name used there.
AUDITED: dict[str, type[Base]] = {
    cls.__tablename__: cls
    for cls in (
        ProtocolVersion,
        Site,
        SiteClosure,
        SiteResource,
        Patient,
        Screening,
        Enrollment,
        Allocation,
        ScheduledEvent,
        ParticipationEnd,
        Installation,
        AccessGrant,
        TrialKey,
        ProtocolActivation,
        ProtocolTransition,
    )
}
