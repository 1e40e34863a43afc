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
    NESTED_JSON,
    NESTED_TOML,
    ROOT,
    FileArg,
    History,
    Invocation,
    OutArg,
    SpecialArg,
    build_history,
    build_pg_history,
    error_lines,
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
    # A NUL in stored text: SQLite kept it, PostgreSQL's driver raised DataError (a traceback).
    # Now refused before the flush on both (db.columns); see also REPRODUCTIONS below.
    _found("site add", "ZZ", "--name", "a\x00b", "--time-zone", "UTC", "--holiday-country", "CN"),
    _found("withdraw", "PKUIH-NATARS-0001", "--reason", "a\x00b"),
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


# --- issue 18: each hostile input, one command line, on both backends ----------------------------


def _protocol(name: str, old: str, new: str) -> FileArg:
    source = (ROOT / "protocols" / name).read_text(encoding="utf-8")
    assert source.count(old) >= 1, old
    return FileArg(".toml", source.replace(old, new, 1).encode())


_NATARS = (ROOT / "protocols" / "natars.toml").read_text(encoding="utf-8")
_ZONE_256 = "A" * 256
_ADD = ("ZZ1", "--name", "Ward 2", "--holiday-country", "CN")
_SCREEN = ("NATARS", "--site", "PKUIH", "--from-file")

