"""One patient's schedule as the coordinator reads it: every event with its days, window,
status, actual date, deviation and flags, and the warnings about the whole calendar.

Core statements on a connection (``db.reader``), not the ORM, as ``visits`` and ``overdue``:
``schedule`` is read many times a day, and importing the ORM, the models, the protocol models
(pydantic) and the ``holidays`` package cost it more than its queries (issue 24). What the
stored rows do not say comes from two facts kept on disk (``queries.kept``), each worked out on
first use exactly as before: what the protocol version the patient was enrolled under says of
each occurrence (shown as days or a period, whether its day is a working day), and how far the
country's holidays are official (``holiday_years``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, or_, select, text

from sarcoma_sched.db.tables import (
    ALLOCATIONS,
    ENROLLMENTS,
    PATIENTS,
    PROTOCOL_DEFINITIONS,
    PROTOCOL_VERSIONS,
    SCHEDULED_EVENTS,
    SITES,
)
from sarcoma_sched.errors import NotFound
from sarcoma_sched.holiday_years import (
    OfficialYears,
    announcements_of,
    official_through,
)
from sarcoma_sched.notices import Notice, notices_of
from sarcoma_sched.services.names import no_site, only_named, patient_key
from sarcoma_sched.services.queries.kept import code_stamp, file_stamp, kept, module_file
from sarcoma_sched.vocabulary import EventStatus, ReasonCode

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from sarcoma_sched.protocol.model import Protocol

__all__ = ["PatientSchedule", "StoredEvent", "occurrence_facts", "patient_schedule"]

# An occurrence as the schedule shows it: ``Span.show_as`` and ``Occurrence.day_rule``.
Facts = tuple[str, str]
# Per arm id, each of its occurrences' facts by occurrence id.
ProtocolFacts = dict[str, dict[str, Facts]]


@dataclass(frozen=True)
class StoredEvent:
    """One stored event, with what its protocol says about it (``notices.Placed``)."""

    id: str
    label: str
    kind: str
    cycle: int | None
    status: EventStatus
    pinned: bool  # a coordinator's date (``reschedule``)
    target: dt.date
    earliest: dt.date
    latest: dt.date
    days: tuple[dt.date, ...]
    time: str | None  # local "HH:MM" of a timed event
    show_as: str  # "days" (each a visit) or "period" (one span, e.g. oral dosing)
    working_days_only: bool
    actual: dt.date | None
    reason: ReasonCode | None  # the code only: a coordinator's note stays in the database
    deviation: str | None
    flags: tuple[Notice, ...]


@dataclass(frozen=True)
class PatientSchedule:
    ref: str  # the study id, or the screening number of a patient not yet enrolled
    protocol_id: str
    site_code: str
    time_zone: str
    arm: str | None  # None before allocation: no calendar yet
    allocation_date: dt.date | None
    events: tuple[StoredEvent, ...]
    warnings: tuple[Notice, ...]


# Built once: composing a statement costs more than SQLite takes to run it.
_P, _A, _E = PATIENTS.c, ALLOCATIONS.c, SCHEDULED_EVENTS.c
_PATIENT = select(_P.id, _P.protocol_id, _P.site_code, _P.screening_number, _P.study_id).where(
    # As lookups.patient_named: either number, as patient_key spells it.
    or_(_P.study_id == bindparam("key"), _P.screening_number == bindparam("key"))
)
# The two columns only: where in the sequence a patient fell is not every role's to read.
_ALLOCATION = select(_A.arm, _A.allocation_date).where(_A.patient_id == bindparam("patient"))
_EVENTS = (
    select(
        _E.id,
        _E.event_id,
        _E.label,
        _E.kind,
        _E.cycle,
        _E.status,
        _E.pinned,
        _E.target,
        _E.earliest,
        _E.latest,
        _E.days,
        _E.local_time,
        _E.actual_date,
        _E.reason,
        _E.deviation,
        _E.flags,
    )
    .where(_E.patient_id == bindparam("patient"))
    .order_by(_E.first_day, _E.id)
)
_VERSION = select(ENROLLMENTS.c.protocol_version_id).where(
    ENROLLMENTS.c.patient_id == bindparam("patient")
)
_SOURCE = select(PROTOCOL_VERSIONS.c.source, PROTOCOL_VERSIONS.c.source_name).where(
    PROTOCOL_VERSIONS.c.id == bindparam("version")
)
_SITE_DEFINITION = (
    select(PROTOCOL_DEFINITIONS.c.site_definition, PROTOCOL_VERSIONS.c.source_name)
    .join(PROTOCOL_VERSIONS, PROTOCOL_VERSIONS.c.id == PROTOCOL_DEFINITIONS.c.version_id)
    .where(PROTOCOL_DEFINITIONS.c.version_id == bindparam("version"))
)
_SITE = select(SITES.c.holiday_country, SITES.c.time_zone).where(SITES.c.code == bindparam("site"))
_SITE_CODES = select(SITES.c.code).order_by(SITES.c.code)
_MAY_READ_SOURCE = text("SELECT has_column_privilege('protocol_versions', 'source', 'SELECT')")


def _first(pair: tuple[int, StoredEvent]) -> int:
    return pair[0]


def patient_schedule(connection: Connection, ref: str) -> PatientSchedule:
    """The schedule of the patient ``ref`` names (study id or screening number, as
    ``lookups.find_patient``). A use case in a session reads it on ``session.connection()``
    after a flush, so the rows it changed are read as changed."""
    found = connection.execute(_PATIENT, {"key": patient_key(ref)}).all()
    patient = only_named(found, ref, lambda p: p.protocol_id)
    allocated = connection.execute(_ALLOCATION, {"patient": patient.id}).first()
    rows = connection.execute(_EVENTS, {"patient": patient.id}).all()
    steps = _steps(connection, patient.id, allocated.arm) if allocated and rows else {}
    events = []
    for r in rows:
        show_as, day_rule = steps.get(r.event_id, ("days", None))
        events.append(
            StoredEvent(
                id=r.event_id,
                label=r.label,
                kind=r.kind,
                cycle=r.cycle,
                status=EventStatus(r.status),
                pinned=r.pinned is not None,
                target=r.target,
                earliest=r.earliest,
                latest=r.latest,
                days=tuple(dt.date.fromisoformat(d) for d in r.days),
                time=r.local_time,
                show_as=show_as,
                working_days_only=day_rule == "working_day",
                actual=r.actual_date,
                reason=ReasonCode.of(r.reason),
                deviation=r.deviation,
                flags=tuple(Notice(f["code"], f["message"], (r.event_id,)) for f in r.flags or ()),
            )
        )
    site = connection.execute(_SITE, {"site": patient.site_code}).first()
    if site is None:  # pragma: no cover - patients reference existing sites
        raise no_site(patient.site_code, connection.execute(_SITE_CODES).scalars())
    # The estimate notice counts events in the order the plan placed them (the order the rows
    # were written in), as the plan that was stored said it.
    written = [e for _, e in sorted(zip([r.id for r in rows], events, strict=True), key=_first)]
    warnings = notices_of(written, official_years(site.holiday_country)) if rows else ()
    return PatientSchedule(
        ref=patient.study_id or patient.screening_number,
        protocol_id=patient.protocol_id,
        site_code=patient.site_code,
        time_zone=site.time_zone,
        arm=allocated.arm if allocated else None,
        allocation_date=allocated.allocation_date if allocated else None,
        events=tuple(events),
        warnings=warnings,
    )


# -- what the protocol says of each occurrence ----------------------------------------------


def _steps(connection: Connection, patient_id: int, arm: str) -> dict[str, Facts]:
    """The arm's occurrences' facts by id, from the protocol version the patient was enrolled
    under: which rule each event's day follows (the stored row does not say). Read from the
    text this login may read, as ``lookups.protocol_version`` parses it: the source, or for a
    role that may not read it (PostgreSQL's column privileges), the concealed definition."""
    version = connection.execute(_VERSION, {"patient": patient_id}).scalar()
    if version is None:  # pragma: no cover - an allocated patient is enrolled
        return {}
    form = "source" if _may_read_source(connection) else "site"
    row = connection.execute(
        _SOURCE if form == "source" else _SITE_DEFINITION, {"version": version}
    )
    stored = row.first()
    if stored is None:  # pragma: no cover - an enrolment names a stored version
        raise NotFound(f"protocol version {version} does not exist")
    definition, name = stored
    facts = occurrence_facts(form, definition, name)
    if arm not in facts:  # pragma: no cover - an allocation's arm is its protocol's
        _parse(form, definition, name).arm(arm)  # raises NotFound naming the arms
    return facts[arm]


def _may_read_source(connection: Connection) -> bool:
    """As ``lookups.may_read``: always on SQLite; on PostgreSQL, as the column privilege says."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.execute(_MAY_READ_SOURCE).scalar())


def occurrence_facts(form: str, definition: str, name: str) -> ProtocolFacts:
    """Each arm's occurrences' ``(show_as, day_rule)`` by id, of the protocol ``definition``
    (``form``: "source", its TOML, or "site", its concealed JSON), as parsing it says: kept on
    disk by a digest of the text and of the parser's code, worked out on a miss."""
    code = _code()
    if code is None:  # pragma: no cover - installed as a zip: nothing kept
        return _facts_of(_parse(form, definition, name))
    digest = hashlib.sha256(definition.encode()).hexdigest()
    return kept(
        "occurrences",
        (form, digest, code),
        lambda: _facts_of(_parse(form, definition, name)),
        dump=lambda facts: facts,
        load=_load_facts,
    )


def _code() -> str | None:
    """What the kept facts are worked out with: this package (the parser, ``official_through``)
    and pydantic (the validation). One stamp for both facts, taken once per process (a
    millisecond or two of file stats)."""
    return code_stamp("sarcoma_sched", "pydantic", "pydantic_core")


def _parse(form: str, definition: str, name: str) -> Protocol:
    if form == "source":
        from sarcoma_sched.protocol.loader import parse_protocol

        return parse_protocol(definition, source=name)
    from sarcoma_sched.protocol.concealment import parse_site_definition

    return parse_site_definition(definition, name)


def _facts_of(protocol: Protocol) -> ProtocolFacts:
    from sarcoma_sched.protocol.occurrences import occurrences

    return {
        arm.id: {o.id: (o.span.show_as, o.day_rule) for o in occurrences(arm)}
        for arm in protocol.arms
    }


def _load_facts(data: Any) -> ProtocolFacts:
    """A kept entry back, or TypeError/ValueError for anything else (then it is parsed again)."""
    if not isinstance(data, dict):
        raise TypeError("not a mapping of arms")
    facts: ProtocolFacts = {}
    for arm, steps in data.items():
        if not isinstance(steps, dict):
            raise TypeError("not a mapping of occurrences")
        facts[arm] = {}
        for step, pair in steps.items():
            show_as, day_rule = pair  # ValueError/TypeError unless a pair
            if not isinstance(show_as, str) or not isinstance(day_rule, str):
                raise TypeError("not a pair of strings")
            facts[arm][step] = (show_as, day_rule)
    return facts


# -- how far the holidays are official --------------------------------------------------------


def official_years(country: str) -> OfficialYears:
    """``OfficialYears.of(country)`` without importing the ``holidays`` package each time: the
    last announced year is kept by a digest of the package file that holds the announcements
    and of this package's code (``official_through``)."""
    module = announcements_of(country)
    if module is None:
        return OfficialYears.of(country)  # every year official: nothing to read
    source = module_file(module)
    code = _code()
    if source is None or code is None:
        return OfficialYears.of(country)
    through = kept(
        "official-through",
        (country, file_stamp(source), code),
        lambda: official_through(country),
        dump=lambda year: year,
        load=_load_year,
    )
    return OfficialYears(country, through)


def _load_year(data: Any) -> int | None:
    if data is not None and (not isinstance(data, int) or isinstance(data, bool)):
        raise TypeError("not a year")
    return data
