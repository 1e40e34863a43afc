"""Fuzzed input to every command: never a traceback, exit 0, 1 or 2, and a refused command
leaves the database byte-identical (and a pipe given as --out stays a pipe).

The commands are enumerated from the click tree, so a new command is fuzzed without a change
here; the strategies (arguments by click type and name, malformed protocol, screening,
holiday-table and key files) live in ``benchmarks.reliability.fuzz``, whose long run is
``python -m benchmarks.reliability.fuzz --examples 5000``. Each input that once crashed a
command is kept below as an explicit example.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from benchmarks.reliability.fuzz import (
    COMMANDS,
    FileArg,
    History,
    Invocation,
    OutArg,
    build_history,
    build_pg_history,
    invocations,
    problems,
    run_invocation,
)
from tests.databases import pg_base_url
from tests.dumps import dump

# Per command; ~36 commands, so the whole module stays near a minute on a CI machine.
EXAMPLES = 6
# On PostgreSQL each refusal is checked by dumping the server's database: fewer per command.
PG_EXAMPLES = 2
QUICK = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return build_history(tmp_path_factory.mktemp("fuzz-history") / "history.db")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-runs")


def test_every_command_of_the_click_tree_is_fuzzed():
    # The tree is walked, not listed: a command added to the CLI shows up here by itself.
    assert ("site", "close") in COMMANDS and ("db", "upgrade") in COMMANDS
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("command", [" ".join(c) for c in COMMANDS])
def test_no_input_crashes_a_command_or_changes_the_database_when_refused(command, history, work):
    @settings(QUICK, max_examples=EXAMPLES)
    @given(invocations(tuple(command.split())))
    def fuzz(invocation: Invocation) -> None:
        outcome = run_invocation(invocation, history, work)
        assert problems(outcome) == [], str(invocation)

    fuzz()


@pytest.fixture(scope="module")
def pg_history():
    history = build_pg_history(pg_base_url())
    yield history
    history.drop()


@pytest.mark.postgres
@pytest.mark.parametrize("command", [" ".join(c) for c in COMMANDS])
def test_on_postgresql_no_input_crashes_a_command_or_changes_the_database_when_refused(
    command, pg_history, work
):
    @settings(QUICK, max_examples=PG_EXAMPLES)
    @given(invocations(tuple(command.split())))
    def fuzz(invocation: Invocation) -> None:
        outcome = run_invocation(invocation, pg_history, work)
        assert problems(outcome) == [], str(invocation)

    fuzz()


@pytest.mark.postgres
def test_on_postgresql_a_refused_command_that_wrote_is_caught(pg_history, work, monkeypatch):
    # The dump comparison must see a write that a refusal left behind, and the next
    # invocation must get a database equal to the history again.
    from sarcoma_sched.errors import Conflict
    from sarcoma_sched.services import sites

    real = sites.close_site

    def close_then_refuse(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        raise Conflict("refused after writing")

    monkeypatch.setattr(sites, "close_site", close_then_refuse)
    close = Invocation(
        ("site", "close"),
        ("PKUIH", "--from", "2027-03-01", "--reason", "fuzz"),
    )
    outcome = run_invocation(close, pg_history, work)
    assert outcome.code == 1
    assert problems(outcome) == ["exit status 1 but the database changed"]
    monkeypatch.undo()
    listing = run_invocation(Invocation(("site", "list"), ()), pg_history, work)
    assert listing.code == 0 and problems(listing) == []
    assert dump(pg_history.fresh()) == pg_history.dump


def test_the_harness_fails_a_run_whose_exception_escapes_main(history, work, monkeypatch):
    # In process, an exception main() does not handle would be what a user sees as a
    # traceback; the runner must report it, not swallow it into an exit status.
    from sarcoma_sched.services import queries

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queries, "visits", broken)
    outcome = run_invocation(Invocation(("visits",), ()), history, work)
    assert outcome.code is None
    assert outcome.traceback is not None and "RuntimeError: a bug" in outcome.traceback
    assert problems(outcome)[0].startswith("uncaught exception")


def _found(command: str, *args: object, db: str = "history", user: str | None = None):
    return Invocation(tuple(command.split()), tuple(args), db, user, None)  # type: ignore[arg-type]


# Inputs the fuzzer found crashing a command (each was a traceback before its fix).
FOUND = [
    # --db naming a file that is not SQLite: sqlite3.DatabaseError escaped main().
    _found("site list", db="garbage"),
    _found("db upgrade", db="garbage"),
    # Bytes that are not UTF-8 on the command line (lone surrogates): UnicodeEncodeError when
    # SQLite was handed the text, or when it was echoed.
    _found("schedule", "\udcd7"),
    _found("withdraw", "PKUIH-NATARS-0001", "--reason", "-\udca5"),
    _found("site list", user="\udcbe\udcb8"),
    # A holiday table that is not UTF-8: UnicodeDecodeError from the loader.
    _found(
        "plan",
        "NATARS",
        "NEOADJUVANT",
        "--anchor",
        "2026-03-03",
        "--holiday-table",
        FileArg(".toml", b"\xd5\xf9\xb19\x07"),
    ),
    # --revision that alembic does not take: AssertionError / CommandError from alembic.
    _found("db upgrade", "--revision", ""),
    _found("db upgrade", "--revision", "+1"),
    _found("db upgrade", "--revision", "heads"),
    _found("db upgrade", "--revision", "0001"),  # older than the database: refused, not ignored
    # A date at the edge of Python's range: a report steps 4 weeks back (OverflowError), a
    # plan 60 months ahead. Dates outside 1900..2199 are now refused as usage errors.
    _found("report html", "--out", OutArg("new-dir"), "--today", "0001-01-03"),
    _found("plan", "NATARS", "NEOADJUVANT", "--anchor", "9999-12-01"),
    # A secret file inside a "directory" that is a file: FileExistsError from mkdir.
    _found("allocation init-secret", "--secret-file", OutArg("existing-file/x.key")),
    # --out naming a named pipe (as /dev/null is a device): the atomic rename replaced it with
    # a plain file, exit 0. Now written into; with no reader, refused instead of hanging.
    _found("export ical", "PKUIH-NATARS-0001", "--out", OutArg("existing-fifo")),
]


def _with_examples(test):  # type: ignore[no-untyped-def]
    for found in reversed(FOUND):
        test = example(found)(test)
    return test


def test_inputs_that_once_crashed_a_command_are_now_refused_cleanly(history, work):
    # Explicit examples only; given() cannot take pytest's fixtures, so they are bound here.
    @settings(QUICK, phases=[Phase.explicit])
    @_with_examples
    @given(st.sampled_from(sorted(COMMANDS)).flatmap(invocations))
    def regressions(invocation: Invocation) -> None:
        outcome = run_invocation(invocation, history, work)
        assert problems(outcome) == [], str(invocation)
        assert outcome.code in (1, 2), (outcome.code, outcome.stderr)
        assert outcome.stderr.startswith(("error: ", "Usage: ")), outcome.stderr

    regressions()


# --- the installed command ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed() -> str:
    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found, "sarcoma-sched is not installed in this environment (pip install -e .)"
    return found


@pytest.mark.parametrize(
    "args",
    [
        # Not UTF-8, as a shell passes it: bytes, not a str with surrogates.
        [b"schedule", b"PKUIH-\xd7"],
        [b"db", b"upgrade", b"--revision", b"+1"],
        [b"visits", b"--from", b"2027-02-30"],
        [b"record", b"PKUIH-NATARS-0001", b"ai.9", b"--status", b"missed"],
    ],
    ids=["undecodable", "bad revision", "impossible date", "unknown event"],
)
def test_the_installed_command_refuses_fuzzed_input_in_one_line(installed, history, tmp_path, args):
    db = tmp_path / "trial.db"
    shutil.copyfile(history.path, db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARCOMA_SCHED_")}
    env["XDG_DATA_HOME"] = env["XDG_CONFIG_HOME"] = str(tmp_path)
    done = subprocess.run(
        [installed.encode(), b"--db", str(db).encode(), *args],
        capture_output=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    err = done.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in done.stderr, err
    assert done.returncode in (1, 2), err
    assert [line for line in err.splitlines() if line.startswith(("error:", "Error:"))], err
    assert dump(db) == history.dump
