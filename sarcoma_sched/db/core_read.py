"""A prebuilt Core ``SELECT`` run on a session's connection, past the ORM's execution path.

``Session.execute`` sends a column-only ``SELECT`` through the ORM's compile state and result
machinery even when no object comes back; for the dozen small reads of an allocation that path
cost about as much again as SQLite took to answer them (BENCHMARKS.md, issue 24). The
connection is the session's own, so the read sees the transaction's rows, locks and role, and
pending changes are flushed first exactly when ``Session.execute`` would have flushed them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.orm import Session

__all__ = ["core_execute"]


def core_execute(
    session: Session, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[*tuple[Any, ...]]:
    if session.autoflush:  # False inside ``no_autoflush`` and where a use case turned it off
        session.flush()
    return session.connection().execute(statement, params)
