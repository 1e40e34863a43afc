"""The audit log as a reader pages through it: who changed what, when, from which old value to
which new one.

Entries are read in chain order (``seq``), filtered by entity, actor, action and the UTC day of
``at`` (stored as ISO text, which sorts as the instants do). Each entry's change, stored as
canonical JSON of the row before and after, becomes the list of columns that changed with their
old and new values. What must not leave the database does not leave it here either: a birth
date is never shown, and the notes a coordinator typed beside a reason code only on request
(``include_notes``); a protocol's source is summarised by its length.

On PostgreSQL only the roles granted the log (data manager, statistician, trial admin) can
read it; a site role's query is refused by the server, which the command prints as one line.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import AuditEntry
from sarcoma_sched.services.queries.registers import Page

__all__ = ["AUDIT_COLUMNS", "HIDDEN", "audit_listing", "change_text", "changes"]

AUDIT_COLUMNS = ["seq", "at", "actor", "action", "entity", "entity_id", "op", "changes"]

# Never shown, whoever asks: a birth date identifies a patient.
HIDDEN = frozenset({"birth_date"})
# Free text typed beside a code: shown only with include_notes.
NOTES = frozenset({"note", "void_note"})
# Long texts summarised: a protocol's whole source in a listing row helps nobody.
SUMMARISED = frozenset({"source", "site_definition", "allocation"})
_SHOWN_LENGTH = 60


def audit_listing(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    include_notes: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> Page:
    query = select(AuditEntry)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if date_from:
        query = query.where(AuditEntry.at >= date_from.isoformat())
    if date_to:
        query = query.where(AuditEntry.at < (date_to + dt.timedelta(days=1)).isoformat())
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    paged = query.order_by(AuditEntry.seq).offset(offset)
    if limit is not None:
        paged = paged.limit(limit)
    rows = []
    for entry in session.scalars(paged):
        op, changed = changes(entry.change, include_notes=include_notes)
        rows.append(
            {
                "seq": entry.seq,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "entity": entry.entity,
                "entity_id": entry.entity_id,
                "op": op,
                "changes": changed,
            }
        )
    return Page(rows, offset, int(total))


def _shown(column: str, value: Any, include_notes: bool) -> Any:
    if column in HIDDEN:
        return "(hidden)" if value is not None else None
    if column in NOTES and not include_notes and value is not None:
        return "(note)"
    if column in SUMMARISED and isinstance(value, str):
        return f"({len(value)} characters)"
    return value


def changes(change: str, *, include_notes: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """``op`` and one ``{"column", "old", "new"}`` per column the entry changed (an insert:
    every column set, old None; a delete: every column, new None; a note: what it says)."""
    try:
        data = json.loads(change)
    except ValueError:
        return "unreadable", []
    op = str(data.get("op", ""))
    before = data.get("before") or {}
    after = data.get("after") or {}
    out = []
    for column in sorted(set(before) | set(after)):
        old, new = before.get(column), after.get(column)
        if old == new and op == "update":
            continue
        if op == "insert" and new is None:
            continue
        out.append(
            {
                "column": column,
                "old": _shown(column, old, include_notes),
                "new": _shown(column, new, include_notes),
            }
        )
    return op, out


def change_text(op: str, changed: list[dict[str, Any]]) -> str:
    """``column: old → new; ...`` for an update, ``column=value; ...`` for what an insert or a
    note set, for a table or a CSV cell."""
    if op == "update":
        return "; ".join(f"{c['column']}: {_cell(c['old'])} → {_cell(c['new'])}" for c in changed)
    if op == "delete":
        return "; ".join(f"{c['column']}={_cell(c['old'])}" for c in changed)
    return "; ".join(f"{c['column']}={_cell(c['new'])}" for c in changed)


def _cell(value: Any) -> str:
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 1] + "…"
