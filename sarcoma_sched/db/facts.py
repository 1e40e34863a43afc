"""Rows that never change once committed, read once per ``Database`` instead of once per use.

The installation row (its id, whether it is a demonstration) and a trial's committed key
fingerprint are written once and never updated or deleted by the engine (an edit behind its
back is what ``audit verify`` reports), yet every allocation asked for them again: two or three
statements of a transaction whose floor is a dozen (BENCHMARKS.md, issue 24).

A value read inside a transaction is only kept for the ``Database`` once that transaction has
committed: a write could have read a row it inserted itself and then rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

__all__ = ["FACTS_KEY", "known", "learned", "promote"]

# In session.info: the Database's dict of committed facts.
FACTS_KEY = "sarcoma_facts"
# In session.info: what this session read, kept for the Database once it has committed.
_SEEN_KEY = "sarcoma_facts_seen"


def known(session: Session, key: tuple[Any, ...]) -> Any | None:
    """The value read before for ``key``, by this session or a committed one; None if none."""
    seen = session.info.get(_SEEN_KEY)
    if seen is not None and key in seen:
        return seen[key]
    facts = session.info.get(FACTS_KEY)
    return None if facts is None else facts.get(key)


def learned(session: Session, key: tuple[Any, ...], value: Any) -> None:
    session.info.setdefault(_SEEN_KEY, {})[key] = value


def promote(session: Session) -> None:
    """After a commit (or a read session's end): what the session read becomes known."""
    seen = session.info.pop(_SEEN_KEY, None)
    facts = session.info.get(FACTS_KEY)
    if seen and facts is not None:
        facts.update(seen)
