"""SDTM trial design datasets (TA, TE, TV, TI, TS) from protocol definitions.

The expected arms, elements, visits and criteria are enumerated here from the protocol itself,
independently of ``sarcoma_sched.exports.sdtm``, so a dataset that drops one is caught.
"""

from __future__ import annotations

import csv
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from sarcoma_sched.errors import NotFound
from sarcoma_sched.exports.sdtm import COLUMNS, DATASETS, REQUIRED, trial_design, write_csv
from sarcoma_sched.protocol import Protocol, find_protocol
from sarcoma_sched.protocol.allocation import BlockAllocation, MinimizationAllocation
from tests.cli.conftest import ROOT
from tests.strategies import protocols

BUNDLED = ("TNT-STS", "NATARS", "NATARS-R")
TREATMENT = ("radiotherapy", "infusion", "oral", "surgery")
ISO_DURATION = re.compile(r"^P(?=\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?$")
TS_PARAMETERS = {
    "TITLE",
    "ACRONYM",
    "REGID",
    "SPONSOR",
    "STYPE",
    "TPHASE",
    "INTMODEL",
    "TBLIND",
    "TCNTRL",
    "RANDOM",
    "STRATFCT",
    "NARMS",
    "PLANSUB",
    "SEXPOP",
    "AGEMIN",
    "AGEMAX",
    "ADAPT",
    "INDIC",
    # Required by SDTMIG 3.4 / the FDA's TCG, added with the subject datasets (issue 23).
    "TINDTP", "TTYPE", "HLTSUBJI", "ADDON", "INTTYPE", "CURTRT", "TRT", "OBJPRIM", "LENGTH",
    "STOPRULE", "TDIGRP", "THERAREA", "PCLAS", "EXTTIND", "SSTDTC", "SENDTC", "ACTSUB",
    "SDTIGVER", "SDTMVER",
}  # fmt: skip


def bundled(protocol_id: str) -> Protocol:
    return find_protocol(protocol_id).protocol


def expected_visits(protocol: Protocol, arm_id: str) -> list[str]:
    """Occurrence ids the engine schedules for the arm, oral home-medication periods left out."""
    out = []
    for e in protocol.arm(arm_id).events:
        if e.series is not None:
            month = 0
            for phase in e.series.phases:
                while month + phase.every_months <= phase.until_months:
                    month += phase.every_months
                    out.append(f"{e.key}.m{month}")
            continue
        count = e.repeat.count if e.repeat else 1
        for n in range(1, count + 1):
            suffix = f".{n}" if e.repeat else ""
            if e.kind != "oral":
                out.append(e.key + suffix)
            out.extend(c.key + suffix for c in e.components if c.kind != "oral")
    return out


def check_structure(protocol: Protocol, datasets: dict[str, list[dict]]) -> None:
    """Invariants every protocol's trial design must meet."""
    assert list(datasets) == list(DATASETS)
    for name, rows in datasets.items():
        for row in rows:
            assert list(row) == COLUMNS[name], name
            assert row["STUDYID"] == protocol.id and row["DOMAIN"] == name
            for variable in REQUIRED[name]:
                assert row[variable] not in ("", None), (name, variable, row)

    ta, te, tv, ti, ts = (datasets[n] for n in DATASETS)
    # TA: every arm, elements in order 1..n, every element defined in TE and every TE used.
    codes = {row["ARMCD"] for row in ta}
    assert len(codes) == len(protocol.arms)
    assert all(len(c) <= 20 for c in codes)
    for code in codes:
        orders = [row["TAETORD"] for row in ta if row["ARMCD"] == code]
        assert orders == list(range(1, len(orders) + 1))
    defined = [row["ETCD"] for row in te]
    assert len(defined) == len(set(defined))
    assert {row["ETCD"] for row in ta} == set(defined)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", c) for c in defined), defined
    for row in te:
        assert row["TEENRL"] or row["TEDUR"]
        assert not row["TEDUR"] or ISO_DURATION.match(row["TEDUR"]), row["TEDUR"]
    arms = dict(
        zip([a.id for a in protocol.arms], dict.fromkeys(r["ARMCD"] for r in ta), strict=True)
    )
    for arm in protocol.arms:
        code = arms[arm.id]
        sequence = [row["ETCD"] for row in ta if row["ARMCD"] == code]
        assert sequence[0] == "SCRN"
        treatments = sum(
            e.repeat.count if e.repeat else 1
            for e in arm.events
            if e.kind in TREATMENT and e.series is None
        )
        assert len([c for c in sequence if c not in ("SCRN", "FU")]) == treatments
        assert sequence.count("FU") <= 1 and ("FU" not in sequence or sequence[-1] == "FU")
        # TV: every scheduled occurrence of the arm, in its own row or a row shared by all arms.
        ids = [row["TVSTRL"].split(":")[0] for row in tv if row["ARMCD"] in (code, "")]
        assert sorted(ids) == sorted(expected_visits(protocol, arm.id)), arm.id
    keys = [(row["VISITNUM"], row["ARMCD"]) for row in tv]
    assert len(keys) == len(set(keys))
    names_of: dict[int, set[str]] = {}
    for row in tv:
        names_of.setdefault(row["VISITNUM"], set()).add(row["VISIT"])
        assert row["VISITDY"] != 0  # SDTM study days have no day 0
    assert all(len(n) == 1 for n in names_of.values())
    assert len({next(iter(n)) for n in names_of.values()}) == len(names_of)  # and back
    assert sorted(names_of) == list(range(1, len(names_of) + 1))
    if len(protocol.arms) == 1:
        days = [row["VISITDY"] for row in sorted(tv, key=lambda r: r["VISITNUM"])]
        assert days == sorted(days)
    # TI: every criterion once, with a valid test code and category.
    assert [row["IETESTCD"] for row in ti] == [c.id.replace("-", "") for c in protocol.criteria]
    assert [row["IECAT"] for row in ti] == [c.kind.upper() for c in protocol.criteria]
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]{0,7}", row["IETESTCD"]) for row in ti)
    # TS: known parameters, a value or a null flavour, never both.
    assert {row["TSPARMCD"] for row in ts} <= TS_PARAMETERS
    seqs = [(row["TSPARMCD"], row["TSSEQ"]) for row in ts]
    assert len(seqs) == len(set(seqs))
    for row in ts:
        assert bool(row["TSVAL"] != "") != bool(row["TSVALNF"]), row
    value = {row["TSPARMCD"]: row["TSVAL"] for row in ts}
    assert value["NARMS"] == str(len(protocol.arms))
    randomized = isinstance(protocol.allocation, BlockAllocation | MinimizationAllocation)
    assert value["RANDOM"] == ("Y" if randomized else "N")
    assert value["REGID"] == protocol.study.registry_id
    for age in ("AGEMIN", "AGEMAX"):
        assert value[age] == "" or ISO_DURATION.match(value[age])


