"""``audit verify`` and ``audit anchor``: the chain, the rows, the protocols, and an outside copy.

A hash chain alone cannot catch someone who rewrites it end to end with the owner's or a
superuser's rights (undo the last transaction and reset the head; renumber after erasing a
patient; forge a backdated entry and re-hash everything after it). An *anchor* can: a file, kept
outside the database (the trial master file, a signed e-mail), holding the chain head and a
short digest of every entry up to it. ``verify --anchor`` then names the first entry at or
before the anchor that is no longer what it was.

Each protocol version's source is also parsed again and hashed: a source rewritten in place
(allocation probability 0.8 -> 1.0) no longer matches the content hash stored beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sarcoma_sched.db.audit import AuditReport, verify
from sarcoma_sched.db.models import AuditEntry, AuditHead, ProtocolDefinition, ProtocolVersion
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import InputError, SarcomaSchedError
from sarcoma_sched.protocol.concealment import server_allocation, site_definition

__all__ = ["ANCHOR_FORMAT", "Anchor", "read_anchor", "take_anchor", "verify_audit"]

ANCHOR_FORMAT = "sarcoma-sched audit anchor v1"
# Bytes of each entry's hash kept in an anchor: 64 bits make a forged entry that matches its
# anchored digest a 2**64 search, and a million entries fit in 8 MB.
_PREFIX = 8
_BATCH = 5000


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str
    database: str
    digests: bytes  # _PREFIX bytes per entry, entries 1..seq

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": ANCHOR_FORMAT,
                "seq": self.seq,
                "hash": self.hash,
                "at": self.at,
                "database": self.database,
                "entry_digests": base64.b64encode(self.digests).decode("ascii"),
            },
            indent=2,
        )


def _server_time(session: Session) -> str:
    if session.get_bind().dialect.name == "postgresql":
        now = session.scalar(text("SELECT clock_timestamp()"))
    else:
        now = dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


def _digests(session: Session, upto: int) -> bytes:
    out = bytearray()
    query = (
        select(AuditEntry.seq, AuditEntry.hash)
        .where(AuditEntry.seq <= upto)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=_BATCH)
    )
    for _seq, digest in session.execute(query):
        out += bytes.fromhex(digest)[:_PREFIX]
    return bytes(out)


def take_anchor(db: Database) -> Anchor:
    """The chain head now, with the server's time; verified first, so a broken log is never
    anchored as if it were good."""
    with db.read() as session:
        report = verify(session)
        if not report.ok:
            raise SarcomaSchedError(
                f"the audit log does not verify, so it is not anchored: {report.problems[0]}"
            )
        head = session.execute(select(AuditHead.seq, AuditHead.hash)).one()
        return Anchor(
            seq=head.seq,
            hash=head.hash,
            at=_server_time(session),
            database=db.engine.url.render_as_string(hide_password=True),
            digests=_digests(session, head.seq),
        )


def read_anchor(path: Path | str) -> Anchor:
    path = Path(path)
    try:
        if not path.is_file():
            raise InputError(f"{path}: not a file")
        if path.stat().st_size > 64 * 1024 * 1024:
            raise InputError(f"{path}: too large for an audit anchor")
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not an audit anchor ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an audit anchor (a JSON object is expected)")
    if data.get("format") != ANCHOR_FORMAT:
        raise InputError(f"{path}: format: not {ANCHOR_FORMAT!r}")
    for name, kind in (("seq", int), ("hash", str), ("at", str), ("entry_digests", str)):
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{path}: {name}: missing or not a {kind.__name__}")
    seq, digest = data["seq"], data["hash"]
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InputError(f"{path}: hash: not 64 lower-case hex digits")
    try:
        digests = base64.b64decode(data["entry_digests"], validate=True)
    except ValueError:
        raise InputError(f"{path}: entry_digests: not base64") from None
    if seq < 0 or len(digests) != seq * _PREFIX:
        raise InputError(f"{path}: entry_digests: {len(digests) // _PREFIX} digests for seq {seq}")
    return Anchor(seq, digest, data["at"], str(data.get("database", "")), digests)


def _against_anchor(session: Session, anchor: Anchor) -> list[str]:
    """Problems with the log at or before the anchor, the first altered entry first."""
    query = (
        select(AuditEntry.seq, AuditEntry.hash)
        .where(AuditEntry.seq <= anchor.seq)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=_BATCH)
    )
    where = f"the anchor of {anchor.at} (entry {anchor.seq})"
    expected = 1
    for seq, digest in session.execute(query):
        if seq != expected:
            return [f"audit entry {expected}: missing since {where}: removed or renumbered"]
        stored = anchor.digests[(seq - 1) * _PREFIX : seq * _PREFIX]
        if bytes.fromhex(digest)[:_PREFIX] != stored:
            return [
                f"audit entry {seq}: not the entry {where} recorded "
                "(altered, or entries inserted or removed before it)"
            ]
        expected += 1
    if expected <= anchor.seq:
        return [
            f"audit entry {expected}: missing since {where}: the log was cut back "
            f"to entry {expected - 1}"
        ]
    last = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == anchor.seq))
    if anchor.seq and last != anchor.hash:
        return [f"audit entry {anchor.seq}: its hash is not the one {where} recorded"]
    return []


def _protocol_sources(session: Session) -> list[str]:
    from sarcoma_sched.errors import ProtocolError
    from sarcoma_sched.protocol.loader import parse_protocol

    problems = []
    rows = session.execute(
        select(
            ProtocolVersion.id,
            ProtocolVersion.protocol_id,
            ProtocolVersion.content_hash,
            ProtocolVersion.source,
            ProtocolVersion.source_name,
            ProtocolDefinition.site_definition,
            ProtocolDefinition.allocation,
        )
        .outerjoin(ProtocolDefinition, ProtocolDefinition.version_id == ProtocolVersion.id)
        .order_by(ProtocolVersion.id)
    )
    for row in rows:
        where = f"protocol_versions {row.id} ({row.protocol_id})"
        try:
            protocol = parse_protocol(row.source, row.source_name)
        except ProtocolError:
            problems.append(f"{where}: its stored source no longer validates")
            continue
        actual = protocol.content_hash
        if actual != row.content_hash:
            problems.append(
                f"{where}: its source hashes to {actual[:19]}, not the stored "
                f"{row.content_hash[:19]} (the source was rewritten)"
            )
        # What site roles read and what the server draws with, derived again from the source.
        if row.site_definition is None:
            problems.append(f"{where}: has no derived definition (protocol_definitions)")
            continue
        if row.allocation != server_allocation(protocol):
            problems.append(
                f"{where}: the method the server draws with is not its source's "
                "(protocol_definitions.allocation was rewritten)"
            )
        if row.site_definition != site_definition(protocol):
            problems.append(
                f"{where}: the definition site roles read is not its source's "
                "(protocol_definitions.site_definition was rewritten)"
            )
    return problems


def verify_audit(db: Database, anchor: Anchor | None = None) -> AuditReport:
    """The chain, every audited row against its last entry, every protocol source against its
    hash, and with ``anchor`` everything at or before it against the outside copy."""
    with db.read() as session:
        report = verify(session)
        report.problems.extend(_protocol_sources(session))
        if anchor is not None:
            report.problems[:0] = _against_anchor(session, anchor)
    return report
