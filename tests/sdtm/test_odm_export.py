"""``export odm``: the demo's NATARS schedule as CDISC ODM 1.3.2, valid against the ODM 1.3.2
XSD odmlib ships (through xmlschema), read back with odmlib's own loader, and holding what the
database holds: the subjects, their sites, and per visit the SV rows' days and status.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import invoke, query
from tests.sdtm.conftest import expected, read


def _schemas() -> Path:
    import odmlib

    return Path(odmlib.__file__).parent / "schemas"


def test_the_odm_file_is_valid_odm_1_3_2_and_reads_back_with_odmlib_as_the_database_holds(
    command, demo, tmp_path
):
    import xmlschema
    from odmlib import loader, odm_loader

    path = tmp_path / "natars.xml"
    done = invoke(command, tmp_path, "--db", str(demo), "export", "odm", "NATARS", "--out",
                  str(path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    schema = xmlschema.XMLSchema(str(_schemas() / "odm" / "1.3.2" / "ODM1-3-2.xsd"))
    assert [str(e) for e in schema.iter_errors(str(path))] == []
    reader = loader.ODMLoader(odm_loader.XMLODMLoader())
    reader.open_odm_document(str(path))
    odm = reader.root()
    clinical = odm.ClinicalData[0]
    data = read(demo, "NATARS")
    assert [s.SubjectKey for s in clinical.SubjectData] == [s.study_id for s in data.subjects]
    sv = expected(demo, "NATARS")["SV"]
    tv_names = {r["VISITNUM"]: r["VISIT"] for r in expected(demo, "NATARS")["TV"]}
    defs = {d.OID: d.Name for d in odm.Study[0].MetaDataVersion[0].StudyEventDef}
    for subject, stored in zip(clinical.SubjectData, data.subjects, strict=True):
        assert subject.SiteRef.LocationOID == f"LOC.{stored.site_code}"
        rows = [r for r in sv if r["USUBJID"] == f"NATARS-{stored.study_id}"]
        assert [e.StudyEventOID for e in subject.StudyEventData] == [
            f"SE.V{r['VISITNUM']}" for r in rows
        ]
        for event, row in zip(subject.StudyEventData, rows, strict=True):
            assert defs[event.StudyEventOID] == tv_names[row["VISITNUM"]]
            values = {i.ItemOID: i.Value for i in event.FormData[0].ItemGroupData[0].ItemData}
            assert values.get("IT.ACTUAL_START", "") == row["SVSTDTC"]
            assert values.get("IT.ACTUAL_END", "") == row["SVENDTC"]
            assert (values["IT.STATUS"] == "done") == (row["SVOCCUR"] == "Y")
    text = path.read_text(encoding="utf-8")
    for (note,) in query(str(demo), "SELECT note FROM scheduled_events WHERE note IS NOT NULL"):
        assert note not in text


def test_export_odm_of_an_unknown_protocol_is_one_line_and_writes_nothing(run, demo, tmp_path):
    done = run("--db", str(demo), "export", "odm", "NOPE", "--out", str(tmp_path / "b.xml"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: protocol 'NOPE'") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "b.xml").exists()
