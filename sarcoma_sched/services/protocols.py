"""Loading protocol versions into the database, and the sites they bring (reading one back is
``services.lookups``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    Installation,
    ProtocolActivation,
    ProtocolDefinition,
    ProtocolVersion,
    Site,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import Conflict
from sarcoma_sched.protocol.allocation import ConcealedAllocation
from sarcoma_sched.protocol.concealment import server_allocation, site_definition
from sarcoma_sched.protocol.loader import LoadedProtocol
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.lookups import current_protocol
from sarcoma_sched.vocabulary import DatabasePurpose

__all__ = ["LoadResult", "initialize", "load_protocols"]


@dataclass(frozen=True)
class LoadResult:
    protocol_id: str
    version: str
    content_hash: str
    new: bool


def initialize(
    db: Database, actor: str, *, purpose: str = DatabasePurpose.TRIAL
) -> tuple[str | None, str | None, list[LoadResult]]:
    """What ``sarcoma-sched init`` does: the schema to head, this installation's row, then the
    bundled protocols and their sites. Returns (revision before, revision after, what each
    protocol file gave). ``purpose`` "demo" only for the demonstration's own database."""
    from sarcoma_sched.db.migrate import upgrade  # alembic: only when a database is set up
    from sarcoma_sched.protocol import list_protocols

    before, after = upgrade(db.engine)
    with db.write(actor, "init") as session:
        # Once set, a database's purpose stays: re-running init never turns a trial into a demo.
        if session.get(Installation, 1) is None:
            session.add(
                Installation(id=1, uid=str(uuid.uuid4()), purpose=purpose, created_at=utc_now())
            )
    return before, after, load_protocols(db, actor, list_protocols())


def load_protocols(db: Database, actor: str, loaded: Iterable[LoadedProtocol]) -> list[LoadResult]:
    """Store each protocol version not yet known (by content hash) and add its missing sites.

    Loading the same file twice changes nothing; a changed file with a new version number
    becomes a new version and the patients already enrolled keep theirs; a changed file with a
    version number already loaded is refused (nothing of the batch is stored).
    """
    results = []
    with db.write(actor, "load protocols") as session:
        for item in loaded:
            protocol = item.protocol
            known = session.scalar(
                select(ProtocolVersion.id).where(
                    ProtocolVersion.protocol_id == protocol.id,
                    ProtocolVersion.content_hash == protocol.content_hash,
                )
            )
            if known is None:
                same = session.scalar(
                    select(ProtocolVersion.content_hash).where(
                        ProtocolVersion.protocol_id == protocol.id,
                        ProtocolVersion.version == protocol.version,
                    )
                )
                if same is not None:
                    # Patients enrolled under that version must keep meaning one definition.
                    raise Conflict(
                        f"{protocol.id} version {protocol.version} is already loaded with other "
                        f"content ({same[:19]}, this file {protocol.content_hash[:19]}): an "
                        "amendment needs a new version in [study] version"
                    )
                _check_allocation_kept(session, protocol)
                version = ProtocolVersion(
                    protocol_id=protocol.id,
                    version=protocol.version,
                    content_hash=protocol.content_hash,
                    source_name=item.path.name if item.path else f"{protocol.id}.toml",
                    source=item.source,
                    loaded_at=utc_now(),
                    loaded_by=actor,
                )
                session.add(version)
                session.flush()
                session.add(
                    ProtocolDefinition(
                        version_id=version.id,
                        site_definition=site_definition(protocol),
                        allocation=server_allocation(protocol),
                    )
                )
                _add_baseline(session, actor, protocol.id, version.id)
            _add_missing_sites(session, protocol)
            session.flush()
            results.append(
                LoadResult(protocol.id, protocol.version, protocol.content_hash, known is None)
            )
    return results


def _add_baseline(session: Session, actor: str, protocol_id: str, version_id: int) -> None:
    """A trial's first version runs at every site from the beginning; a later one runs only
    where ``protocol activate`` records its ethics approval (migration 0011)."""
    exists = session.scalar(
        select(ProtocolActivation.id).where(
            ProtocolActivation.protocol_id == protocol_id, ProtocolActivation.site_code.is_(None)
        )
    )
    if exists is None:
        session.add(
            ProtocolActivation(
                protocol_id=protocol_id,
                version_id=version_id,
                site_code=None,
                approved_on=None,
                activated_at=utc_now(),
                activated_by=actor,
            )
        )


def _check_allocation_kept(session: Session, protocol: Protocol) -> None:
    """A trial that has allocated keeps its allocation rules: a new version that changed the
    method, ratio, strata or factors would make the sequence unprovable (``allocation verify``
    replays every draw under one set of rules), so it is refused."""
    allocated = session.scalar(
        select(func.count()).select_from(Allocation).where(Allocation.protocol_id == protocol.id)
    )
    if not allocated:
        return
    before = current_protocol(session, protocol.id).protocol
    if isinstance(before.allocation, ConcealedAllocation):
        # A login that may not read the method may not load a version either: the database
        # refuses the insert, and says so, rather than a comparison with the concealed view.
        return
    old = before.allocation.model_dump(mode="json")
    new = protocol.allocation.model_dump(mode="json")
    if old != new:
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise Conflict(
            f"{protocol.id} has allocated {allocated} patient(s) under version {before.version}: "
            f"version {protocol.version} changes its allocation ({', '.join(changed)}), which "
            "the allocation sequence could no longer be verified against; keep [allocation] "
            "as it is"
        )


def _add_missing_sites(session: Session, protocol: Protocol) -> None:
    for site in protocol.sites:
        if session.get(Site, site.code) is not None:
            continue
        session.add(
            Site(
                code=site.code,
                name=site.name,
                time_zone=site.time_zone or protocol.study.time_zone,
                holiday_country=site.holiday_country or protocol.study.holiday_country,
                holiday_subdivision=site.holiday_subdivision
                or (None if site.holiday_country else protocol.study.holiday_subdivision),
                created_at=utc_now(),
            )
        )
