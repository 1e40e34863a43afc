"""A site's screening log, one patient per row, from a spreadsheet (.xlsx) or a .csv file.

All or nothing per file: every row is screened in one write transaction, and one bad row
(an unknown column, a value that cannot be typed, a site the trial does not have, a date after
today at the site) refuses the whole file with every problem found, each naming the file, the
row as the spreadsheet numbers it and the column, so the log is fixed and imported again.

Columns: ``site`` (the enrolling site; ``--site`` gives it for rows without one), ``patient`` (a
screening number to re-screen; empty for a new patient), ``date`` (the screening date; today at
the site when empty), ``sex``, and one column per screening field, headed by its id (``protocol
fields PROTOCOL --format xlsx`` writes the template). An empty cell is a value not recorded.
The first worksheet is read, or the one named ``screenings`` when there is one.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sarcoma_sched.db.session import Database
from sarcoma_sched.eligibility import parse_field_values
from sarcoma_sched.errors import InputFileError, Problem, SarcomaSchedError
from sarcoma_sched.input_files import decode, read_bytes
from sarcoma_sched.limits import MAX_INPUT_FILE_BYTES
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.lookups import current_protocol
from sarcoma_sched.services.screening import ScreeningOutcome, screen_in
from sarcoma_sched.vocabulary import SEXES, Sex

__all__ = [
    "FIELD_COLUMNS",
    "MAX_ROWS",
    "RESERVED_COLUMNS",
    "TABLE_SUFFIXES",
    "FieldTemplate",
    "ImportOutcome",
    "field_template",
    "import_screenings",
    "read_table",
    "template_csv",
    "template_toml",
    "template_xlsx",
]

TABLE_SUFFIXES = (".xlsx", ".csv")
RESERVED_COLUMNS = ("site", "patient", "date", "sex")
# A screening log is tens to hundreds of rows a year per site; the bound keeps one refused file
# from printing a hundred thousand lines, and a transaction from holding the lock for minutes.
MAX_ROWS = 5000
# A workbook is zipped XML: a few hundred rows are tens of kilobytes.
MAX_WORKBOOK_BYTES = 8 * MAX_INPUT_FILE_BYTES
MAX_PROBLEMS_SHOWN = 50
SHEET_NAME = "screenings"


@dataclass(frozen=True)
class TableRow:
    number: int  # as the spreadsheet numbers it: the header is row 1
    cells: dict[str, Any]


@dataclass(frozen=True)
class ImportOutcome:
    source: str
    stored: bool
    rows: list[tuple[int, ScreeningOutcome]]


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _where_column(name: str, letters: Mapping[str, str]) -> str:
    return f"column {name}" + (f" ({letters[name]})" if name in letters else "")


def read_table(path: Path) -> tuple[list[str], dict[str, str], list[TableRow]]:
    """The header, each header's column letter, and the non-blank rows of ``path``."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = read_bytes(path)
        # Excel's "CSV UTF-8" starts with a byte-order mark: for a CSV that is the norm.
        text = decode(data.removeprefix(b"\xef\xbb\xbf"), source)
        grid: list[list[Any]] = list(csv.reader(io.StringIO(text, newline="")))
    elif suffix == ".xlsx":
        grid = _workbook_grid(read_bytes(path, limit=MAX_WORKBOOK_BYTES), source)
    else:
        raise InputFileError([Problem(source, "", "expected a .xlsx or .csv file")])
    if not grid or not any(_blank(c) is not None for c in grid[0]):
        raise InputFileError([Problem(source, "row 1", "no header row (field ids, site, ...)")])
    problems: list[Problem] = []
    header: list[str] = []
    letters: dict[str, str] = {}
    for i, cell in enumerate(grid[0]):
        name = "" if _blank(cell) is None else str(cell).strip()
        letter = _column_letter(i)
        if name and name in letters:
            problems.append(
                Problem(
                    source, f"row 1, column {letter}", f"{name!r} is also column {letters[name]}"
                )
            )
        elif name:
            letters[name] = letter
        header.append(name)
    rows: list[TableRow] = []
    for number, values in enumerate(grid[1:], start=2):
        cells: dict[str, Any] = {}
        for i, value in enumerate(values):
            value = _blank(value)
            if value is None:
                continue
            name = header[i] if i < len(header) else ""
            if not name:
                problems.append(
                    Problem(
                        source,
                        f"row {number}, column {_column_letter(i)}",
                        f"a value ({_shown(value)}) in a column without a header",
                    )
                )
                continue
            cells[name] = value
        if cells:
            rows.append(TableRow(number, cells))
    if len(rows) > MAX_ROWS:
        problems.append(
            Problem(source, "", f"{len(rows)} rows; a file may hold at most {MAX_ROWS}")
        )
    if not rows and not problems:
        problems.append(Problem(source, "", "no rows below the header: nothing to screen"))
    if problems:
        raise _refusal(problems)
    return [h for h in header if h], letters, rows


