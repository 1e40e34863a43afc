"""One stored version of a protocol, as its definition (for the exports that take a version)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import ProtocolVersion
from sarcoma_sched.errors import NotFound
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.lookups import current_protocol, protocol_version

__all__ = ["protocol_definition"]


def protocol_definition(session: Session, protocol_id: str, version: str | None) -> Protocol:
    """Version ``version`` of ``protocol_id`` as loaded, or its current version."""
    if version is None:
        return current_protocol(session, protocol_id).protocol
    row = session.scalar(
        select(ProtocolVersion.id)
        .where(
            ProtocolVersion.protocol_id == protocol_id.upper(), ProtocolVersion.version == version
        )
        .order_by(ProtocolVersion.id.desc())
        .limit(1)
    )
    if row is None:
        known = session.scalars(
            select(ProtocolVersion.version)
            .where(ProtocolVersion.protocol_id == protocol_id.upper())
            .order_by(ProtocolVersion.id)
        ).all()
        if not known:
            raise NotFound(f"protocol {protocol_id!r} is not in the database")
        raise NotFound(
            f"protocol {protocol_id.upper()} has no version {version!r} "
            f"(loaded: {', '.join(known)})"
        )
    return protocol_version(session, row).protocol
