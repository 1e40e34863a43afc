"""Listings as spreadsheets: ``--format xlsx --out FILE``.

Cells keep their types (a date is an Excel date, a number a number), the header row is frozen
and filtered, and text is always text: a value typed as ``=HYPERLINK(...)`` by a coordinator
is shown, never run as a formula. The file is written through the one atomic writer.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_xlsx"]

_DATE = "yyyy-mm-dd"
# Excel refuses these in a sheet's name (a command path or a study id never holds them, a
# title might).
_NOT_IN_SHEET_NAMES = str.maketrans({c: "-" for c in "[]:*?/\\"})
_INSTANT = "yyyy-mm-dd hh:mm:ss"


def _cell_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # Excel has no time zones: instants are written in UTC (the column says so).
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def write_xlsx(
    path: Path, sheet_name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from sarcoma_sched.files import write_atomic

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_name.translate(_NOT_IN_SHEET_NAMES)[:31] or "sheet"
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(c) for c in columns]
    for r, row in enumerate(rows, start=2):
        for i, name in enumerate(columns):
            value = _cell_value(row.get(name))
            cell = sheet.cell(row=r, column=i + 1)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            elif isinstance(value, dt.datetime):
                cell.number_format = _INSTANT
            elif isinstance(value, dt.date):
                cell.number_format = _DATE
            shown = len(value.isoformat()) if isinstance(value, dt.date) else len(str(value or ""))
            widths[i] = max(widths[i], min(shown, 60))
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width + 2
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    out = io.BytesIO()
    book.save(out)
    write_atomic(path, out.getvalue())