def _workbook_grid(data: bytes, source: str) -> list[list[Any]]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError):
        raise InputFileError(
            [Problem(source, "", "not an .xlsx workbook (save it as Excel Workbook .xlsx)")]
        ) from None
    try:
        sheet = book[SHEET_NAME] if SHEET_NAME in book.sheetnames else book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refusal(problems: list[Problem]) -> InputFileError:
    if len(problems) > MAX_PROBLEMS_SHOWN:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        problems = [
            *problems[:MAX_PROBLEMS_SHOWN],
            Problem(problems[0].source.split(": row")[0], "", f"and {more} more problems"),
        ]
    return InputFileError(problems)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0, 0):
            raise ValueError(f"a date without a time of day (got {value.isoformat(sep=' ')})")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"not a date YYYY-MM-DD (got {_shown(value)})")


class _DryRun(Exception):
    """Raised inside the write transaction to roll a dry run back with its outcomes."""

    def __init__(self, rows: list[tuple[int, ScreeningOutcome]]) -> None:
        super().__init__("dry run")
        self.rows = rows


def import_screenings(
    db: Database,
    actor: str,
    protocol_id: str,
    path: Path,
    *,
    site: str | None = None,
    screened_on: dt.date | None = None,
    sex: str = Sex.UNKNOWN,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ImportOutcome:
    """Screen every row of ``path`` in one transaction, or none. ``site``, ``screened_on`` and
    ``sex`` stand in for a row without that column. ``dry_run`` makes every check and numbers
    the patients as the import would, inside the same transaction, then rolls it back."""
    source = str(path)
    _header, letters, rows = read_table(path)
    try:
        with db.write(actor, "screen") as session:
            protocol = current_protocol(session, protocol_id).protocol
            fields = [f.id for f in protocol.fields]
            problems = _unknown_columns(source, letters, fields)
            # Named once, in row 1; the rows are still checked for everything else.
            unknown = {name for name in letters if name not in fields} - set(RESERVED_COLUMNS)
            done: list[tuple[int, ScreeningOutcome]] = []
            for row in rows:
                outcome = _screen_row(
                    session, actor, protocol_id, source, row, letters, site, screened_on, sex,
                    now, problems, unknown, protocol,
                )  # fmt: skip
                if outcome is not None:
                    done.append((row.number, outcome))
            if problems:
                raise _refusal(problems)
            if dry_run:
                raise _DryRun(done)
    except _DryRun as rolled_back:
        return ImportOutcome(source, False, rolled_back.rows)
    return ImportOutcome(source, True, done)


def _unknown_columns(source: str, letters: Mapping[str, str], fields: list[str]) -> list[Problem]:
    problems = []
    for name, letter in letters.items():
        if name in RESERVED_COLUMNS or name in fields:
            continue
        close = difflib.get_close_matches(name, [*fields, *RESERVED_COLUMNS], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            Problem(
                source,
                f"row 1, column {letter}",
                f"{name!r} is not a screening field of the protocol nor one of "
                f"{', '.join(RESERVED_COLUMNS)}{hint}",
            )
        )
    return problems


def _screen_row(
    session: Any,
    actor: str,
    protocol_id: str,
    source: str,
    row: TableRow,
    letters: Mapping[str, str],
    default_site: str | None,
    default_date: dt.date | None,
    default_sex: str,
    now: dt.datetime | None,
    problems: list[Problem],
    unknown: set[str],
    protocol: Protocol,
) -> ScreeningOutcome | None:
    where = f"{source}: row {row.number}"
    cells = row.cells
    found = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(Problem(where, _where_column(column, letters), message))

    site = str(cells["site"]) if "site" in cells else default_site
    patient = str(cells["patient"]) if "patient" in cells else None
    screened_on = default_date
    if "date" in cells:
        try:
            screened_on = _date(cells["date"])
        except ValueError as exc:
            bad("date", str(exc))
    sex = str(cells.get("sex", default_sex)).strip().lower()
    if sex not in SEXES:
        bad("sex", f"one of {', '.join(SEXES)} (got {_shown(cells.get('sex'))})")
    if patient is None and not site:
        bad("site", "a new patient needs a site: a site column, or --site for every row")
    elif patient is None and site and site.upper() not in (s.code for s in protocol.sites):
        known = ", ".join(s.code for s in protocol.sites)
        bad("site", f"the trial has no site {_shown(site)} (sites: {known})")
    values = {k: v for k, v in cells.items() if k not in RESERVED_COLUMNS and k not in unknown}
    try:
        if len(problems) > found:
            # The row is refused already: its values are still checked, so one pass names all.
            parse_field_values(protocol, values, where)
            return None
        return screen_in(
            session, actor, protocol_id, site, values, screened_on=screened_on, sex=sex,
            patient_ref=patient, source=where, now=now,
        )  # fmt: skip
    except InputFileError as exc:
        for p in exc.problems:
            column = _where_column(p.path, letters) if p.path else ""
            problems.append(Problem(where, column, p.message))
    except SarcomaSchedError as exc:
        message = str(exc).removeprefix(f"{where}: ")
        if message.startswith("screening date"):
            column = "date"
        elif patient is not None and "patient" in message:
            column = "patient"
        elif "site" in message:
            column = "site"
        else:
            column = ""
        problems.append(Problem(where, _where_column(column, letters) if column else "", message))
    return None


# --- the template: what a screening of a protocol asks for ------------------------------------

FIELD_COLUMNS = ["field", "label", "type", "unit", "min", "max", "allowed", "by", "help"]


@dataclass(frozen=True)
class FieldTemplate:
    protocol_id: str
    version: str
    fields: list[dict[str, Any]]  # one per field, FIELD_COLUMNS


def field_template(db: Database, protocol_id: str) -> FieldTemplate:
    """Every screening field of the protocol's current version (what ``screen`` checks
    against), with its type, unit, plausible range and allowed values."""
    with db.read() as session:
        protocol = current_protocol(session, protocol_id).protocol
    rows = []
    for f in protocol.fields:
        row: dict[str, Any] = {c: "" for c in FIELD_COLUMNS}
        row.update(field=f.id, label=f.label, type=f.type, help=f.help)
        if f.type in ("integer", "number"):
            row.update(unit=f.unit, min=_bound(f.min), max=_bound(f.max))
        elif f.type == "category":
            row["allowed"] = " | ".join(f.values)
        elif f.type in ("boolean", "attestation"):
            row["allowed"] = "yes | no"
        elif f.type == "date":
            row["allowed"] = "YYYY-MM-DD"
        if f.type == "attestation":
            row["by"] = f.by
        rows.append(row)
    return FieldTemplate(protocol.id, protocol.version, rows)


def _bound(value: float | None) -> Any:
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else value


def _example(field: Mapping[str, Any]) -> str:
    """A TOML value of the field's type, to be replaced: a placeholder that parses."""
    kind = field["type"]
    if kind == "integer":
        return str(field["min"] if field["min"] != "" else 0)
    if kind == "number":
        return str(float(field["min"] if field["min"] != "" else 0))
    if kind == "category":
        return '"' + str(field["allowed"]).split(" | ")[0] + '"'
    if kind == "date":
        return "2026-01-01"
    return "false"


def template_toml(template: FieldTemplate) -> str:
    """A ``--from-file`` file for one patient: every field commented out, with what it takes."""
    lines = [
        f"# Screening values for {template.protocol_id} v{template.version}:",
        f"#   sarcoma-sched screen {template.protocol_id} --site SITE --from-file THIS-FILE",
        "# Remove the '#' before each value you know and write it in; a field left commented",
        "# out is not recorded (its criteria count as not passed until it is).",
        "",
    ]
    for f in template.fields:
        what = [f["type"]]
        if f["unit"]:
            what.append(str(f["unit"]))
        if f["min"] != "" or f["max"] != "":
            what.append(f"{f['min']}..{f['max']}")
        if f["allowed"]:
            what.append(f"one of: {f['allowed']}")
        if f["by"]:
            what.append(f"affirmed by the {f['by']}")
        lines.append(f"# {f['label']} ({', '.join(what)})")
        if f["help"]:
            lines.append(f"#   {f['help']}")
        lines.append(f"# {f['field']} = {_example(f)}")
        lines.append("")
    return "\n".join(lines)


def template_csv(template: FieldTemplate) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(template.fields)
    return out.getvalue()


def template_xlsx(template: FieldTemplate) -> bytes:
    """A workbook to fill in: sheet ``screenings`` (what ``screen --from-file`` reads: the
    header row frozen, lists offered where the values are closed, dates typed as dates) and
    sheet ``fields`` describing each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET_NAME
    header = [*RESERVED_COLUMNS, *(f["field"] for f in template.fields)]
    sheet.append(header)
    kinds = {"site": "text", "patient": "text", "date": "date", "sex": "sex"}
    kinds.update({f["field"]: f["type"] for f in template.fields})
    allowed = {f["field"]: f["allowed"] for f in template.fields}
    last = 1000  # rows offered the lists and formats; more rows simply have none
    for i, name in enumerate(header, start=1):
        letter = get_column_letter(i)
        sheet.cell(row=1, column=i).font = Font(bold=True)
        sheet.column_dimensions[letter].width = max(12, min(len(name) + 2, 40))
        cells = f"{letter}2:{letter}{last}"
        kind = kinds[name]
        options: list[str] | None = None
        if kind == "sex":
            options = list(SEXES)
        elif kind in ("boolean", "attestation"):
            options = ["yes", "no"]
        elif kind == "category":
            options = str(allowed[name]).split(" | ")
        if options is not None and len(",".join(options)) <= 255:  # Excel's list limit
            rule = DataValidation(type="list", formula1='"' + ",".join(options) + '"')
            rule.add(cells)
            sheet.add_data_validation(rule)
        if kind == "date":
            # Typed as dates where the log is filled in (the import takes text dates too).
            for row in range(2, last + 1):
                sheet.cell(row=row, column=i).number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    described = book.create_sheet("fields")
    described.append(FIELD_COLUMNS)
    for f in template.fields:
        described.append([f[c] for c in FIELD_COLUMNS])
    for cell in described[1]:
        cell.font = Font(bold=True)
    described.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
