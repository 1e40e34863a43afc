"""Shared output formatting: ``--format table|csv|json`` (and ``xlsx`` for a listing or a
report table), ``--wide``, and the one function that prints rows in each of them.

A table fits the terminal (``cli/table_fit.py``) unless ``--wide``; CSV, JSON and a workbook
always hold every value in full, under the same column names as the table's header.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from sarcoma_sched.cli.table_fit import fit_table, terminal_width, wrap

__all__ = [
    "check_out",
    "check_picture_or_sheet",
    "echo_wrapped",
    "emit_json",
    "emit_rows",
    "format_option",
    "result_format",
    "sheet_format",
    "table_width",
    "wide_option",
]

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")
SHEET_FORMATS = (*FORMATS, "xlsx")
# Where the shared options leave their values for emit_rows (ctx.meta is shared by the parent
# and child contexts of one invocation): the commands' own signatures do not carry them.
_WIDE = "sarcoma_sched.output.wide"
_OUT = "sarcoma_sched.output.out"


def _keep(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value
        return value

    return store


def wide_option(func: F) -> F:
    return click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_keep(_WIDE),
        help="Table: every value in full, however wide (else it fits the terminal; output "
        "to a pipe or a file is never cut).",
    )(func)


def format_option(func: F) -> F:
    func = wide_option(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def result_format(func: F) -> F:
    """``--format text|json`` of a command that acts: a sentence for people, or one JSON
    document for a script (its shape in ``docs/schemas/``). An error is one line on stderr and
    a non-zero exit in either, with nothing on stdout."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text, or one JSON document (docs/schemas/) for scripts.",
    )(func)


def check_out(ctx: click.Context, fmt: str, out: Path | None) -> None:
    """Before the database is opened: a usage mistake attempts nothing."""
    if fmt == "xlsx" and out is None:
        raise click.UsageError("--format xlsx writes a workbook: give --out FILE", ctx)
    if fmt != "xlsx" and out is not None:
        raise click.UsageError("--out is for --format xlsx (the others print)", ctx)


def check_picture_or_sheet(ctx: click.Context, fmt: str, out: Path | None) -> None:
    """For a command whose ``--out`` is a picture, or with ``--format xlsx`` a workbook."""
    is_sheet = out is not None and out.suffix.lower() == ".xlsx"
    if fmt == "xlsx" and not is_sheet:
        raise click.UsageError("--format xlsx writes a workbook: give --out FILE.xlsx", ctx)
    if fmt != "xlsx" and is_sheet:
        raise click.UsageError(f"--out {out}: a workbook is written with --format xlsx", ctx)


def sheet_format(func: F | None = None, *, own_out: bool = False) -> Any:
    """``--format table|csv|json|xlsx``, ``--wide`` and ``--out FILE`` for the workbook.

    ``own_out``: the command has an ``--out`` of its own (a picture) and hands it to
    ``emit_rows``; it then checks ``.xlsx`` against the format itself."""

    def decorate(command: F) -> F:
        if own_out:
            wrapped = command
        else:

            @functools.wraps(command)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                ctx = click.get_current_context()
                check_out(ctx, kwargs["fmt"], ctx.meta.get(_OUT))
                return command(*args, **kwargs)

            wrapped = click.option(
                "--out",
                metavar="FILE",
                type=click.Path(dir_okay=False, path_type=Path),
                expose_value=False,
                callback=_keep(_OUT),
                help="--format xlsx: the workbook to write (replaced atomically).",
            )(wrapped)
        wrapped = wide_option(wrapped)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(SHEET_FORMATS),
            default="table",
            show_default=True,
            help="Output format; xlsx: typed cells (dates as dates), header frozen, needs --out.",
        )(wrapped)

    return decorate if func is None else decorate(func)


def _meta(key: str) -> Any:
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(key)


def table_width() -> int | None:
    """The width a table must fit: None with --wide or when there is no terminal."""
    return None if _meta(_WIDE) else terminal_width()


def echo_wrapped(text: str, indent: str = "") -> None:
    """A line of prose under a table (a warning, a note), wrapped to the table's width with
    ``indent`` before its continuation lines."""
    width = table_width()
    if width is None:
        click.echo(text)
        return
    lines = wrap(text, width - len(indent))
    click.echo("\n".join([lines[0], *(indent + line for line in lines[1:])]))


def emit_json(data: Any) -> None:
    """One JSON document for scripts: dates as ISO text, non-ASCII kept as typed."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def emit_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    out: Path | None = None,
    sheet: str | None = None,
) -> None:
    """Print ``rows`` (or write them, ``xlsx``) under ``columns``, the same names in every
    format. A workbook goes to ``out`` or the command's ``--out``, in a sheet named ``sheet``
    or after the command."""
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
    if fmt == "xlsx":
        from sarcoma_sched.cli.spreadsheets import write_xlsx

        path = out or _meta(_OUT)
        assert path is not None, "sheet_format checks --out before the command runs"
        ctx = click.get_current_context()
        write_xlsx(path, sheet or ctx.command_path.split(" ", 1)[-1], rows, columns)
        click.echo(f"{len(rows)} row(s) written to {path}")
        return
    # Plain aligned columns: a listing of hundreds of rows prints in milliseconds (rich took a
    # quarter of a second), and cells are printed exactly as stored, never read as markup.
    cells = [[_text(r.get(c)).replace("\n", " ") for c in columns] for r in rows]
    click.echo("\n".join(fit_table(columns, cells, table_width())))
