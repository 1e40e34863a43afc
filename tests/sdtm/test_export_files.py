"""The SDTM files (XPT, Dataset-JSON, CSV, define.xml) as a data manager gets
them from the demo database with the installed command.

Each file is read back by the library that wrote it and by an independent reader (pandas'
own SAS transport reader beside pyreadstat; jsonschema with CDISC's published Dataset-JSON
1.1 schema, vendored as ``dataset-json-1.1.schema.json`` from cdisc-org/DataExchange-
DatasetJson under its MIT licence; the Define-XML 2.1 XSD odmlib ships, through xmlschema,
beside odmlib's own loader), and its values are compared with what the database
holds, read through the service (``tests/sdtm/conftest.expected``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.exports.sdtm.variables import VARIABLES
from sarcoma_sched.exports.sdtm.writers import dataset_json, write_datasets
from tests.cli.conftest import invoke, query
from tests.sdtm.conftest import TRIALS, as_text, expected

HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "dataset-json-1.1.schema.json").read_text())
DATASETS = ["TA", "TE", "TV", "TI", "TS", "DM", "SE", "SV", "DS", "DV"]


def _schemas() -> Path:
    import odmlib

    return Path(odmlib.__file__).parent / "schemas"


def export(command, db: Path, out: Path, trial: str, *options: str) -> list[str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    done = invoke(command, out.parent, "--db", str(db), "export", "sdtm", trial, "--out", str(out),
                  *options)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("trial", TRIALS)
def test_the_xpt_export_reads_back_with_pyreadstat_and_pandas_as_the_database_holds(
    command, demo, tmp_path, trial
):
    import pandas as pd
    import pyreadstat

    out = tmp_path / "xpt"
    lines = export(command, demo, out, trial, "--format", "xpt")
    want = expected(demo, trial)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{n.lower()}.xpt" for n in want] + ["define.xml"])
    assert set(DATASETS) <= set(want)
    assert lines[-1] == f"{out / 'define.xml'}  {len(want)} datasets"
    for name, rows in want.items():
        path = out / f"{name.lower()}.xpt"
        frame, meta = pyreadstat.read_xport(str(path))
        assert meta.table_name == name
        assert list(frame.columns) == [v.name for v in VARIABLES[name]]
        assert meta.column_labels == [v.label for v in VARIABLES[name]]
        got = [{k: as_text(v) for k, v in r.items()} for r in frame.to_dict("records")]
        assert got == rows, name
        if not rows:
            continue  # pandas' reader stops on a file of no records (StopIteration)
        # An independent reader of SAS transport v5.
        other = pd.read_sas(path, format="xport", encoding="utf-8")
        got = [{k: as_text(v) for k, v in r.items()} for r in other.to_dict("records")]
        assert got == rows, name


@pytest.mark.parametrize("trial", TRIALS)
def test_every_dataset_json_file_meets_cdiscs_schema_and_holds_the_database_values(
    command, demo, tmp_path, trial
):
    out = tmp_path / "json"
    export(command, demo, out, trial, "--format", "json")
    want = expected(demo, trial)
    for name, rows in want.items():
        doc = json.loads((out / f"{name.lower()}.json").read_text(encoding="utf-8"))
        jsonschema.validate(doc, SCHEMA)
        assert doc["name"] == name and doc["records"] == len(rows)
        columns = [c["name"] for c in doc["columns"]]
        assert columns == [v.name for v in VARIABLES[name]]
        got = [dict(zip(columns, (as_text(v) for v in r), strict=True)) for r in doc["rows"]]
        assert got == rows, name
        for column in doc["columns"]:
            if column["dataType"] == "string":
                longest = max((len(r[column["name"]].encode()) for r in rows), default=1)
                assert column["length"] == max(longest, 1)


def test_a_dataset_json_file_missing_a_required_member_fails_the_schema():
    doc = dataset_json("DM", [], study="X")
    jsonschema.validate(doc, SCHEMA)
    del doc["columns"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_notes_are_exported_only_when_asked_for(command, demo, tmp_path):
    notes = [n for (n,) in query(str(demo), "SELECT note FROM participation_ends "
             "UNION SELECT note FROM scheduled_events WHERE deviation IS NOT NULL")
             if n]  # fmt: skip
    assert notes
    plain, noted = tmp_path / "plain", tmp_path / "noted"
    for trial in TRIALS:
        export(command, demo, plain / trial, trial, "--format", "json")
        export(command, demo, noted / trial, trial, "--format", "json", "--include-notes")
    text = "".join(p.read_text(encoding="utf-8") for p in plain.rglob("*.*"))
    assert not [n for n in notes if json.dumps(n)[1:-1] in text]
    with_notes = "".join(p.read_text(encoding="utf-8") for p in noted.rglob("*.*"))
    assert [n for n in notes if json.dumps(n)[1:-1] in with_notes]


def test_define_xml_is_valid_define_2_1_and_describes_each_file_as_written(command, demo, tmp_path):
    import pyreadstat
    import xmlschema
    from odmlib import define_loader, loader

    out = tmp_path / "xpt"
    export(command, demo, out, "NATARS", "--format", "xpt")
    schema = xmlschema.XMLSchema(str(_schemas() / "define" / "2.1" / "define2-1-0.xsd"))
    assert [str(e) for e in schema.iter_errors(str(out / "define.xml"))] == []
    reader = loader.ODMLoader(define_loader.XMLDefineLoader(model_package="define_2_1"))
    reader.open_odm_document(str(out / "define.xml"))
    mdv = reader.MetaDataVersion()
    groups = {g.Name: g for g in mdv.ItemGroupDef}
    assert sorted(groups) == sorted(p.stem.upper() for p in out.glob("*.xpt"))
    items = {i.OID: i for i in mdv.ItemDef}
    for name, group in groups.items():
        assert group.leaf.href == f"{name.lower()}.xpt"
        _, meta = pyreadstat.read_xport(str(out / group.leaf.href), metadataonly=True)
        for ref in group.ItemRef:
            item = items[ref.ItemOID]
            if item.DataType == "text":
                assert item.Length == meta.variable_storage_width[item.Name], (name, item.Name)
    codelists = {c.OID: c for c in mdv.CodeList}
    sex = [i.CodedValue for i in codelists["CL.SEX"].EnumeratedItem]
    assert sex == ["U"]  # the demo records no sex


def test_bad_input_gets_one_line_and_a_non_zero_exit(run, demo, tmp_path):
    cases = [
        ["--db", str(demo), "export", "sdtm", "NOPE", "--out", str(tmp_path / "a")],
        ["export", "sdtm", "NATARS", "--include-notes", "--out", str(tmp_path / "c")],
        ["--db", str(demo), "export", "sdtm", "NATARS", "--format", "sas", "--out", "d"],
    ]
    for args in cases:
        done = run(*args)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr
        # One line saying what is wrong (a usage error also has click's usage lines).
        said = [line for line in done.stderr.splitlines() if line.lower().startswith("error")]
        assert len(said) == 1, done.stderr
    for name in ("a", "c", "d"):
        assert not (tmp_path / name).exists()


def test_design_only_writes_the_trial_design_without_reading_subjects(command, demo, tmp_path):
    out = tmp_path / "design"
    lines = export(command, demo, out, "NATARS", "--design-only")
    assert sorted(p.name for p in out.iterdir()) == [
        f"{n}.csv" for n in ("ta", "te", "ti", "ts", "tv")
    ]
    assert len(lines) == 5
    with (out / "ts.csv").open(encoding="utf-8", newline="") as f:
        ts = {r["TSPARMCD"]: r for r in csv.DictReader(f)}
    assert ts["ACTSUB"]["TSVALNF"] == "NI" and ts["SSTDTC"]["TSVALNF"] == "NI"


# Text of any printable ASCII (SAS transport v5 is single byte) and numbers as the datasets
# have them: a file written and read back holds the same values, in every format.
_char = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
_num = st.none() | st.integers(-100_000, 100_000)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {v.name: (_num if v.type == "Num" else _char) for v in VARIABLES["DV"]}
), max_size=6))  # fmt: skip
def test_any_rows_survive_xpt_json_and_csv_unchanged(rows):
    import tempfile

    import pyreadstat

    want = [{k: as_text(v) for k, v in r.items()} for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("xpt", "json", "csv"):
            directory = Path(tmp) / fmt
            (path,) = write_datasets({"DV": rows}, directory, fmt, study="S",  # type: ignore[arg-type]
                                     created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # fmt: skip
            if fmt == "xpt":
                frame, _ = pyreadstat.read_xport(str(path))
                got = [{k: as_text(v) for k, v in r.items()} for r in frame.to_dict("records")]
            elif fmt == "json":
                doc = json.loads(path.read_text())
                jsonschema.validate(doc, SCHEMA)
                names = [c["name"] for c in doc["columns"]]
                got = [dict(zip(names, map(as_text, r), strict=True)) for r in doc["rows"]]
            else:
                with path.open(newline="", encoding="utf-8") as f:
                    got = list(csv.DictReader(f))
            assert got == want, fmt


def test_the_schema_file_is_cdiscs_dataset_json_1_1():
    assert SCHEMA["$id"] == "https://cdisc.org/dataset-json/model"
    assert SCHEMA["properties"]["datasetJSONVersion"]["pattern"].startswith("^1.1")
    assert os.path.getsize(HERE / "dataset-json-1.1.schema.json") > 10_000
