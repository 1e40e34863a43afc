"""Shared output formatting for listings: ``--format table|csv|json``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = ["emit_rows", "format_option"]

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


def emit_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    if fmt == "json":
        click.echo(
            json.dumps(
                [{c: r.get(c) for c in columns} for r in rows],
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
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
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for c in columns:
        table.add_column(c)
    for r in rows:
        # Cells are data, not markup: "[ward 3]" in a reason must print as typed.
        table.add_row(*("" if r.get(c) is None else escape(str(r.get(c))) for c in columns))
    # A pipe or a file gets full rows: truncated ids would be worse than long lines.
    stream = click.get_text_stream("stdout")
    width = None if stream.isatty() else 1000
    Console(file=stream, width=width).print(table)
