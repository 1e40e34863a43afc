"""The append-only, hash-chained audit log and its verifier.

Every flush of an audited row (see ``db.models.AUDITED``) appends one entry per changed row in
the same transaction: who, when (UTC), which action, which row, and the row before and after as
canonical JSON. Each entry's hash covers its content and the previous entry's hash, so editing,
deleting or inserting an entry breaks the chain from that point on; comparing each row with the
state its last entry recorded catches a row changed behind the engine's back.

What a chain cannot do: someone with write access who rewrites the whole log consistently is
only caught by comparing the head hash with a copy kept elsewhere. ``audit verify`` prints the
head hash so a trial manager can file it (e.g. in the trial master file) and compare later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, inspect, select, update
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import AUDITED, AuditEntry, AuditHead, Base

__all__ = [
    "GENESIS_HASH",
    "AuditReport",
    "canonical",
    "entry_hash",
    "note",
    "record_flush",
    "snapshot",
    "verify",
]

GENESIS_HASH = "0" * 64
ACTOR_KEY = "sarcoma_actor"
ACTION_KEY = "sarcoma_action"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in an audit entry")


def canonical(data: Any) -> str:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable
    )


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """The same dict whichever way it was read (ORM object, Core row, JSON from the log)."""
    return json.loads(canonical(row))


def snapshot(obj: Base) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return _normalise({attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs})


def _snapshot_before(obj: Base) -> dict[str, Any]:
    state = inspect(obj)
    before = {}
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        before[attr.key] = history.deleted[0] if history.deleted else getattr(obj, attr.key)
    return _normalise(before)


def _entity_id(obj: Base) -> str:
    # The identity key is only set after the flush completes; read the key columns instead.
    identity = inspect(obj).mapper.primary_key_from_instance(obj)
    if len(identity) != 1 or identity[0] is None:
        raise RuntimeError(f"cannot audit {obj!r} without a single-column primary key")
    return str(identity[0])


def entry_hash(
    seq: int, at: str, actor: str, action: str, entity: str, entity_id: str, change: str, prev: str
) -> str:
    payload = canonical([seq, at, actor, action, entity, entity_id, change, prev])
    return hashlib.sha256(payload.encode()).hexdigest()


def record_flush(session: Session) -> None:
    """Append an entry for every audited row this flush inserted, changed or deleted.

    Runs from the session's ``after_flush`` hook: primary keys exist, and the attribute history
    still tells the before-image. A change with no actor means a write that bypassed the
    services layer; that is a bug, so it fails the transaction rather than go unrecorded.
    """
    changes: list[tuple[str, str, str, dict | None, dict | None]] = []
    for obj in session.new:
        if type(obj).__tablename__ in AUDITED:
            entity = type(obj).__tablename__
            changes.append(("insert", entity, _entity_id(obj), None, snapshot(obj)))
    for obj in session.dirty:
        if type(obj).__tablename__ in AUDITED and session.is_modified(obj):
            before, after = _snapshot_before(obj), snapshot(obj)
            if before != after:
                changes.append(("update", type(obj).__tablename__, _entity_id(obj), before, after))
    for obj in session.deleted:
        if type(obj).__tablename__ in AUDITED:
            changes.append(
                ("delete", type(obj).__tablename__, _entity_id(obj), _snapshot_before(obj), None)
            )
    if not changes:
        return
    # Flush order within a set is arbitrary; a fixed order makes replays comparable.
    changes.sort(key=lambda c: (list(AUDITED).index(c[1]), c[1], _sort_id(c[2]), c[0]))
    _append(session, changes)


def note(session: Session, entity: str, entity_id: str, what: dict[str, Any]) -> None:
    """Log an action that changes no row (an unblinding: ``allocation list --reveal``)."""
    if entity in AUDITED:
        raise ValueError(f"{entity} rows are audited by their changes, not by notes")
    _append(session, [("note", entity, entity_id, None, what)])


def _append(
    session: Session, changes: list[tuple[str, str, str, dict | None, dict | None]]
) -> None:
    actor = session.info.get(ACTOR_KEY)
    action = session.info.get(ACTION_KEY)
    if not actor or not action:
        raise RuntimeError("audited rows changed outside a service write transaction")
    conn = session.connection()
    seq, prev = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    rows = []
    for kind, entity, entity_id, before, after in changes:
        seq += 1
        change = canonical({"op": kind, "before": before, "after": after})
        digest = entry_hash(seq, at, actor, action, entity, entity_id, change, prev)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "entity": entity,
                "entity_id": entity_id,
                "change": change,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    conn.execute(insert(AuditEntry), rows)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))


def _sort_id(entity_id: str) -> tuple[int, str]:
    return (int(entity_id), "") if entity_id.isdigit() else (0, entity_id)


@dataclass
class AuditReport:
    entries: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(5000)


def verify(session: Session) -> AuditReport:
    """Check the chain link by link, the head, and every audited row against its last entry.

    Problems are listed in log order, so the first one names the first broken entry.
    """
    report = AuditReport()
    last_state: dict[tuple[str, str], dict | None] = {}
    expected_seq, prev = 1, GENESIS_HASH
    chain_broken = False
    for entry in _entries(session):
        report.entries += 1
        if not chain_broken:
            problem = _check_link(entry, expected_seq, prev)
            if problem:
                report.problems.append(problem)
                chain_broken = True  # later links all fail too; the first break is the news
        expected_seq, prev = entry.seq + 1, entry.hash
        try:
            change = json.loads(entry.change)
            last_state[(entry.entity, entry.entity_id)] = change["after"]
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"audit entry {entry.seq}: change is not valid JSON")
    report.head_hash = prev
    head = session.execute(select(AuditHead.seq, AuditHead.hash)).one_or_none()
    if head is None:
        report.problems.append("audit head row is missing")
    elif (head.seq, head.hash) != (expected_seq - 1, prev):
        report.problems.append(
            f"audit log ends at entry {expected_seq - 1} but its head records entry {head.seq}: "
            "entries were removed from or added to the end of the log"
        )
    report.problems.extend(_check_rows(session, last_state))
    return report


def _check_link(entry: AuditEntry, expected_seq: int, prev: str) -> str | None:
    if entry.seq != expected_seq:
        if entry.seq > expected_seq:
            return (
                f"audit entry {expected_seq}: missing (the log jumps from entry "
                f"{expected_seq - 1} to {entry.seq})"
            )
        return f"audit entry {entry.seq}: out of sequence after entry {expected_seq - 1}"
    if entry.prev_hash != prev:
        return (
            f"audit entry {entry.seq}: does not link to entry {entry.seq - 1} "
            "(inserted or replaced)"
        )
    digest = entry_hash(
        entry.seq,
        entry.at,
        entry.actor,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.change,
        entry.prev_hash,
    )
    if digest != entry.hash:
        return f"audit entry {entry.seq}: content does not match its hash (edited)"
    return None


def _differing(current: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    # Compared over the row's columns: a column a later migration dropped is no tampering, while
    # a column added without an audit entry (a migration that skipped the log) is reported.
    return sorted(k for k in current if k not in recorded or current[k] != recorded[k])


def _check_rows(session: Session, last_state: dict[tuple[str, str], dict | None]) -> list[str]:
    problems = []
    seen: set[tuple[str, str]] = set()
    for entity, model in AUDITED.items():
        table = model.__table__
        (pk,) = table.primary_key.columns
        for row in session.execute(select(table).order_by(pk)).mappings():
            key = (entity, str(row[pk.name]))
            seen.add(key)
            current = _normalise(dict(row))
            if key not in last_state:
                problems.append(
                    f"{entity} {key[1]}: has no audit entry (written behind the engine)"
                )
            elif last_state[key] is None:
                problems.append(f"{entity} {key[1]}: audit log says deleted, but the row exists")
            elif fields := _differing(current, last_state[key]):
                problems.append(
                    f"{entity} {key[1]}: differs from its last audit entry in "
                    f"{', '.join(fields)} (changed behind the engine)"
                )
    for key, state in last_state.items():
        if key[0] in AUDITED and state is not None and key not in seen:
            problems.append(f"{key[0]} {key[1]}: deleted without an audit entry")
    return problems
