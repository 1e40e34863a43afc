"""Get one thing by the name a coordinator uses, or raise ``NotFound`` naming what exists.

A patient by study id or screening number, a site by code (and its working-day calendar), a
protocol's current or stored version. The read side (``services.queries``) and every use case
share these, and this module imports no other service but ``names`` (the wording of a reference
that finds nothing, which the Core reads share).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, ColumnElement, bindparam, or_, select, text
from sqlalchemy.orm import Session

from sarcoma_sched.calendar import SiteCalendar
from sarcoma_sched.db.core_read import core_execute
from sarcoma_sched.db.facts import known, learned
from sarcoma_sched.db.models import (
    Installation,
    Patient,
    ProtocolDefinition,
    ProtocolVersion,
    Site,
    SiteClosure,
)
from sarcoma_sched.errors import NotFound
from sarcoma_sched.protocol.concealment import parse_site_definition
from sarcoma_sched.protocol.loader import parse_protocol
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.names import no_site, only_named, patient_key
from sarcoma_sched.vocabulary import SiteDayKind

__all__ = [
    "InstallationFacts",
    "StoredProtocol",
    "current_protocol",
    "find_patient",
    "get_site",
    "installation",
    "may_read",
    "only_patient",
    "patient_key",
    "patient_named",
    "protocol_version",
    "site_calendar",
    "site_today",
    "site_zone",
]

T = TypeVar("T")


def find_patient(session: Session, ref: str, *, for_update: bool = False) -> Patient:
    """By study id (``PKUIH-NATARS-0007``) or screening number (``PKUIH-NATARS-S0007``), in any
    case: both are made of upper-case site and protocol codes, so the typed reference is
    compared upper-cased (the indexes still serve it)."""
    query = select(Patient).where(patient_named(patient_key(ref)))
    if for_update:
        query = query.with_for_update()
    return only_patient(session.scalars(query).all(), ref, lambda p: p)


def patient_named(key: str | BindParameter[str]) -> ColumnElement[bool]:
    """The condition ``find_patient`` finds by, for a query that reads more with the patient:
    ``key`` as ``patient_key`` spells it, or a bound parameter to be given so."""
    return or_(Patient.study_id == key, Patient.screening_number == key)


def only_patient(found: Sequence[T], ref: str, patient_of: Callable[[T], Patient]) -> T:
    """The one row found for ``ref``, or ``NotFound``/``Conflict`` as ``find_patient`` says."""
    return only_named(found, ref, lambda p: patient_of(p).protocol_id)


@dataclass(frozen=True)
class InstallationFacts:
    uid: str
    purpose: str


def installation(session: Session) -> InstallationFacts | None:
    """This database's one ``installation`` row, None before ``init`` wrote it. Written once and
    never changed, so read once per Database (``db.facts``)."""
    key = ("installation",)
    facts = known(session, key)
    if facts is None:
        # Not a flush point: rows pending in the unit of work keep the order it writes them
        # (and their audit entries) in.
        with session.no_autoflush:
            row = session.execute(
                select(Installation.uid, Installation.purpose).where(Installation.id == 1)
            ).first()
        if row is None:
            return None
        facts = InstallationFacts(row.uid, row.purpose)
        learned(session, key, facts)
    return facts


def get_site(session: Session, code: str) -> Site:
    """By code, in any case (site codes are stored upper case)."""
    site = session.get(Site, code.upper())
    if site is None:
        raise no_site(code, session.scalars(select(Site.code).order_by(Site.code)))
    return site


def site_zone(session: Session, site_code: str, protocol: Protocol | None = None) -> str:
    """The site's time zone. With ``protocol``, a site whose row this login may not read (row-level
    security: a coordinator asking about another site) has the zone the protocol declares for
    it, so that what the login may not do there is refused by the server, not by a lookup."""
    site = session.get(Site, site_code.upper())
    if site is not None:
        return site.time_zone
    declared = (
        next((s for s in protocol.sites if s.code == site_code.upper()), None) if protocol else None
    )
    if protocol is None or declared is None:
        return get_site(session, site_code).time_zone  # raises NotFound naming the sites
    return declared.time_zone or protocol.study.time_zone


def site_today(
    session: Session,
    site_code: str,
    now: dt.datetime | None = None,
    protocol: Protocol | None = None,
) -> dt.date:
    """The date at the site now, in its time zone: what today is where the patient is seen,
    whatever the clock of the machine running the command says (a server in UTC is a day
    behind Beijing every morning). ``now`` is an aware instant; the current one by default."""
    zone = ZoneInfo(site_zone(session, site_code, protocol))
    return (now or dt.datetime.now(dt.UTC)).astimezone(zone).date()


# Built once, as each statement of an allocation is: composing one costs more than running it.
_SITE = select(
    Site.holiday_country, Site.holiday_subdivision, Site.time_zone, Site.inpatient_over_holidays
).where(Site.code == bindparam("site"))
_CLOSURES = select(SiteClosure.kind, SiteClosure.first_day, SiteClosure.last_day).where(
    SiteClosure.site_code == bindparam("site")
)
_SOURCE = select(ProtocolVersion.source, ProtocolVersion.source_name).where(
    ProtocolVersion.id == bindparam("version")
)


def site_calendar(session: Session, site_code: str) -> SiteCalendar:
    """The site's working days: its holiday country and subdivision, recorded closures and
    extra working days (``site open``)."""
    site = core_execute(session, _SITE, {"site": site_code}).first()
    if site is None:  # pragma: no cover - patients reference existing sites
        raise LookupError(site_code)
    closures: set[dt.date] = set()
    extra: set[dt.date] = set()
    for closure in core_execute(session, _CLOSURES, {"site": site_code}):
        days = extra if closure.kind == SiteDayKind.OPEN else closures
        day = closure.first_day
        while day <= closure.last_day:
            days.add(day)
            day += dt.timedelta(days=1)
    return SiteCalendar(
        site.holiday_country,
        site.holiday_subdivision,
        time_zone=site.time_zone,
        closures=closures,
        extra_working_days=extra,
        inpatient_over_holidays=site.inpatient_over_holidays,
    )


@dataclass(frozen=True)
class StoredProtocol:
    """A protocol version as stored: its row id and the definition parsed from its source."""

    version_id: int
    protocol: Protocol


def current_protocol(session: Session, protocol_id: str) -> StoredProtocol:
    """The newest stored version of a protocol: what new screenings use."""
    row = session.scalar(
        select(ProtocolVersion.id)
        .where(ProtocolVersion.protocol_id == protocol_id.upper())
        .order_by(ProtocolVersion.id.desc())
        .limit(1)
    )
    if row is None:
        known = ", ".join(session.scalars(select(ProtocolVersion.protocol_id).distinct()))
        raise NotFound(
            f"protocol {protocol_id!r} is not in the database (loaded: {known or 'none'}; "
            "run `sarcoma-sched init`)"
        )
    return protocol_version(session, row)


def protocol_version(session: Session, version_id: int) -> StoredProtocol:
    """A stored version, parsed from the exact source it was loaded from, or, for a role that
    may not read the source, from its concealed definition (``protocol.concealment``).

    A stored version is never changed, so it is read once per Database (``db.facts``): one
    use case reads the same version several times (enrolment checks it, allocation plans with
    it), and every allocation of a trial reads the one its sites run."""
    key = ("protocol_version", version_id)
    found = known(session, key)
    if found is None:
        found = _read_version(session, version_id)
        learned(session, key, found)
    return cast(StoredProtocol, found)


def _read_version(session: Session, version_id: int) -> StoredProtocol:
    if may_read(session, "protocol_versions", "source"):
        row = core_execute(session, _SOURCE, {"version": version_id}).first()
        if row is None:
            raise NotFound(f"protocol version {version_id} does not exist")
        return StoredProtocol(version_id, _parse(row.source, row.source_name))
    view = session.execute(
        select(ProtocolDefinition.site_definition, ProtocolVersion.source_name)
        .join(ProtocolVersion, ProtocolVersion.id == ProtocolDefinition.version_id)
        .where(ProtocolDefinition.version_id == version_id)
    ).first()
    if view is None:
        raise NotFound(f"protocol version {version_id} does not exist")
    return StoredProtocol(version_id, _parse_site(view.site_definition, view.source_name))


def may_read(session: Session, table: str, column: str) -> bool:
    """Whether the login may read ``table.column``: always on SQLite; on PostgreSQL, as its
    column privileges say (a site role may not read a protocol's source or where in the
    allocation sequence a patient fell). Asked once per session."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    cache: dict[tuple[str, str], bool] = session.info.setdefault("sarcoma_may_read", {})
    key = (table, column)
    if key not in cache:
        cache[key] = bool(
            session.scalar(
                text("SELECT has_column_privilege(:t, :c, 'SELECT')"), {"t": table, "c": column}
            )
        )
    return cache[key]


@lru_cache(maxsize=32)
def _parse(source: str, name: str) -> Protocol:
    # Parsing and validating a protocol costs milliseconds; every allocation needs one.
    return parse_protocol(source, source=name)


@lru_cache(maxsize=32)
def _parse_site(definition: str, name: str) -> Protocol:
    return parse_site_definition(definition, name)