def read_back(directory: Path) -> dict[str, list[dict[str, str]]]:
    out = {}
    for name in DATASETS:
        with (directory / f"{name.lower()}.csv").open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == COLUMNS[name]
            out[name] = list(reader)
    return out


def as_text(datasets: dict[str, list[dict]]) -> dict[str, list[dict[str, str]]]:
    return {
        name: [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
        for name, rows in datasets.items()
    }


@pytest.mark.parametrize("protocol_id", BUNDLED)
def test_each_bundled_protocol_gives_complete_trial_design_datasets(protocol_id, tmp_path):
    protocol = bundled(protocol_id)
    datasets = trial_design(protocol)
    check_structure(protocol, datasets)
    write_csv(datasets, tmp_path)
    assert read_back(tmp_path) == as_text(datasets)


def test_tnt_sts_summary_states_the_registered_facts():
    ts = {(r["TSPARMCD"], r["TSSEQ"]): r for r in trial_design(bundled("TNT-STS"))["TS"]}
    value = {code: r["TSVAL"] for (code, _), r in ts.items()}
    assert value["TITLE"] == (
        "The Total Neoadjuvant Therapy for Soft Tissue Sarcoma of the Extremities"
    )
    assert value["REGID"] == "NCT06593899"
    assert ts[("REGID", 1)]["TSVCDREF"] == "ClinicalTrials.gov"
    assert value["TPHASE"] == "PHASE II TRIAL" and ts[("TPHASE", 1)]["TSVALCD"] == "C15601"
    assert value["STYPE"] == "INTERVENTIONAL"
    assert value["INTMODEL"] == "SINGLE GROUP"
    assert value["TBLIND"] == "OPEN LABEL"
    assert value["TCNTRL"] == "NONE"
    assert value["RANDOM"] == "N"
    assert value["NARMS"] == "1"
    assert value["PLANSUB"] == "51"
    assert value["SEXPOP"] == "BOTH"
    assert (value["AGEMIN"], value["AGEMAX"]) == ("P18Y", "P75Y")
    assert ts[("AGEMIN", 1)]["TSVCDREF"] == "ISO 8601"
    assert ts[("INDIC", 1)]["TSVALNF"] == "NI"


def test_tnt_sts_arm_runs_screening_rt_three_ai_cycles_surgery_then_follow_up():
    datasets = trial_design(bundled("TNT-STS"))
    ta = datasets["TA"]
    assert [(r["ETCD"], r["EPOCH"]) for r in ta] == [
        ("SCRN", "SCREENING"),
        ("RT", "TREATMENT"),
        ("AI", "TREATMENT"),
        ("AI", "TREATMENT"),
        ("AI", "TREATMENT"),
        ("SURGERY", "TREATMENT"),
        ("FU", "FOLLOW-UP"),
    ]
    assert all(r["TABRANCH"] == "" for r in ta)  # one arm: nothing to branch
    te = {r["ETCD"]: r for r in datasets["TE"]}
    assert te["AI"]["TEDUR"] == "P21D"
    tv = {r["TVSTRL"].split(":")[0]: r for r in datasets["TV"]}
    # Allocation + 7 days (allocation is study day 1); the window counts working days (the 5th
    # to the 10th after allocation), which the nominal clock reads as 7 … 14 days.
    assert tv["rt"]["VISITDY"] == 8
    assert tv["rt"]["TVSTRL"] == (
        "rt: from the 5th working day after allocation (target +7 days, moved into the window "
        "when outside)"
    )
    assert tv["rt"]["TVENRL"] == (
        "rt: to the 10th working day after allocation; lasts 5 fractions on consecutive "
        "working days"
    )
    assert tv["labs.2"]["TVSTRL"] == "labs.2: from start of ai.2 -3 days (target -1 days)"
    assert tv["follow_up.m60"]["VISITNUM"] == len(tv)


def test_natars_assigned_arms_branch_at_screening_and_share_the_follow_up_clock():
    datasets = trial_design(bundled("NATARS"))
    branches = [r["TABRANCH"] for r in datasets["TA"] if r["TABRANCH"]]
    assert branches == [
        "Assigned to Surgery only (mdt_decision, patient_preference, other)",
        "Assigned to Neoadjuvant AI + anlotinib, then surgery "
        "(mdt_decision, patient_preference, other)",
    ]
    # The resection is one element in both arms.
    assert [r["ETCD"] for r in datasets["TE"]] == ["SCRN", "SURGERY", "AI", "FU"]
    tv = datasets["TV"]
    surgery = [r for r in tv if r["TVSTRL"].startswith("surgery:")]
    assert {r["ARMCD"] for r in surgery} == {"SURGERY_ONLY", "NEOADJUVANT"}
    assert len({r["VISITNUM"] for r in surgery}) == 1
    # NEOADJUVANT's visits keep their order: surgery after the third cycle and restaging.
    neo = sorted((r for r in tv if r["ARMCD"] in ("NEOADJUVANT", "")), key=lambda r: r["VISITNUM"])
    # (Each cycle's pre-cycle labs, a visit of its own, sit before it: left out here.)
    visits = [r["TVSTRL"].split(":")[0] for r in neo]
    assert [v for v in visits if not v.startswith("labs.")][:6] == [
        "ai.1",
        "ai.2",
        "ai.3",
        "restaging",
        "surgery",
        "follow_up.m3",
    ]
    # PFS assessments run on the allocation clock in both arms: one row each, no arm.
    follow_up = [r for r in tv if r["TVSTRL"].startswith("follow_up.")]
    assert len(follow_up) == 14 and all(r["ARMCD"] == "" for r in follow_up)
    ti = {r["IETESTCD"]: r for r in datasets["TI"]}
    assert ti["EXC02"]["IESCAT"] == "POST-ALLOCATION"
    assert ti["INC13"]["TIRL"] == "INC-13 passes if age_years between 18 and 75"
    value = {r["TSPARMCD"]: r for r in datasets["TS"]}
    assert value["TPHASE"]["TSVAL"] == "PHASE IV TRIAL"
    assert value["PLANSUB"]["TSVALNF"] == "NI"  # the registry states no number
    assert value["TCNTRL"]["TSVALNF"] == "NI"


def test_natars_randomized_variant_is_randomized_with_its_minimization_factors():
    ts = trial_design(bundled("NATARS-R"))["TS"]
    assert [r["TSVAL"] for r in ts if r["TSPARMCD"] == "RANDOM"] == ["Y"]
    factors = [(r["TSSEQ"], r["TSVAL"]) for r in ts if r["TSPARMCD"] == "STRATFCT"]
    assert factors == [(1, "histology"), (2, "site")]


# A fixed count on every profile: these datasets are cheap, but CI time is not.
@settings(max_examples=60, deadline=None)
@given(protocols())
def test_any_valid_protocol_gives_consistent_datasets_that_survive_csv(protocol):
    datasets = trial_design(protocol)
    check_structure(protocol, datasets)
    with tempfile.TemporaryDirectory() as tmp:
        write_csv(datasets, Path(tmp))
        assert read_back(Path(tmp)) == as_text(datasets)


def test_the_sdtm_command_writes_five_csv_files(tmp_path):
    from sarcoma_sched.cli.sdtm import sdtm

    out = tmp_path / "natars"
    done = CliRunner().invoke(sdtm, ["NATARS", "--out", str(out)], catch_exceptions=False)
    assert done.exit_code == 0
    assert done.output.splitlines() == [
        f"{out / 'ta.csv'}  9 rows",
        f"{out / 'te.csv'}  4 rows",
        f"{out / 'tv.csv'}  23 rows",
        f"{out / 'ti.csv'}  23 rows",
        f"{out / 'ts.csv'}  36 rows",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "ta.csv",
        "te.csv",
        "ti.csv",
        "ts.csv",
        "tv.csv",
    ]
    minimal = ROOT / "tests" / "protocols" / "minimal.toml"
    done = CliRunner().invoke(sdtm, [str(minimal), "--out", str(tmp_path / "min")])
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(sdtm, ["NOPE", "--out", str(tmp_path / "x")])
    assert isinstance(done.exception, NotFound)
    assert not (tmp_path / "x").exists()
