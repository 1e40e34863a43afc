"""The protocol version a site runs on a date, read from ``protocol_activations``.

Screening, enrolment, ``transition`` and ``protocol activate`` all ask it; the rule itself is
``protocol.activation`` (pure), so the property tests check the very function used here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.core_read import core_execute
from sarcoma_sched.db.models import ProtocolActivation, ProtocolVersion
from sarcoma_sched.errors import Conflict, NotFound
from sarcoma_sched.protocol.activation import Activation, active_activation
from sarcoma_sched.services.lookups import StoredProtocol, protocol_version

__all__ = ["find_version", "trial_activations", "version_at", "version_name"]


# Built once: every screening, enrolment and allocation reads it.
_ACTIVATIONS = select(
    ProtocolActivation.id,
    ProtocolActivation.version_id,
    ProtocolActivation.site_code,
    ProtocolActivation.approved_on,
).where(ProtocolActivation.protocol_id == bindparam("protocol"))


def trial_activations(session: Session, protocol_id: str) -> list[Activation]:
    return [
        Activation(row.version_id, row.site_code, row.approved_on, row.id)
        for row in core_execute(session, _ACTIVATIONS, {"protocol": protocol_id.upper()})
    ]


def version_name(session: Session, version_id: int) -> str:
    """``1.3``: the [study] version a row stores."""
    return str(
        session.scalar(select(ProtocolVersion.version).where(ProtocolVersion.id == version_id))
    )


def version_at(session: Session, protocol_id: str, site_code: str, on: dt.date) -> StoredProtocol:
    """The version site ``site_code`` runs on ``on``; refused when none is active there."""
    chosen = active_activation(trial_activations(session, protocol_id), site_code.upper(), on)
    if chosen is None:
        raise Conflict(
            f"no version of {protocol_id.upper()} is active at site {site_code.upper()} on {on}: "
            f"`sarcoma-sched protocol activate {protocol_id.upper()} VERSION --site "
            f"{site_code.upper()} --approved DATE` records its ethics approval"
        )
    return protocol_version(session, chosen.version_id)


def find_version(session: Session, protocol_id: str, version: str) -> int:
    """The row id of ``protocol_id`` version ``version`` as typed (``1.3``, or ``v1.3``)."""
    typed = version.strip()
    # "v1.3" as `protocol load` prints it, unless a version is really spelled that way.
    bare = typed[1:] if typed[:1] in ("v", "V") and typed[1:2].isdigit() else typed
    rows = session.execute(
        select(ProtocolVersion.id, ProtocolVersion.version)
        .where(ProtocolVersion.protocol_id == protocol_id.upper())
        .order_by(ProtocolVersion.id)
    ).all()
    if not rows:
        raise NotFound(f"protocol {protocol_id!r} is not in the database")
    found = [row.id for row in rows if row.version == typed] or [
        row.id for row in rows if row.version == bare
    ]
    if not found:
        known = ", ".join(row.version for row in rows)
        raise NotFound(
            f"protocol {protocol_id.upper()} has no version {version!r} (loaded: {known}; "
            "`sarcoma-sched protocol load FILE` adds one)"
        )
    return found[-1]
