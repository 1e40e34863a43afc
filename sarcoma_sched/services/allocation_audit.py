"""For the statistician: replay every allocation from the secret, and reveal the sequence.

Both need the trial secret. Revealing is itself recorded in the audit log (who looked, when).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import undefer

from sarcoma_sched.allocation import replay, replay_decisions
from sarcoma_sched.allocation.secret import key_fingerprint
from sarcoma_sched.db.audit import note
from sarcoma_sched.db.models import Allocation, Patient, TrialKey
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import NotFound, SecretError
from sarcoma_sched.services.allocation import history, trial_stream
from sarcoma_sched.services.lookups import current_protocol

__all__ = ["VerifyOutcome", "reveal_sequence", "verify_allocations"]


@dataclass(frozen=True)
class VerifyOutcome:
    protocol_id: str
    method: str
    checked: int
    mismatches: list[str]
    # Server draws (PostgreSQL) never recorded: an arm seen and rolled back, or an allocation
    # that failed after its draw. Not proof of tampering, but a statistician should ask.
    unrecorded_draws: list[int] = field(default_factory=list)


def verify_allocations(db: Database, protocol_id: str, secret: bytes | None) -> VerifyOutcome:
    with db.read() as session:
        protocol = current_protocol(session, protocol_id).protocol
        past = history(session, protocol.id)
        positions = [p.position for p in past]
        committed = session.get(TrialKey, protocol.id)
        calls = [
            int(detail["draw_call"])
            for (detail,) in session.execute(
                select(Allocation.detail).where(Allocation.protocol_id == protocol.id)
            )
            if isinstance(detail, dict) and isinstance(detail.get("draw_call"), int)
        ]
    fingerprint = None if secret is None else key_fingerprint(secret, protocol.id)
    if committed is not None and fingerprint is not None:  # noqa: SIM102 - the why reads apart
        # Replaying under another key would report every arm as a mismatch: say why instead.
        if not hmac.compare_digest(committed.fingerprint, fingerprint):
            raise SecretError(
                f"this is not the key {protocol.id} committed to at its first allocation "
                f"(fingerprint {committed.fingerprint[:12]}…): every replayed arm would differ"
            )
    mismatches = [
        f"position {p}: expected position {i} (the sequence has a gap or duplicate)"
        for i, p in enumerate(positions, start=1)
        if p != i
    ][:1]
    if not mismatches:
        rows = replay(
            protocol.allocation,
            [a.id for a in protocol.arms],
            past,
            trial_stream(protocol, secret),
        )
        mismatches = [
            f"position {r.position}: recorded {r.recorded_arm}, the sequence gives {r.expected_arm}"
            for r in rows
            if not r.match
        ]
    return VerifyOutcome(
        protocol.id, protocol.allocation.method, len(past), mismatches, _missing(calls)
    )


def _missing(calls: list[int]) -> list[int]:
    if not calls:
        return []
    seen = set(calls)
    return [n for n in range(1, max(calls) + 1) if n not in seen]


def reveal_sequence(
    db: Database, actor: str, protocol_id: str, secret: bytes | None
) -> list[dict[str, Any]]:
    """Every allocation with what was concealed at the time (block, size, slot)."""
    with db.write(actor, "reveal allocation sequence") as session:
        protocol = current_protocol(session, protocol_id).protocol
        rows = session.execute(
            select(Allocation, Patient.study_id, Patient.site_code)
            .options(undefer(Allocation.position))
            .join(Patient, Patient.id == Allocation.patient_id)
            .where(Allocation.protocol_id == protocol.id)
            .order_by(Allocation.position)
        ).all()
        if not rows:
            raise NotFound(f"{protocol.id} has no allocations yet")
        past = history(session, protocol.id)
        # One linear replay, not an ``allocate`` over each prefix of the history (quadratic).
        decisions = replay_decisions(
            protocol.allocation, [a.id for a in protocol.arms], past, trial_stream(protocol, secret)
        )
        out = []
        for (allocation, study_id, site), decision in zip(rows, decisions, strict=True):
            out.append(
                {
                    "position": allocation.position,
                    "study_id": study_id,
                    "site": site,
                    "date": allocation.allocation_date,
                    "stratum": allocation.stratum or "",
                    "arm": allocation.arm,
                    "replayed": decision.arm,
                    "deterministic": decision.deterministic,
                    "concealed": ", ".join(f"{k}={v}" for k, v in decision.concealed.items()),
                    "by": allocation.allocated_by,
                }
            )
        note(session, "allocation_reveal", protocol.id, {"allocations": len(out)})
        return out
