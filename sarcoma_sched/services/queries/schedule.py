"""One patient's schedule as the coordinator reads it: every event with its days, window,
status, actual date, deviation and flags, and the warnings about the whole calendar.

SQL text the driver runs (``db.rows``), as ``visits`` and ``overdue``: ``schedule`` is read many
times a day, and importing SQLAlchemy, the models, the protocol models (pydantic) and the
``holidays`` package cost it more than its queries (issue 24). What the
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

from sarcoma_sched.db.rows import day, day_or_none, decoded, rows_of
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
    from sqlalchemy.orm import Session

    from sarcoma_sched.db.rows import Rows
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


# As lookups.patient_named: either number, as patient_key spells it.
_PATIENT = (
    "SELECT id, protocol_id, site_code, screening_number, study_id FROM patients "
    "WHERE study_id = :key OR screening_number = :key"
)
# The two columns only: where in the sequence a patient fell is not every role's to read.
_ALLOCATION = "SELECT arm, allocation_date FROM allocations WHERE patient_id = :patient"
_EVENTS = (
    "SELECT id, event_id, label, kind, cycle, status, pinned, target, earliest, latest, days, "
    "local_time, actual_date, reason, deviation, flags FROM scheduled_events "
    "WHERE patient_id = :patient ORDER BY first_day, id"
)
_VERSION = "SELECT protocol_version_id FROM enrollments WHERE patient_id = :patient"
_SOURCE = "SELECT source, source_name FROM protocol_versions WHERE id = :version"
_SITE_DEFINITION = (
    "SELECT d.site_definition, v.source_name FROM protocol_definitions AS d "
    "JOIN protocol_versions AS v ON v.id = d.version_id WHERE d.version_id = :version"
)
_SITE = "SELECT holiday_country, time_zone FROM sites WHERE code = :site"
_SITE_CODES = "SELECT code FROM sites ORDER BY code"
_MAY_READ_SOURCE = "SELECT has_column_privilege('protocol_versions', 'source', 'SELECT')"


@dataclass(frozen=True)
class _Patient:
    id: int
    protocol_id: str
    site_code: str
    screening_number: str
    study_id: str | None


def _first(pair: tuple[int, StoredEvent]) -> int:
    return pair[0]


def patient_schedule(where: Rows | Session | Connection, ref: str) -> PatientSchedule:
    """The schedule of the patient ``ref`` names (study id or screening number, as
    ``lookups.find_patient``). A use case in a session reads it there, after the flush
    ``rows_of`` makes, so the rows it changed are read as changed."""
    rows = rows_of(where)
    found = [_Patient(*r) for r in rows.all(_PATIENT, {"key": patient_key(ref)})]
    patient = only_named(found, ref, lambda p: p.protocol_id)
    allocated = next(iter(rows.all(_ALLOCATION, {"patient": patient.id})), None)
    stored = rows.all(_EVENTS, {"patient": patient.id})
    steps = _steps(rows, patient.id, allocated[0]) if allocated and stored else {}
    events = []
    for (
        _,
        event_id,
        label,
        kind,
        cycle,
        status,
        pinned,
        target,
        earliest,
        latest,
        days,
        local_time,
        actual_date,
        reason,
        deviation,
        flags,
    ) in stored:
        show_as, day_rule = steps.get(event_id, ("days", None))
        events.append(
            StoredEvent(
                id=event_id,
                label=label,
                kind=kind,
                cycle=cycle,
                status=EventStatus(status),
                pinned=pinned is not None,
                target=day(target),
                earliest=day(earliest),
                latest=day(latest),
                days=tuple(dt.date.fromisoformat(d) for d in decoded(days)),
                time=local_time,
                show_as=show_as,
                working_days_only=day_rule == "working_day",
                actual=day_or_none(actual_date),
                reason=ReasonCode.of(reason),
                deviation=deviation,
                flags=tuple(
                    Notice(f["code"], f["message"], (event_id,)) for f in decoded(flags) or ()
                ),
            )
        )
    site = next(iter(rows.all(_SITE, {"site": patient.site_code})), None)
    if site is None:  # pragma: no cover - patients reference existing sites
        raise no_site(patient.site_code, (c for (c,) in rows.all(_SITE_CODES)))
    holiday_country, time_zone = site
    # The estimate notice counts events in the order the plan placed them (the order the rows
    # were written in), as the plan that was stored said it.
    written = [e for _, e in sorted(zip([r[0] for r in stored], events, strict=True), key=_first)]
    warnings = notices_of(written, official_years(holiday_country)) if stored else ()
    return PatientSchedule(
        ref=patient.study_id or patient.screening_number,
        protocol_id=patient.protocol_id,
        site_code=patient.site_code,
        time_zone=time_zone,
        arm=allocated[0] if allocated else None,
        allocation_date=day(allocated[1]) if allocated else None,
        events=tuple(events),
        warnings=warnings,
    )


# -- what the protocol says of each occurrence ----------------------------------------------


def _steps(rows: Rows, patient_id: int, arm: str) -> dict[str, Facts]:
    """The arm's occurrences' facts by id, from the protocol version the patient was enrolled
    under: which rule each event's day follows (the stored row does not say). Read from the
    text this login may read, as ``lookups.protocol_version`` parses it: the source, or for a
    role that may not read it (PostgreSQL's column privileges), the concealed definition."""
    enrolled = rows.all(_VERSION, {"patient": patient_id})
    if not enrolled:  # pragma: no cover - an allocated patient is enrolled
        return {}
    version = enrolled[0][0]
    form = "source" if _may_read_source(rows) else "site"
    found = rows.all(_SOURCE if form == "source" else _SITE_DEFINITION, {"version": version})
    stored = found[0] if found else None
    if stored is None:  # pragma: no cover - an enrolment names a stored version
        raise NotFound(f"protocol version {version} does not exist")
    definition, name = stored
    facts = occurrence_facts(form, definition, name)
    if arm not in facts:  # pragma: no cover - an allocation's arm is its protocol's
        _parse(form, definition, name).arm(arm)  # raises NotFound naming the arms
    return facts[arm]


def _may_read_source(rows: Rows) -> bool:
    """As ``lookups.may_read``: always on SQLite; on PostgreSQL, as the column privilege says."""
    if rows.dialect != "postgresql":
        return True
    return bool(rows.all(_MAY_READ_SOURCE)[0][0])


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
