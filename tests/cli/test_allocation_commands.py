"""Randomized allocation end to end: the trial secret, minimization, verify, list/reveal, simulate.

Every test runs the installed ``sarcoma-sched``. One module-scoped NATARS-R database (three
screened patients, two allocated by minimization with a key file) is built once; tests that write
work on their own copy of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import stat
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import actor, as_user, invoke, query, today
from tests.cohort import ELIGIBLE_NATARS

ARMS = {"SURGERY_ONLY", "NEOADJUVANT"}


def fields(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("--field", f"{name}={value}")]


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return lines[0].split(), [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


@dataclass(frozen=True)
class Trial:
    path: Path
    key: Path
    out: dict[str, str]

    def copy(self, tmp_path: Path) -> str:
        target = tmp_path / "trial.db"
        shutil.copyfile(self.path, target)
        return str(target)


@pytest.fixture(scope="module")
def trial(command, tmp_path_factory) -> Trial:
    """NATARS-R: PKUIH S0001 and BJFH S0001 allocated (positions 1, 2), PKUIH S0002 screened."""
    cwd = tmp_path_factory.mktemp("natars-r")
    db = str(cwd / "trial.db")
    key = cwd / "natars-r.key"
    out = {}
    invoke(command, cwd, "--db", db, "init")
    for site in ("PKUIH", "BJFH", "PKUIH"):
        invoke(command, cwd, "--db", db, "screen", "NATARS-R", "--site", site,
                *fields(ELIGIBLE_NATARS))  # fmt: skip
    out["init-secret"] = invoke(
        command, cwd, "allocation", "init-secret", "--secret-file", str(key)
    ).stdout
    out["first"] = invoke(
        command, cwd, "--db", db, "--user", "sam", "allocate", "PKUIH-NATARS-R-S0001",
        "--consent-date", "today", "--secret-file", str(key),
    ).stdout  # fmt: skip
    out["second"] = invoke(
        command, cwd, "--db", db, "allocate", "BJFH-NATARS-R-S0001",
        "--consent-date", "today", "--secret-file", str(key),
    ).stdout  # fmt: skip
    return Trial(Path(db), key, out)


# --- allocate (minimization) --------------------------------------------------------------------


def test_a_minimization_allocation_prints_the_arm_position_1_and_the_first_events(trial):
    first = trial.out["first"].splitlines()
    [(arm, method, position, by)] = query(
        trial.path,
        "SELECT a.arm, a.method, a.position, a.allocated_by FROM allocations a "
        "JOIN patients p ON p.id = a.patient_id WHERE p.study_id = 'PKUIH-NATARS-R-0001'",
    )
    assert (method, position, by) == ("minimization", 1, "sam")
    assert arm in ARMS
    assert first[0] == f"PKUIH-NATARS-R-0001: {arm} (position 1, minimization, allocated {today()})"
    assert first[1].split() == [
        "event", "label", "status", "target", "window", "date", "weekday", "days", "flags",
    ]  # fmt: skip
    stored = query(
        trial.path,
        "SELECT e.event_id, e.target FROM scheduled_events e JOIN patients p "
        "ON p.id = e.patient_id WHERE p.study_id = 'PKUIH-NATARS-R-0001' ORDER BY e.id LIMIT 2",
    )
    printed = [re.split(r"\s{2,}", line.strip()) for line in first[2:4]]
    assert [(row[0], row[3]) for row in printed] == stored
    assert trial.out["second"].splitlines()[0].startswith("BJFH-NATARS-R-0001: ")
    assert "(position 2, minimization" in trial.out["second"].splitlines()[0]


def test_a_randomized_allocation_needs_the_secret_and_takes_it_from_the_environment(
    run, trial, tmp_path, monkeypatch
):
    db = trial.copy(tmp_path)
    before = query(db, "SELECT count(*) FROM audit_log")
    refused = run("--db", db, "allocate", "PKUIH-NATARS-R-S0002", "--consent-date", "today")
    assert refused.returncode == 1
    assert len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("error: no trial secret at ")
    assert "create one with `sarcoma-sched allocation init-secret`" in refused.stderr
    assert query(db, "SELECT count(*) FROM audit_log") == before
    assert query(db, "SELECT count(*) FROM enrollments") == [(2,)]

    monkeypatch.setenv("SARCOMA_SCHED_SECRET", trial.key.read_text().strip())
    third = run(
        "--db", db, "allocate", "PKUIH-NATARS-R-S0002", "--consent-date", "today", check=True
    )
    assert re.match(
        rf"PKUIH-NATARS-R-0002: (SURGERY_ONLY|NEOADJUVANT) \(position 3, minimization, "
        rf"allocated {today()}\)\n",
        third.stdout,
    )
    again = run("--db", db, "allocate", "PKUIH-NATARS-R-0002")
    assert again.returncode == 1
    assert again.stderr == (
        "error: patient PKUIH-NATARS-R-0002 is already allocated; an allocation is never redone\n"
    )
    # The environment's secret is the key file's: all three replay.
    verified = run("--db", db, "allocation", "verify", "NATARS-R", check=True)
    assert verified.stdout == "NATARS-R (minimization): all 3 allocations confirmed\n"


def test_minimization_allocations_replay_from_the_secret_on_either_database(
    run, db_arg, monkeypatch
):
    # Any key that is not one byte repeated (such a key is refused by design).
    monkeypatch.setenv(
        "SARCOMA_SCHED_SECRET", hashlib.sha256(b"sarcoma-sched cli test key").hexdigest()
    )
    run("--db", db_arg, "init", check=True)
    run("--db", db_arg, "screen", "NATARS-R", "--site", "SHCH", *fields(ELIGIBLE_NATARS),
        check=True)  # fmt: skip
    allocated = run(
        "--db", db_arg, *as_user(db_arg, "sam"), "allocate", "SHCH-NATARS-R-S0001",
        "--consent-date", "today", check=True,
    )  # fmt: skip
    [(arm, position, stratum)] = query(db_arg, "SELECT arm, position, stratum FROM allocations")
    assert allocated.stdout.splitlines()[0] == (
        f"SHCH-NATARS-R-0001: {arm} (position 1, minimization, allocated {today()})"
    )
    assert (position, stratum) == (1, "histology=DDLPS|site=SHCH")
    verified = run("--db", db_arg, "allocation", "verify", "NATARS-R", check=True)
    assert verified.stdout == "NATARS-R (minimization): all 1 allocations confirmed\n"
    assert query(db_arg, "SELECT DISTINCT actor FROM audit_log WHERE action = 'allocate'") == [
        (actor(db_arg, "sam"),)
    ]


# --- the secret ---------------------------------------------------------------------------------


def test_init_secret_creates_an_owner_only_key_file_and_never_overwrites_it(run, tmp_path):
    key = tmp_path / "config" / "sarcoma-sched" / "trial.key"
    created = run("allocation", "init-secret", check=True)
    assert created.stdout == (
        f"trial secret written to {key} (mode 600); back it up somewhere safe\n"
    )
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    content = key.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", content)
    again = run("allocation", "init-secret")
    assert again.returncode == 1
    assert again.stderr == f"error: {key} already exists; a trial secret is never overwritten\n"
    assert key.read_text() == content


def test_a_key_file_readable_by_the_group_is_refused_with_the_chmod_fix(run, trial, tmp_path):
    shutil.copyfile(trial.key, tmp_path / "shared.key")
    (tmp_path / "shared.key").chmod(0o640)
    result = run(
        "--db", str(trial.path), "allocation", "verify", "NATARS-R", "--secret-file", "shared.key"
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: shared.key is readable or writable by group or others (mode 0o640); "
        "refusing to use it: run `chmod 600 shared.key`\n"
    )


# --- verify, list, reveal -----------------------------------------------------------------------


def test_allocation_verify_names_the_position_of_an_arm_changed_behind_the_engine(
    run, trial, tmp_path
):
    db = trial.copy(tmp_path)
    key = str(trial.key)
    ok = run("--db", db, "allocation", "verify", "NATARS-R", "--secret-file", key, check=True)
    assert ok.stdout == "NATARS-R (minimization): all 2 allocations confirmed\n"
    [(arm,)] = query(db, "SELECT arm FROM allocations WHERE position = 1")
    other = (ARMS - {arm}).pop()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE allocations SET arm = ? WHERE position = 1", (other,))
    tampered = run("--db", db, "allocation", "verify", "NATARS-R", "--secret-file", key)
    assert tampered.returncode == 1
    assert tampered.stderr.splitlines()[0] == (
        f"error: allocation verify: position 1: recorded {other}, the sequence gives {arm}"
    )
    assert "Traceback" not in tampered.stderr


def test_allocation_list_needs_no_secret_but_reveal_does_and_is_audited(run, trial, tmp_path):
    db = trial.copy(tmp_path)
    arms = query(db, "SELECT arm FROM allocations ORDER BY position")
    listed = run("--db", db, "allocation", "list", "NATARS-R", check=True)
    header, rows = table(listed.stdout)
    assert header == ["position", "study_id", "site", "date", "stratum", "arm", "basis", "by"]
    assert [row[:3] for row in rows] == [
        ["1", "PKUIH-NATARS-R-0001", "PKUIH"],
        ["2", "BJFH-NATARS-R-0001", "BJFH"],
    ]
    assert [(row[5],) for row in rows] == arms

    audit_before = query(db, "SELECT count(*) FROM audit_log")
    refused = run("--db", db, "allocation", "list", "NATARS-R", "--reveal")
    assert refused.returncode == 1
    assert "`sarcoma-sched allocation init-secret`" in refused.stderr
    assert query(db, "SELECT count(*) FROM audit_log") == audit_before

    revealed = run(
        "--db", db, "--user", "stat", "allocation", "list", "NATARS-R", "--reveal",
        "--secret-file", str(trial.key), "--format", "json", check=True,
    )  # fmt: skip
    reveal = json.loads(revealed.stdout)
    assert [r["position"] for r in reveal] == [1, 2]
    assert all(r["replayed"] == r["arm"] for r in reveal)
    assert [(r["arm"],) for r in reveal] == arms
    assert query(
        db, "SELECT actor, entity, entity_id FROM audit_log WHERE entity = 'allocation_reveal'"
    ) == [("stat", "allocation_reveal", "NATARS-R")]

    verified = run("--db", db, "audit", "verify", check=True)
    assert re.fullmatch(r"audit log intact: \d+ entries, head [0-9a-f]{64}\n", verified.stdout)


# --- simulate -----------------------------------------------------------------------------------


def test_simulate_json_compares_minimization_with_simple_randomization_and_is_seeded(run):
    args = ("allocation", "simulate", "NATARS-R", "--patients", "40", "--trials", "50")
    first = run(*args, "--seed", "3", "--format", "json", check=True).stdout
    same = run(*args, "--seed", "3", "--format", "json", check=True).stdout
    other = run(*args, "--seed", "4", "--format", "json", check=True).stdout
    report = json.loads(first)
    assert (report["n_patients"], report["n_trials"], report["seed"]) == (40, 50, 3)
    names = [m["name"] for m in report["methods"]]
    assert any(name.startswith("protocol: minimization") for name in names)
    assert "simple randomization" in names
    assert same == first
    assert other != first


def test_simulate_exact_runs_the_allocator_and_gives_the_same_report(run):
    args = ("allocation", "simulate", "NATARS-R", "--patients", "25", "--trials", "8")
    fast = run(*args, "--seed", "5", "--format", "json", check=True).stdout
    exact = run(*args, "--seed", "5", "--format", "json", "--exact", check=True).stdout
    assert json.loads(exact)["n_trials"] == 8
    assert exact == fast


def test_simulate_text_prints_the_comparison_table(run):
    out = run(
        "allocation", "simulate", "NATARS-R", "--patients", "40", "--trials", "50",
        "--seed", "3", check=True,
    ).stdout  # fmt: skip
    header = next(line for line in out.splitlines() if line.startswith("method "))
    assert "predictability" in header.split()
    assert re.search(r"^protocol: minimization", out, re.M)
    assert re.search(r"^simple randomization\s", out, re.M)
