"""The versions of a protocol as loaded, and what one amendment changed from another."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Enrollment, ProtocolVersion
from sarcoma_sched.errors import NotFound
from sarcoma_sched.protocol.diff import ProtocolChange, diff_protocols
from sarcoma_sched.services.lookups import protocol_version

__all__ = ["VersionRow", "protocol_versions", "version_diff"]


@dataclass(frozen=True)
class VersionRow:
    protocol_id: str
    version: str
    content_hash: str
    source_name: str
    loaded_at: dt.datetime
    loaded_by: str
    enrolled: int  # patients enrolled under it


def protocol_versions(session: Session, protocol_id: str) -> list[VersionRow]:
    """Every version of ``protocol_id`` in the order loaded, the newest last."""
    enrolled = (
        select(Enrollment.protocol_version_id, func.count().label("n"))
        .group_by(Enrollment.protocol_version_id)
        .subquery()
    )
    # Named columns, never the source: a site role may not read it (it holds the method).
    rows = session.execute(
        select(
            ProtocolVersion.protocol_id,
            ProtocolVersion.version,
            ProtocolVersion.content_hash,
            ProtocolVersion.source_name,
            ProtocolVersion.loaded_at,
            ProtocolVersion.loaded_by,
            func.coalesce(enrolled.c.n, 0),
        )
        .outerjoin(enrolled, enrolled.c.protocol_version_id == ProtocolVersion.id)
        .where(ProtocolVersion.protocol_id == protocol_id.upper())
        .order_by(ProtocolVersion.id)
    ).all()
    if not rows:
        raise NotFound(f"protocol {protocol_id!r} is not in the database")
    return [VersionRow(*row) for row in rows]


def version_diff(session: Session, protocol_id: str, old: str, new: str) -> list[ProtocolChange]:
    """What version ``new`` of ``protocol_id`` changes from version ``old``."""
    return diff_protocols(_version(session, protocol_id, old), _version(session, protocol_id, new))


def _version(session: Session, protocol_id: str, version: str):  # type: ignore[no-untyped-def]
    row = session.scalar(
        select(ProtocolVersion.id)
        .where(
            ProtocolVersion.protocol_id == protocol_id.upper(), ProtocolVersion.version == version
        )
        .order_by(ProtocolVersion.id.desc())
        .limit(1)
    )
    if row is None:
        known = ", ".join(v.version for v in protocol_versions(session, protocol_id))
        raise NotFound(
            f"protocol {protocol_id.upper()} has no version {version!r} (loaded: {known})"
        )
    return protocol_version(session, row).protocol
