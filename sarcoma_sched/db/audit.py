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
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from json.encoder import encode_basestring as _json_string
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Row,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sarcoma_sched.db.columns import check_rows_fit
from sarcoma_sched.db.driver_insert import insert_rows
from sarcoma_sched.db.models import AUDITED, AuditEntry, AuditHead, Base

__all__ = [
    "GENESIS_HASH",
    "HEAD_KEY",
    "AuditReport",
    "canonical",
    "entry_hash",
    "insert_audited",
    "note",
    "record_flush",
    "remember_replaced",
    "snapshot",
    "update_audited",
    "verify",
    "write_pending",
]

GENESIS_HASH = "0" * 64
ACTOR_KEY = "sarcoma_actor"
ACTION_KEY = "sarcoma_action"
# Set on a session whose entries the server's triggers write (PostgreSQL, migration 0006).
SERVER_AUDIT_KEY = "sarcoma_server_audit"
# The chain head (seq, hash) read when the write lock was taken and moved by each append.
HEAD_KEY = "sarcoma_audit_head"
# The entries chained so far in this transaction, not yet written (``write_pending``).
PENDING_KEY = "sarcoma_audit_pending"
# Set once the pending entries are written: any append after that writes at once.
_SEALED_KEY = "sarcoma_audit_sealed"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in an audit entry")


# One encoder for every entry: json.dumps with options builds a new one per call, which cost
# an allocation more than encoding its two dozen entries did.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable
)


def canonical(data: Any) -> str:
    return _CANONICAL.encode(data)


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """The same dict whichever way it was read (ORM object, Core row, JSON from the log)."""
    return json.loads(canonical(row))


def snapshot(obj: Base) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return _normalise({attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs})


_REPLACED_KEY = "sarcoma_replaced_unread"


def remember_replaced(session: Session) -> None:
    """Before a flush: the stored value of each deferred column a change replaced without
    having read it (``Allocation.detail``), which the attribute history cannot tell."""
    replaced: dict[int, dict[str, Any]] = session.info.setdefault(_REPLACED_KEY, {})
    for obj in session.dirty:
        if type(obj).__tablename__ not in AUDITED:
            continue
        state = inspect(obj)
        unread = [
            attr.key
            for attr in state.mapper.column_attrs
            if state.attrs[attr.key].history.added and not state.attrs[attr.key].history.deleted
        ]
        if not unread or state.identity is None:
            continue
        table = state.mapper.local_table
        (key_column,) = table.primary_key.columns
        row = (
            session.connection()
            .execute(select(*(table.c[k] for k in unread)).where(key_column == state.identity[0]))
            .one()
        )
        replaced[id(obj)] = dict(zip(unread, row, strict=True))


def _snapshot_before(obj: Base, replaced: dict[str, Any]) -> dict[str, Any]:
    state = inspect(obj)
    before = {}
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if history.deleted:
            before[attr.key] = history.deleted[0]
        elif attr.key in replaced:
            before[attr.key] = replaced[attr.key]
        else:
            before[attr.key] = getattr(obj, attr.key)
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
    texts = (at, actor, action, entity, entity_id, change, prev)
    if type(seq) is int and all(type(t) is str for t in texts):
        # What canonical() writes for this list, without its general walk: an allocation
        # hashes two dozen entries (tests/unit/test_audit_hash.py holds the two equal).
        payload = f"[{seq},{','.join(map(_json_string, texts))}]"
    else:
        payload = canonical([seq, *texts])
    return hashlib.sha256(payload.encode()).hexdigest()


