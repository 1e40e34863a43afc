"""SDTM datasets into files: CSV, SAS transport v5 (XPT) or CDISC Dataset-JSON 1.1.

Every file goes through the one atomic writer. Names, labels, types and keys come from
``variables``; a character variable is as long as its longest value (at least 1), as the FDA's
technical conformance guide asks, and the same length is written to XPT, Dataset-JSON and
define.xml (``lengths``).

XPT: version 5 (the FDA's only accepted transport format), written by ``pyreadstat`` from a
pandas frame; character values blank when missing, numbers a SAS missing value. Dataset-JSON:
one object per dataset, ``null`` for every missing value, dates typed ``date`` (ISO 8601 text).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sarcoma_sched import __version__
from sarcoma_sched.exports.files import write_atomic
from sarcoma_sched.exports.sdtm.common import Row
from sarcoma_sched.exports.sdtm.variables import DATASET_LABELS, KEYS, VARIABLES, Variable

__all__ = [
    "DATASET_JSON_VERSION",
    "FORMATS",
    "Format",
    "dataset_json",
    "item_oid",
    "lengths",
    "write_datasets",
]

Format = Literal["csv", "xpt", "json"]
FORMATS: tuple[Format, ...] = ("csv", "xpt", "json")
DATASET_JSON_VERSION = "1.1.0"
SUFFIX = {"csv": "csv", "xpt": "xpt", "json": "json"}


def item_oid(dataset: str, variable: str) -> str:
    """The OID define.xml gives the variable and Dataset-JSON's column refers to."""
    return f"IT.{dataset}.{variable}"


def _empty(value: Any) -> bool:
    return value is None or value == ""


def lengths(name: str, rows: list[Row]) -> dict[str, int]:
    """Per character variable of ``name``: its longest value in bytes (at least 1)."""
    return {
        v.name: max(
            (len(str(r[v.name]).encode()) for r in rows if not _empty(r.get(v.name))), default=1
        )
        or 1
        for v in VARIABLES[name]
        if v.type == "Char"
    }


def _values(v: Variable, rows: list[Row]) -> list[Any]:
    return [None if _empty(r.get(v.name)) else r[v.name] for r in rows]


def write_datasets(
    datasets: Mapping[str, list[Row]],
    directory: Path,
    fmt: Format,
    *,
    study: str,
    created: dt.datetime | None = None,
) -> list[Path]:
    """One file per dataset (``dm.xpt`` …), in the order of ``datasets``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in datasets.items():
        path = directory / f"{name.lower()}.{SUFFIX[fmt]}"
        if fmt == "csv":
            data: bytes | str = _csv(name, rows)
        elif fmt == "xpt":
            data = _xpt(name, rows)
        else:
            doc = dataset_json(name, rows, study=study, created=created)
            data = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
        written.append(write_atomic(path, data))
    return written


def _csv(name: str, rows: list[Row]) -> str:
    columns = [v.name for v in VARIABLES[name]]
    buffer = io.StringIO(newline="")  # the csv module writes its own CRLF line ends
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return buffer.getvalue()


def _xpt(name: str, rows: list[Row]) -> bytes:
    import pandas as pd
    import pyreadstat

    frame: dict[str, Any] = {}
    for v in VARIABLES[name]:
        values = _values(v, rows)
        if v.type == "Num":
            frame[v.name] = pd.Series(
                [float("nan") if x is None else x for x in values], dtype=float
            )
        else:
            frame[v.name] = pd.Series(["" if x is None else str(x) for x in values], dtype=object)
    df = pd.DataFrame(frame, columns=[v.name for v in VARIABLES[name]])
    with tempfile.TemporaryDirectory() as tmp:
        # pyreadstat writes to a path; the bytes then go through the atomic writer.
        target = Path(tmp) / f"{name.lower()}.xpt"
        pyreadstat.write_xport(
            df,
            str(target),
            file_label=DATASET_LABELS[name],
            column_labels={v.name: v.label for v in VARIABLES[name]},
            table_name=name,
            file_format_version=5,
        )
        return target.read_bytes()


def dataset_json(
    name: str, rows: list[Row], *, study: str, created: dt.datetime | None = None
) -> dict[str, Any]:
    """One dataset as a CDISC Dataset-JSON 1.1 object."""
    when = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    sizes = lengths(name, rows)
    keys = KEYS.get(name, [])
    columns: list[dict[str, Any]] = []
    for v in VARIABLES[name]:
        column: dict[str, Any] = {
            "itemOID": item_oid(name, v.name),
            "name": v.name,
            "label": v.label,
            "dataType": "integer" if v.type == "Num" else ("date" if v.date else "string"),
        }
        if v.type == "Char":
            column["length"] = sizes[v.name]
        if v.name in keys:
            column["keySequence"] = keys.index(v.name) + 1
        columns.append(column)
    values = [_values(v, rows) for v in VARIABLES[name]]
    return {
        "datasetJSONCreationDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study}/{name}",
        "originator": "sarcoma_sched",
        "sourceSystem": {"name": "sarcoma_sched", "version": __version__},
        "studyOID": study,
        "metaDataVersionOID": f"MDV.{study}",
        "metaDataRef": "define.xml",
        "itemGroupOID": f"IG.{name}",
        "records": len(rows),
        "name": name,
        "label": DATASET_LABELS[name],
        "columns": columns,
        "rows": [list(r) for r in zip(*values, strict=True)] if rows else [],
    }
