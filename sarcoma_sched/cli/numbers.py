"""Whole numbers on the command line: ASCII digits, within the bounds ``limits`` declares.

click's ``INT`` and ``IntRange`` convert with ``int()``, which also reads ``1_000``, fullwidth
``１２`` and Arabic-Indic digits, and refuses 5,000 digits with Python's own words; a number
that does fit is then stored by SQLite and refused by PostgreSQL when wider than its integer.
``WholeNumber`` reads digits 0-9 only (``limits.parse_whole``), so every such value is one
usage error naming the option, and keeps ``IntRange``'s ``[0<=x<=1000]`` in the help text.
"""

from __future__ import annotations

from typing import Any

import click

from sarcoma_sched.limits import MAX_CAPACITY, parse_whole, shown

__all__ = ["CAPACITY", "WholeNumber", "parse_day_capacity"]

# Without a declared bound, a number still has to be one a database column can hold.
_UNBOUNDED = 2**63 - 1


class WholeNumber(click.IntRange):
    name = "integer"

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        super().__init__(min=min, max=max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if not isinstance(value, str):
            result: int = super().convert(value, param, ctx)  # a default given as an int
            return result
        low = -_UNBOUNDED if self.min is None else int(self.min)
        high = _UNBOUNDED if self.max is None else int(self.max)
        try:
            return parse_whole(value, low, high)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


CAPACITY = WholeNumber(0, MAX_CAPACITY)


def parse_day_capacity(item: str) -> tuple[str, int]:
    """``tue=2`` as (day name, capacity); a usage error naming ``--day`` otherwise."""
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{shown(item)} is not DAY=N", param_hint="--day")
    try:
        return name, parse_whole(value, 0, MAX_CAPACITY)
    except ValueError as exc:
        raise click.BadParameter(f"{shown(item)}: {exc}", param_hint="--day") from None