def record_flush(session: Session) -> None:
    """Append an entry for every audited row this flush inserted, changed or deleted.

    Runs from the session's ``after_flush`` hook: primary keys exist, and the attribute history
    still tells the before-image. A change with no actor means a write that bypassed the
    services layer; that is a bug, so it fails the transaction rather than go unrecorded.
    """
    changes: list[tuple[str, str, str, dict | None, dict | None]] = []
    replaced: dict[int, dict[str, Any]] = session.info.pop(_REPLACED_KEY, {})
    for obj in session.new:
        if type(obj).__tablename__ in AUDITED:
            entity = type(obj).__tablename__
            changes.append(("insert", entity, _entity_id(obj), None, snapshot(obj)))
    for obj in session.dirty:
        if type(obj).__tablename__ in AUDITED and session.is_modified(obj):
            before, after = _snapshot_before(obj, replaced.get(id(obj), {})), snapshot(obj)
            if before != after:
                changes.append(("update", type(obj).__tablename__, _entity_id(obj), before, after))
    for obj in session.deleted:
        if type(obj).__tablename__ in AUDITED:
            changes.append(
                (
                    "delete",
                    type(obj).__tablename__,
                    _entity_id(obj),
                    _snapshot_before(obj, replaced.get(id(obj), {})),
                    None,
                )
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
    if session.info.get(SERVER_AUDIT_KEY):
        session.execute(
            text("SELECT sarcoma_audit_note(:entity, :entity_id, CAST(:what AS jsonb))"),
            {"entity": entity, "entity_id": entity_id, "what": canonical(what)},
        )
        return
    _append(session, [("note", entity, entity_id, None, what)])


def _append(
    session: Session, changes: list[tuple[str, str, str, dict | None, dict | None]]
) -> None:
    """Chain entries for ``changes`` after the head this transaction last left.

    The entries are kept with the session and written by ``write_pending`` just before the
    commit: one ``executemany`` and one head update per transaction, however many flushes it
    made (an allocation makes two). Nothing in a write transaction reads the log back, and the
    write lock is held from its first statement (``Database.write``), so no other writer can
    move the head in between; a rollback drops the entries with the rows they describe."""
    actor = session.info.get(ACTOR_KEY)
    action = session.info.get(ACTION_KEY)
    if not actor or not action:
        raise RuntimeError("audited rows changed outside a service write transaction")
    head = session.info.get(HEAD_KEY)
    if head is None:
        head = (
            session.connection()
            .execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))
            .one()
        )
    seq, prev = head
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    rows = session.info.setdefault(PENDING_KEY, [])
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
    session.info[HEAD_KEY] = (seq, prev)
    if session.info.get(_SEALED_KEY):
        write_pending(session)


def write_pending(session: Session) -> None:
    """Write the entries ``_append`` chained and move the head: called before the commit
    (``Database.write``); later appends in the same transaction are written at once."""
    session.info[_SEALED_KEY] = True
    rows = session.info.pop(PENDING_KEY, None)
    if not rows:
        return
    conn = session.connection()
    insert_rows(conn, _ENTRIES, rows)
    seq, digest = session.info[HEAD_KEY]
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})


