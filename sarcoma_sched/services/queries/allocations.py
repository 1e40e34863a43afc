"""A trial's allocation sequence as recorded: position, patient, site, date, stratum, arm and
the basis of an assigned arm. What the sequence concealed needs the secret and is an audited
read of its own (``services.allocation_audit.reveal_sequence``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from sarcoma_sched.db.models import Allocation, Patient
from sarcoma_sched.services.lookups import current_protocol, may_read

__all__ = ["ALLOCATION_COLUMNS", "allocation_listing"]

ALLOCATION_COLUMNS = ["position", "study_id", "site", "date", "stratum", "arm", "basis", "by"]


def allocation_listing(session: Session, protocol_id: str) -> list[dict[str, Any]]:
    """Every allocation of the trial in sequence order (raises NotFound for an unknown trial)."""
    protocol = current_protocol(session, protocol_id).protocol
    # A site role may not read the positions (column privileges): its listing is in the order
    # its own allocations were made, with no position.
    numbered = may_read(session, "allocations", "position")
    query = (
        select(Allocation, Patient.study_id, Patient.site_code)
        .join(Patient, Patient.id == Allocation.patient_id)
        .where(Allocation.protocol_id == protocol.id)
    )
    if numbered:
        query = query.options(undefer(Allocation.position)).order_by(Allocation.position)
    else:
        query = query.order_by(Allocation.allocated_at, Allocation.id)
    result = session.execute(query).all()
    return [
        {
            "position": a.position if numbered else None,
            "study_id": study_id,
            "site": site,
            "date": a.allocation_date,
            "stratum": a.stratum or "",
            "arm": a.arm,
            "basis": a.basis or "",
            "by": a.allocated_by,
        }
        for a, study_id, site in result
    ]
