"""What a column can hold, read from the models, and the check that every write fits.

SQLite stores a 500-character text in a ``String(64)`` column and a 64-bit number in an
``Integer`` one; PostgreSQL refuses both (``value too long for type character varying(64)``,
``integer out of range``), and a refusal that late, mid-transaction, is a traceback. Checked
before each flush instead, on every backend alike, a value that does not fit is one
``InputError`` naming the table, the column and the bound, and nothing is written.

Services check what a user types against ``text_length`` first, so the message can name the
option (``--name``); this check is the backstop for everything else the engine derives
(a stratum, an audit actor, a row a future command writes).

A NUL character is refused the same way: SQLite stores it in any text, PostgreSQL in none
(``PostgreSQL text fields cannot contain NUL (0x00) bytes``, a ``DataError`` from the driver),
whether it came in a ``--reason`` or, ``\\u0000``-escaped, in a field file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String, Table, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import QueryableAttribute
from sqlalchemy.types import TypeDecorator, TypeEngine

from sarcoma_sched.errors import InputError
from sarcoma_sched.limits import shown

__all__ = ["INTEGER_RANGES", "check_fits", "check_rows_fit", "text_length"]

# The ranges of PostgreSQL's integer types, which SQLAlchemy's map to there; SQLite's integers
# are all 64-bit, so only the narrower bound is the same on both backends.
INTEGER_RANGES: tuple[tuple[type[TypeEngine[Any]], tuple[int, int]], ...] = (
    (SmallInteger, (-(2**15), 2**15 - 1)),
    (BigInteger, (-(2**63), 2**63 - 1)),
    (Integer, (-(2**31), 2**31 - 1)),
)


def text_length(attribute: QueryableAttribute[Any]) -> int:
    """The declared length of a model's ``String(n)`` column, e.g. ``text_length(Site.name)``."""
    length = getattr(_base_type(attribute.property.columns[0].type), "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{attribute} is not a String(n) column")
    return length


def _base_type(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return kind


def _holds_nul(value: Any) -> bool:
    # Iterative: a JSON column's value is as deep as input_files lets a document be.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _problem(table: str, name: str, kind: TypeEngine[Any], value: Any) -> str | None:
    # Called for every column of every row written: the common values (None, a date, a short
    # text) are answered without walking anything.
    if value is None or isinstance(value, bool | float | dt.date):
        return None
    if isinstance(value, str):
        if "\x00" in value:
            return _nul(table, name)
        if isinstance(kind, String) and kind.length is not None and len(value) > kind.length:
            return (
                f"{table}.{name}: {shown(value)} is longer than the {kind.length} characters "
                "the database stores"
            )
        return None
    if isinstance(value, int):
        for family, (low, high) in INTEGER_RANGES:
            if isinstance(kind, family):
                if not low <= value <= high:
                    return f"{table}.{name}: {value} is outside the range the database stores"
                return None
        return None
    if _holds_nul(value):
        return _nul(table, name)
    return None


def _nul(table: str, name: str) -> str:
    return f"{table}.{name}: text with a NUL character (\\x00), which PostgreSQL cannot store"


def check_fits(session: Session) -> None:
    """Raise ``InputError`` if a row about to be flushed has a value its column cannot hold."""
    problems: list[str] = []
    for obj in [*session.new, *session.dirty]:
        state = inspect(obj)
        table = state.mapper.local_table.name
        for attr in state.mapper.column_attrs:
            if state.pending:
                values = [state.dict[attr.key]] if attr.key in state.dict else []
            else:
                values = list(state.attrs[attr.key].history.added)
            kind = _base_type(attr.columns[0].type)
            for value in values:
                problem = _problem(table, attr.columns[0].name, kind, value)
                if problem is not None:
                    problems.append(problem)
    if problems:
        raise InputError("; ".join(problems))


@dataclass(frozen=True)
class _Bounds:
    """What each column of a table can hold, looked up once per table."""

    kinds: dict[str, TypeEngine[Any]]
    lengths: dict[str, int | None]  # a String(n) column's n; None: any length
    ranges: dict[str, tuple[int, int] | None]  # an integer column's range; None: any


@cache
def _bounds(table: Table) -> _Bounds:
    kinds = {c.name: _base_type(c.type) for c in table.c}
    lengths = {
        name: kind.length if isinstance(kind, String) else None for name, kind in kinds.items()
    }
    ranges = {
        name: next((bounds for family, bounds in INTEGER_RANGES if isinstance(kind, family)), None)
        for name, kind in kinds.items()
    }
    return _Bounds(kinds, lengths, ranges)


# Values that fit any column they are bound to (what _problem answers first), by exact type.
_ALWAYS_FIT = frozenset({type(None), bool, float, dt.date, dt.datetime})


def check_rows_fit(table: Table, rows: list[dict[str, Any]]) -> None:
    """``check_fits`` for rows written without ORM objects (``audit.insert_audited``).

    The answer of ``_problem`` for every value; the values that fit (nearly all: a calendar's
    dates, short texts, small numbers) are passed here without calling it, as they are the
    bulk of an allocation's rows (tests/unit/test_column_bounds.py holds the two equal)."""
    bounds = _bounds(table)
    lengths, ranges = bounds.lengths, bounds.ranges
    problems = []
    for row in rows:
        for name, value in row.items():
            kind = type(value)
            if kind in _ALWAYS_FIT:
                continue
            if kind is str:
                limit = lengths[name]
                if "\x00" not in value and (limit is None or len(value) <= limit):
                    continue
            elif kind is int:
                span = ranges[name]
                if span is None or span[0] <= value <= span[1]:
                    continue
            problem = _problem(table.name, name, bounds.kinds[name], value)
            if problem is not None:
                problems.append(problem)
    if problems:
        raise InputError("; ".join(problems))
