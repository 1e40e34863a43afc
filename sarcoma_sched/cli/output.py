"""Shared output formatting for listings: ``--format table|csv|json``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = ["emit_json", "emit_rows", "format_option"]

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def emit_json(data: Any) -> None:
    """One JSON document for scripts: dates as ISO text, non-ASCII kept as typed."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    if fmt == "json":
        emit_json([{c: r.get(c) for c in columns} for r in rows])
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
        return
    # Plain aligned columns: a listing of hundreds of rows prints in milliseconds (rich took a
    # quarter of a second), and cells are printed exactly as stored, never read as markup.
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    click.echo("\n".join(lines))