REPRODUCTIONS = {
    # Time zones: a 256-character name raised OSError from zoneinfo; path-like names.
    "zone 256 chars": _found("site add", *_ADD, "--time-zone", _ZONE_256),
    "zone ../../etc/passwd": _found("site add", *_ADD, "--time-zone", "../../etc/passwd"),
    "zone below a zone file": _found("site add", *_ADD, "--time-zone", "Asia/Shanghai/x"),
    "protocol zone 256 chars": _found(
        "protocol validate",
        _protocol("natars.toml", 'time_zone = "Asia/Shanghai"', f'time_zone = "{_ZONE_256}"'),
    ),
    "plan, protocol zone 256 chars": _found(
        "plan",
        _protocol("natars.toml", 'time_zone = "Asia/Shanghai"', f'time_zone = "{_ZONE_256}"'),
        "NEOADJUVANT",
        "--anchor",
        "2027-03-02",
    ),
    "protocol site zone path-like": _found(
        "protocol validate",
        _protocol(
            "natars.toml", 'code = "PKUIH"', 'code = "PKUIH"\ntime_zone = "../../etc/passwd"'
        ),
    ),
    # Numbers: Unicode digits raised ValueError, huge ones OverflowError / int4 DataError.
    "--day tue=²": _found("site capacity", "PKUIH", "theatre", "--day", "tue=²"),
    "--day tue=٣": _found("site capacity", "PKUIH", "theatre", "--day", "tue=٣"),
    "--day tue=１２": _found("site capacity", "PKUIH", "theatre", "--day", "tue=１２"),
    "--day tue=5000 digits": _found(
        "site capacity", "PKUIH", "theatre", "--day", "tue=" + "9" * 5000
    ),
    "--week 99999999999": _found("site capacity", "PKUIH", "theatre", "--week", "99999999999"),
    "--week 5000 digits": _found("site capacity", "PKUIH", "theatre", "--week", "9" * 5000),
    "--week -1": _found("site capacity", "PKUIH", "theatre", "--week", "-1"),
    "--seed 2**63": _found("allocation simulate", "NATARS-R", "--seed", str(2**63)),
    # Nesting: RecursionError from the parsers.
    "from-file JSON 10,000 deep": _found("screen", *_SCREEN, FileArg(".json", NESTED_JSON[2])),
    "from-file TOML 10,000 deep": _found("screen", *_SCREEN, FileArg(".toml", NESTED_TOML[3])),
    "protocol TOML 10,000 deep": _found("protocol validate", FileArg(".toml", NESTED_TOML[3])),
    "protocol inline tables 10,000 deep": _found(
        "protocol validate", FileArg(".toml", NESTED_TOML[4])
    ),
    # Files that are not: a FIFO hung for ever, /dev/zero exhausted memory.
    "from-file FIFO": _found("screen", *_SCREEN, SpecialArg("fifo")),
    "from-file /dev/zero": _found("screen", *_SCREEN, SpecialArg("/dev/zero")),
    "protocol FIFO": _found("protocol validate", SpecialArg("fifo")),
    "holiday table /dev/zero": _found(
        "plan",
        "NATARS",
        "NEOADJUVANT",
        "--anchor",
        "2027-03-02",
        "--holiday-table",
        SpecialArg("/dev/zero"),
    ),
    # Encodings: a byte-order mark or UTF-16 said so in a TOML error at line 1.
    "protocol UTF-8 BOM": _found(
        "protocol validate", FileArg(".toml", b"\xef\xbb\xbf" + _NATARS.encode())
    ),
    "protocol UTF-16": _found("protocol validate", FileArg(".toml", _NATARS.encode("utf-16"))),
    "from-file UTF-16": _found(
        "screen", *_SCREEN, FileArg(".json", '{"age_years": "50"}'.encode("utf-16"))
    ),
    # Names longer than the columns: SQLite kept them, PostgreSQL refused mid-transaction.
    "--user 65 chars": _found(
        "site close", "PKUIH", "--from", "2027-06-01", "--reason", "r", user="u" * 65
    ),
    "site name 201 chars": _found(
        "site add", *_ADD[:1], "--name", "s" * 201, *_ADD[3:], "--time-zone", "UTC"
    ),
    "site code 17 chars": _found("site add", "Z" * 17, *_ADD[1:], "--time-zone", "UTC"),
    # NUL and control characters in what is stored (the fuzzer's find: a DataError on PG).
    "site name with NUL": _found(
        "site add", "ZZ1", "--name", "a\x00b", *_ADD[3:], "--time-zone", "UTC"
    ),
    "reason with NUL": _found("withdraw", "PKUIH-NATARS-0001", "--reason", "a\x00b"),
    "from-file value with NUL": _found(
        "screen", *_SCREEN, FileArg(".json", b'{"age_years": "50", "histology": "DD\\u0000LPS"}')
    ),
    "site code with control characters": _found(
        "site add", "Z\x1b[2J", *_ADD[1:], "--time-zone", "UTC"
    ),
    # Ranges and counts: minutes and gigabytes, or events placed on 1899-12-29.
    "simulate --patients 10**12": _found(
        "allocation simulate", "NATARS-R", "--patients", str(10**12)
    ),
    "simulate --trials 10**9": _found("allocation simulate", "NATARS-R", "--trials", str(10**9)),
    "workload 1900..2199": _found("report workload", "--from", "1900-01-01", "--to", "2199-12-31"),
    "site close 1900..2199": _found(
        "site close", "PKUIH", "--from", "1900-01-01", "--to", "2199-12-31", "--reason", "r"
    ),
    "plan --closure 1900..2199": _found(
        "plan",
        "NATARS",
        "NEOADJUVANT",
        "--anchor",
        "2027-03-02",
        "--closure",
        "1900-01-01..2199-12-31",
    ),
    "visits year 1 .. 9999": _found("visits", "--from", "0001-01-01", "--to", "9999-12-31"),
    "plan anchor year 9999": _found("plan", "NATARS", "NEOADJUVANT", "--anchor", "9999-12-31"),
    "protocol block of 2e9": _found(
        "protocol validate",
        _protocol(
            "natars-randomized.toml",
            'method = "minimization"',
            'block_sizes = [2000000000]\nmethod = "minimization"',
        ),
    ),
}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_each_hostile_input_of_issue_18_is_one_error_line(name, backend, request, work):
    history = request.getfixturevalue("pg_history" if backend == "postgresql" else "history")
    invocation = REPRODUCTIONS[name]
    # Well within the timeout: a FIFO read that blocks is a hang, reported, not a stuck test.
    outcome = run_invocation(invocation, history, work, timeout=20)
    assert problems(outcome) == [], str(invocation)  # no traceback, no hang, DB unchanged
    assert outcome.code in (1, 2), (outcome.code, outcome.stdout[-500:], outcome.stderr)
    assert len(error_lines(outcome.stderr)) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_the_harness_fails_a_run_that_hangs(history, work, monkeypatch):
    # A command that blocks (here: reading a FIFO nobody writes, as input files once did) is
    # stopped by the timeout and reported, instead of stalling the whole run.
    from sarcoma_sched.services import queries

    def block(*args: object, **kwargs: object) -> None:
        fifo = Path(os.getcwd()) / "blocking-fifo"
        os.mkfifo(fifo)
        with open(fifo, "rb") as pipe:  # blocks: no writer
            pipe.read()

    monkeypatch.setattr(queries, "visits", block)
    outcome = run_invocation(Invocation(("visits",), ()), history, work, timeout=1)
    assert outcome.hung and outcome.seconds < 10
    assert problems(outcome)[0].startswith("hung")