# Built once: every write transaction runs both.
_ENTRIES = cast(Table, AuditEntry.__table__)
_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def insert_audited(session: Session, entity: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new rows of an audited table in one ``executemany`` and chain their entries;
    returns their ids, in the order of ``rows``.

    For the rows a use case writes by the dozen (a new calendar's events): building an ORM
    object per row, flushing it and snapshotting it back cost most of an allocation (BENCHMARKS.md
    §1). Each row is complete, every column but the id with the value an ORM insert would store,
    and its entry is chained from that same dict, so it is the entry ``record_flush`` would have
    written (tests/integration/test_insert_audited.py compares the two paths). The session is
    flushed first: rows already added through it keep their place before these in the chain.
    """
    if entity not in AUDITED:
        raise ValueError(f"{entity} is not an audited table")
    if not rows:
        return []
    table = AUDITED[entity].__table__
    assert isinstance(table, Table)  # a declarative model's table, for the type checker
    expected = {c.name for c in table.c if c.name != "id"}
    for row in rows:
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise RuntimeError(f"{entity}: rows lack {missing}, have unknown {extra}")
    check_rows_fit(table, rows)
    session.flush()
    conn = session.connection()
    if session.info.get(SERVER_AUDIT_KEY):
        # PostgreSQL: the server's triggers chain one entry per row; the ids come back batched.
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(statement, rows).scalars()]
    if len(rows) == 1:
        # One row: SQLite hands back the id it chose (its last_insert_rowid), no query needed.
        inserted = insert_rows(conn, table, rows)
        assert inserted is not None  # an INSERT of one row always has its key
        numbered = [{"id": inserted, **rows[0]}]
    else:
        # The write lock (BEGIN IMMEDIATE) is held, so the next ids are known before the
        # insert, and one executemany writes them all (RETURNING would send a row at a time).
        first = int(conn.scalar(_last_id(table)) or 0) + 1
        numbered = [{"id": first + n, **row} for n, row in enumerate(rows)]
        insert_rows(conn, table, numbered)
    # canonical() spells dates and instants as the flush's snapshot does.
    _append(session, [("insert", entity, str(row["id"]), None, row) for row in numbered])
    return [row["id"] for row in numbered]


def update_audited(session: Session, obj: Base, values: dict[str, Any]) -> None:
    """Set columns of one stored row of an audited table with one ``UPDATE`` and chain its
    entry: what an attribute change and a flush would do, without the unit of work (an
    allocation's one update, the patient's new study id, cost it a flush of its own).

    ``obj`` is the loaded row; afterwards it shows the new values as stored. The session is
    flushed first, so changes already pending keep their place before this one in the chain."""
    table = type(obj).__table__
    assert isinstance(table, Table)  # a declarative model's table, for the type checker
    entity = table.name
    if entity not in AUDITED:
        raise ValueError(f"{entity} is not an audited table")
    mapper = inspect(obj).mapper
    unknown = sorted(set(values) - {attr.key for attr in mapper.column_attrs})
    if unknown or "id" in values:
        raise RuntimeError(f"{entity}: cannot set {unknown or ['id']} this way")
    check_rows_fit(table, [values])
    session.flush()
    server = bool(session.info.get(SERVER_AUDIT_KEY))
    before = None if server else snapshot(obj)
    (key,) = mapper.primary_key_from_instance(obj)
    entity_id = _entity_id(obj)
    session.connection().execute(
        _update_by_id(table, frozenset(values)),
        {"row_id": key, **{f"new_{name}": value for name, value in values.items()}},
    )
    for name, value in values.items():
        set_committed_value(obj, name, value)
    if before is not None:
        after = snapshot(obj)
        if after != before:
            _append(session, [("update", entity, entity_id, before, after)])


@cache
def _update_by_id(table: Table, names: frozenset[str]) -> Update:
    # Built once per table and column set, as _last_id; a bind parameter may not take a
    # column's own name in a SET clause, hence the prefix.
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(f"new_{name}") for name in names})
    )


@cache
def _last_id(table: Table) -> Select[int]:
    # Built once per table: composing a statement costs more than SQLite takes to run this one.
    return select(func.coalesce(func.max(table.c.id), 0))


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


# Entries and rows are fetched this many at a time (a server-side cursor on PostgreSQL).
_BATCH = 5000
# A row whose digest differs is compared field by field after re-reading its last entry; this
# many wait at once, so even a table that differs everywhere is checked in bounded memory.
_RECHECK_BATCH = 500
_DIGEST_SIZE = 16


def _digest(text: str) -> bytes:
    # 128 bits: a different row with the same digest would take a second-preimage attack.
    return hashlib.blake2b(text.encode(), digest_size=_DIGEST_SIZE).digest()


def _dense_index(entity_id: str) -> int | None:
    # Only the canonical spelling of a positive integer may share a slot with a row's integer
    # key: an entry for "007" names no row 7, exactly as comparing the texts would say.
    if entity_id.isascii() and entity_id.isdigit() and entity_id[0] != "0":
        return int(entity_id)
    return None


class _LastEntries:
    """For each row id of one audited table, its last entry: the sequence number (negated when
    that entry deleted the row) and a digest of the state it recorded.

    Integer ids, dense in practice, index flat arrays: 24 bytes a row whatever the row holds,
    so memory grows with the number of rows, never with their content. Other ids (site codes,
    ids far beyond the rest, as a forged entry might name) go to a dict.
    """

    __slots__ = ("columns", "digests", "other", "seqs")

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.seqs = array("q")  # 0: no entry
        self.digests = bytearray()
        self.other: dict[str, tuple[int, bytes]] = {}

    def put(self, entity_id: str, seq: int, after: dict[str, Any] | None) -> None:
        if after is None:
            seq, digest = -seq, bytes(_DIGEST_SIZE)
        else:
            digest = _digest(canonical(self._restricted(after)))
        index = _dense_index(entity_id)
        if index is not None and index >= len(self.seqs):
            size = len(self.seqs)
            if index >= 2 * size + 65536:
                index = None
            else:
                grow = max(index + 1, 2 * size) - size
                self.seqs.frombytes(bytes(8 * grow))
                self.digests.extend(bytes(_DIGEST_SIZE * grow))
        if index is None:
            self.other[entity_id] = (seq, digest)
        else:
            self.seqs[index] = seq
            self.digests[index * _DIGEST_SIZE : (index + 1) * _DIGEST_SIZE] = digest

    def _restricted(self, after: dict[str, Any]) -> dict[str, Any]:
        # Rows are compared over their columns: a column a later migration dropped is no
        # tampering (see _differing).
        if len(after) == len(self.columns) and all(c in after for c in self.columns):
            return after
        return {k: v for k, v in after.items() if k in self.columns}

    def pop(self, entity_id: str, index: int | None) -> tuple[int, bytes] | None:
        """The row's last entry, forgotten here so that what remains are rows that went."""
        if index is not None and index < len(self.seqs):
            seq = self.seqs[index]
            if seq == 0:
                return None
            self.seqs[index] = 0
            return seq, bytes(self.digests[index * _DIGEST_SIZE : (index + 1) * _DIGEST_SIZE])
        return self.other.pop(entity_id, None)

    def remaining(self) -> list[str]:
        """Ids whose last entry left the row in place and that no row claimed, in id order."""
        ids = [str(i) for i, seq in enumerate(self.seqs) if seq > 0]
        ids.extend(k for k, (seq, _digest) in self.other.items() if seq > 0)
        return sorted(ids, key=_sort_id)


def _entries(session: Session) -> Iterator[Row]:
    table = AuditEntry.__table__
    yield from session.execute(
        select(table).order_by(table.c.seq).execution_options(yield_per=_BATCH)
    )


def _snapshot(session: Session) -> None:
    # verify reads the log and then every table: under PostgreSQL's READ COMMITTED a write
    # committed in between would show as a row without its entry (or a head past the last
    # entry read). One snapshot for the whole check; SQLite's read transaction already is one.
    # A session bound to a connection runs in its caller's transaction, isolated as they chose.
    bind = session.get_bind()
    postgresql = isinstance(bind, Engine) and bind.dialect.name == "postgresql"
    if postgresql and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def verify(session: Session) -> AuditReport:
    """Check the chain link by link, the head, and every audited row against its last entry.

    Problems are listed in log order, so the first one names the first broken entry. Memory is
    bounded by the number of audited rows (a digest each), not by what they hold.
    """
    _snapshot(session)
    report = AuditReport()
    last = {
        entity: _LastEntries([c.name for c in model.__table__.columns])
        for entity, model in AUDITED.items()
    }
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
            after = json.loads(entry.change)["after"]
            if after is not None and not isinstance(after, dict):
                raise TypeError("a row's state is an object")
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"audit entry {entry.seq}: change is not valid JSON")
            continue
        recorded = last.get(entry.entity)
        if recorded is not None:
            recorded.put(entry.entity_id, entry.seq, after)
    report.head_hash = prev
    head = session.execute(select(AuditHead.seq, AuditHead.hash)).one_or_none()
    if head is None:
        report.problems.append("audit head row is missing")
    elif head.seq != expected_seq - 1:
        report.problems.append(
            f"audit log ends at entry {expected_seq - 1} but its head records entry {head.seq}: "
            "entries were removed from or added to the end of the log"
        )
    elif head.hash != prev:
        # Same length, other hash: the last entry was replaced (perhaps by one whose own hash
        # is consistent) or its hash edited; only the head, written with it, can tell.
        report.problems.append(
            f"audit entry {head.seq}: its hash is not the one the head records "
            "(the last entry was replaced or its hash edited)"
        )
    report.problems.extend(_check_rows(session, last))
    return report


def _check_link(entry: Row, expected_seq: int, prev: str) -> str | None:
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
    # Compared over the row's columns: a column a later migration dropped is no tampering, and
    # neither is one it added empty (NULL: the row's recorded state says nothing, and nothing is
    # there); a column added with values but no audit entry is reported.
    return sorted(
        k
        for k in current
        if (k not in recorded and current[k] is not None)
        or (k in recorded and current[k] != recorded[k])
    )


# (slot in the problem list, entity, id, seq of its last entry, the row as read)
_Recheck = tuple[int, str, str, int, dict[str, Any]]


def _check_rows(session: Session, last: dict[str, _LastEntries]) -> list[str]:
    problems: list[str | None] = []
    for entity, model in AUDITED.items():
        recorded = last[entity]
        table = model.__table__
        (pk,) = inspect(model).primary_key
        pending: list[_Recheck] = []
        rows = session.execute(
            select(table).order_by(pk).execution_options(yield_per=_BATCH)
        ).mappings()
        for row in rows:
            value = row[pk.name]
            entity_id = str(value)
            index = value if type(value) is int and value > 0 else _dense_index(entity_id)
            found = recorded.pop(entity_id, index)
            if found is None:
                problems.append(
                    f"{entity} {entity_id}: has no audit entry (written behind the engine)"
                )
            elif found[0] < 0:
                problems.append(f"{entity} {entity_id}: audit log says deleted, but the row exists")
            elif _digest(canonical(dict(row))) != found[1]:
                # Equal digests mean equal canonical text; different ones may still be equal
                # values (1 and 1.0): only the field-by-field comparison decides, and names them.
                pending.append((len(problems), entity, entity_id, found[0], dict(row)))
                problems.append(None)
                if len(pending) >= _RECHECK_BATCH:
                    _recheck(session, pending, problems)
        _recheck(session, pending, problems)
    for entity, recorded in last.items():
        problems.extend(
            f"{entity} {entity_id}: deleted without an audit entry"
            for entity_id in recorded.remaining()
        )
    return [p for p in problems if p is not None]


def _recheck(session: Session, pending: list[_Recheck], problems: list[str | None]) -> None:
    if not pending:
        return
    seqs = [p[3] for p in pending]
    changes = {
        seq: change
        for seq, change in session.execute(
            select(AuditEntry.seq, AuditEntry.change).where(AuditEntry.seq.in_(seqs))
        )
    }
    for slot, entity, entity_id, seq, row in pending:
        # The entry parsed when the log was read, within the same snapshot.
        recorded = json.loads(changes[seq])["after"]
        if fields := _differing(_normalise(row), recorded):
            problems[slot] = (
                f"{entity} {entity_id}: differs from its last audit entry in "
                f"{', '.join(fields)} (changed behind the engine)"
            )
    pending.clear()
