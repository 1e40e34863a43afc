"""The SDTM subject datasets of the demo database (DM, SE, SV, DS, DV, SUPP--, and TS with the
trial's facts) against what the database holds, and ``conformance.check`` (SDTMIG 3.4 variable
metadata and controlled terminology; see its docstring for what CDISC CORE would add) with no
finding on any demo trial, and the findings it makes on a broken export.
"""

from __future__ import annotations

import pytest

from sarcoma_sched.exports.sdtm.variables import VARIABLES
from sarcoma_sched.vocabulary import EventStatus
from tests.cli.conftest import query
from tests.sdtm import conformance
from tests.sdtm.conftest import TRIALS, expected, read


@pytest.mark.parametrize("trial", TRIALS)
def test_the_demo_passes_the_sdtmig_conformance_check_with_no_error(demo, trial):
    assert conformance.check(expected(demo, trial, notes=True)) == []


def test_the_conformance_check_finds_what_a_broken_export_gets_wrong(demo):
    data = expected(demo, "NATARS")
    data["DM"][0]["SEX"] = "FEMALE"
    data["DM"][1]["USUBJID"] = ""
    data["SV"][0]["VISIT"] = "Somewhere else"
    data["DS"][0]["DSSTDY"] = "0"
    data["TS"] = [r for r in data["TS"] if r["TSPARMCD"] != "TBLIND"]
    found = "\n".join(conformance.check(data))
    assert "SEX 'FEMALE' not in codelist SEX" in found
    assert "required USUBJID is null" in found
    assert "is not TV's" in found
    assert "DSSTDY is 0" in found
    assert "required parameter TBLIND missing" in found


def test_sv_shows_the_planned_and_the_actual_day_of_a_visit_done_late(demo):
    data = expected(demo, "TNT-STS")
    planned = {
        (r["USUBJID"], r["IDVARVAL"]): r["QVAL"] for r in data["SUPPSV"] if r["QNAM"] == "SVPLSTDT"
    }
    late = [
        (r, planned[(r["USUBJID"], r["VISITNUM"])])
        for r in data["SV"]
        if r["SVSTDTC"] and r["SVSTDTC"] > planned[(r["USUBJID"], r["VISITNUM"])]
    ]
    assert late, "the demo records delays"
    subjects = {s.study_id: s for s in read(demo, "TNT-STS").subjects}
    for row, day in late:
        subject = subjects[row["USUBJID"].removeprefix("TNT-STS-")]
        event = next(
            e
            for e in subject.events
            if e.status == EventStatus.DONE
            and e.target.isoformat() == day
            and e.days[0].isoformat() == row["SVSTDTC"]
        )
        assert row["SVOCCUR"] == "Y" and event.days[-1].isoformat() == row["SVENDTC"]


def test_sv_lists_a_missed_visit_as_planned_and_not_occurred_with_its_reason(demo):
    data = expected(demo, "NATARS")
    missed = [r for r in data["SV"] if r["SVOCCUR"] == "N"]
    assert missed
    assert all(r["SVPRESP"] == "Y" and r["SVSTDTC"] == "" and r["SVREASOC"] for r in missed)
    planned_only = [r for r in data["SV"] if r["SVOCCUR"] == ""]
    assert planned_only and all(r["SVSTDTC"] == "" for r in planned_only)


def test_ds_shows_the_demos_withdrawal_with_its_coded_reason_and_date(demo):
    ends = query(
        str(demo),
        "SELECT p.study_id, e.effective_date, e.reason, p.protocol_id "
        "FROM participation_ends e JOIN patients p ON p.id = e.patient_id",
    )
    assert len(ends) == 1
    study_id, day, reason, trial = ends[0]
    data = expected(demo, trial)
    (row,) = [r for r in data["DS"] if r["USUBJID"] == f"{trial}-{study_id}" and
              r["DSCAT"] == "DISPOSITION EVENT"]  # fmt: skip
    assert row["DSSTDTC"] == day and row["DSTERM"].startswith("Withdrawn")
    assert row["DSDECOD"] == {"other": "OTHER", "patient_request": "WITHDRAWAL BY SUBJECT"}.get(
        reason, row["DSDECOD"]
    )
    assert row["DSDECOD"] in conformance.CT["DSDECOD"]


def test_dm_has_one_row_per_allocated_patient_and_no_birth_date(demo):
    for trial in TRIALS:
        data = expected(demo, trial)
        allocated = {
            s for (s,) in query(
                str(demo),
                "SELECT p.study_id FROM patients p JOIN allocations a ON a.patient_id = p.id "
                f"WHERE p.protocol_id = '{trial}'",
            )
        }  # fmt: skip
        assert {r["SUBJID"] for r in data["DM"]} == allocated
        assert "BRTHDTC" not in VARIABLES["DM"] and all("BRTHDTC" not in r for r in data["DM"])


def test_ts_with_subjects_states_the_study_start_and_the_number_of_subjects(demo):
    data = read(demo, "NATARS-R")
    ts = {r["TSPARMCD"]: r for r in expected(demo, "NATARS-R")["TS"]}
    assert ts["ACTSUB"]["TSVAL"] == str(len(data.subjects))
    assert ts["SSTDTC"]["TSVAL"] == min(s.consent for s in data.subjects).isoformat()
    assert ts["RANDOM"]["TSVAL"] == "Y" and ts["RANDOM"]["TSVCDVER"]
    assert ts["SDTIGVER"]["TSVAL"] == "3.4"
