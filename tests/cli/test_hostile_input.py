"""Hostile and careless input through the installed command (issue 18, "Tracebacks and hangs
where one `error:` line belongs"): a huge or impossible time zone, digits that are not ASCII
or not few, deeply nested or endless files, a FIFO, a byte-order mark, text longer than its
column, ranges of centuries and counts of trillions, a protocol whose numbers would exhaust
memory. Each is refused with its exit code (1 refused, 2 usage), exactly one error line naming
what is wrong, no traceback, and the database exactly as it was, on SQLite and PostgreSQL.

The bounds are ``sarcoma_sched.limits``; values at a bound are accepted on both backends alike.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarcoma_sched.limits import (
    ACTOR_LENGTH,
    MAX_CAPACITY,
    MAX_CLOSURE_DAYS,
    MAX_INPUT_FILE_BYTES,
    MAX_NESTING,
    MAX_SIMULATED_DRAWS,
    MAX_SIMULATED_PATIENTS,
    MAX_SIMULATED_TRIALS,
    SITE_NAME_LENGTH,
)
from tests.cli.conftest import SCRUBBED, query
from tests.cli.test_bad_input import init
from tests.databases import pg_schema_url
from tests.dumps import dump

PROTOCOLS = Path(__file__).parents[2] / "protocols"
FIXTURES = Path(__file__).parents[1] / "protocols"
LONG_ZONE = "Asia/" + "A" * 251  # 256 characters: the file system's name limit, and more
HUGE = "9" * 5000  # over Python's 4,300-digit int() limit


def sarcoma(
    command: str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    environment["XDG_DATA_HOME"] = str(cwd / "xdg")
    environment["XDG_CONFIG_HOME"] = str(cwd / "config")
    environment.update(env or {})
    # A hang is what some of these inputs once caused: 30 s is far beyond any refusal.
    return subprocess.run(
        [command, *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=30
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int, pattern: str) -> None:
    """Exit ``code``, nothing on stdout, no traceback, and exactly one error line matching
    ``pattern`` (``error: …`` for a refusal; click's ``Error: …`` after its usage lines)."""
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout) == (code, ""), result.stderr
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.fullmatch(pattern, errors[0]), errors[0]
    if code == 1:
        assert result.stderr.splitlines() == errors


# --- the files the cases hand in ----------------------------------------------------------------


def _bad_protocol(old: str, new: str) -> str:
    text = (FIXTURES / "minimal.toml").read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def write_files(home: Path) -> None:
    """Every file a case names, in the directory the command runs in."""
    os.mkfifo(home / "values.fifo")
    os.mkfifo(home / "protocol.fifo")
    (home / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (home / "deep.toml").write_text("age_years = " + "[" * 50_000 + "]" * 50_000 + "\n")
    (home / "bom.toml").write_bytes(b"\xef\xbb\xbfage_years = 61\n")
    (home / "utf16.toml").write_bytes("age_years = 61\n".encode("utf-16"))
    (home / "huge.toml").write_bytes(b"#" * (MAX_INPUT_FILE_BYTES + 1))
    (home / "digits.toml").write_text(f"age_years = {HUGE}\n")
    protocols = {
        "zone": _bad_protocol('code = "AMS"\n', f'code = "AMS"\ntime_zone = "{LONG_ZONE}"\n'),
        "blocks": _bad_protocol(
            'method = "minimization"\nratio = { CONTROL = 1, EXPERIMENTAL = 1 }\n'
            'factors = [{ field = "histology", weight = 1.0 }, { field = "site", weight = 0.5 }]\n'
            "probability = 0.8\n",
            'method = "stratified_blocks"\nratio = { CONTROL = 1, EXPERIMENTAL = 1 }\n'
            "block_sizes = [2000000000]\n",
        ),
        "cycles": _bad_protocol("count = 3,", "count = 1000000000,"),
    }
    for name, text in protocols.items():
        (home / f"{name}.toml").write_text(text, encoding="utf-8")
    minimal = (FIXTURES / "minimal.toml").read_bytes()
    (home / "bom-protocol.toml").write_bytes(b"\xef\xbb\xbf" + minimal)
    (home / "utf16-protocol.toml").write_bytes(minimal.decode("utf-8").encode("utf-16"))
    (home / "deep-protocol.toml").write_bytes(
        minimal + b"\n[extra]\nx = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    )
    # `init` reads the protocol directory: the bundled files plus one bad one.
    for bad in ("blocks", "bom-protocol", "zone"):
        directory = home / f"protocols-{bad}"
        shutil.copytree(PROTOCOLS, directory)
        shutil.copyfile(home / f"{bad}.toml", directory / f"{bad}.toml")


# --- cases against a database -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    line: str  # a regular expression the one error line must match in full
    env: dict[str, str] = field(default_factory=dict)


def _x(text: str) -> str:
    return re.escape(text)


SITE_ADD = ("site", "add", "WCH", "--holiday-country", "CN")
SCREEN = ("screen", "NATARS", "--site", "PKUIH")
CLOSE = ("site", "close", "PKUIH", "--reason", "ward move")

# fmt: off
CASES: dict[str, Case] = {
    "a 256-character time zone": Case(
        (*SITE_ADD, "--name", "West China", "--time-zone", LONG_ZONE), 1,
        _x("error: --time-zone: 'Asia/AAAAAAAAAAAAAAAAAA... (256 characters) is not an IANA "
           "time zone"),
    ),
    "a time zone that is a directory": Case(
        (*SITE_ADD, "--name", "West China", "--time-zone", "Asia"), 1,
        _x("error: --time-zone: 'Asia' is not an IANA time zone"),
    ),
    "a superscript digit": Case(
        ("site", "capacity", "PKUIH", "theatre", "--day", "tue=²"), 2,
        _x("Error: Invalid value for --day: 'tue=²': '²' is not a whole number (digits 0-9)"),
    ),
    "fullwidth digits": Case(
        ("site", "capacity", "PKUIH", "theatre", "--day", "tue=１２"), 2,
        _x("Error: Invalid value for --day: 'tue=１２': '１２' is not a whole number (digits 0-9)"),
    ),
    "a capacity of 5,000 digits": Case(
        ("site", "capacity", "PKUIH", "theatre", "--day", f"tue={HUGE}"), 2,
        r"Error: Invalid value for --day: 'tue=9+\.\.\. \(5004 characters\): '9+\.\.\. "
        rf"\(5000 characters\) is outside 0\.\.{MAX_CAPACITY}",
    ),
    "a weekly capacity beyond any integer column": Case(
        ("site", "capacity", "FJMUUH", "rt_course", "--week", "99999999999"), 2,
        _x(f"Error: Invalid value for '--week': '99999999999' is outside 0..{MAX_CAPACITY}"),
    ),
    "a screening value of 5,000 digits": Case(
        (*SCREEN, "--field", f"age_years={HUGE}"), 1,
        r"error: --field: age_years: beyond any whole number the database stores "
        r"\(got '9+\.\.\.\)",
    ),
    "a field file that is a FIFO": Case(
        (*SCREEN, "--from-file", "values.fifo"), 1,
        _x("error: values.fifo: cannot read file: it is a named pipe (FIFO), not a regular file"),
    ),
    "a field file that is /dev/zero": Case(
        (*SCREEN, "--from-file", "/dev/zero"), 1,
        _x("error: /dev/zero: cannot read file: it is a device, not a regular file"),
    ),
    "a field file over 1 MiB": Case(
        (*SCREEN, "--from-file", "huge.toml"), 1,
        _x("error: huge.toml: cannot read file: it is 1,048,577 bytes; an input file may be at "
           "most 1 MiB"),
    ),
    "JSON nested 100,000 deep": Case(
        (*SCREEN, "--from-file", "deep.json"), 1,
        _x(f"error: deep.json: tables and arrays are nested more than {MAX_NESTING} deep"),
    ),
    "TOML nested 50,000 deep": Case(
        (*SCREEN, "--from-file", "deep.toml"), 1,
        _x(f"error: deep.toml: tables and arrays are nested more than {MAX_NESTING} deep"),
    ),
    "a field file with a byte-order mark": Case(
        (*SCREEN, "--from-file", "bom.toml"), 1,
        _x("error: bom.toml: the file starts with a UTF-8 byte-order mark (BOM): save it as "
           "UTF-8 without a BOM"),
    ),
    "a field file in UTF-16": Case(
        (*SCREEN, "--from-file", "utf16.toml"), 1,
        _x("error: utf16.toml: the file is UTF-16 text: save it as UTF-8"),
    ),
    "a field file with a number of 5,000 digits": Case(
        (*SCREEN, "--from-file", "digits.toml"), 1,
        _x("error: digits.toml: a number has more than 4300 digits"),
    ),
    "a --user longer than the audit log stores": Case(
        ("--user", "u" * (ACTOR_LENGTH + 1), *CLOSE, "--from", "+7d"), 1,
        _x(f"error: --user: 'uuuuuuuuuuuuuuuuuuuuuuu... ({ACTOR_LENGTH + 1} characters) is "
           f"longer than the {ACTOR_LENGTH} characters the audit log stores for who acted"),
    ),
    "a site name longer than its column": Case(
        (*SITE_ADD, "--name", "n" * (SITE_NAME_LENGTH + 1), "--time-zone", "Asia/Shanghai"), 1,
        _x(f"error: --name: {SITE_NAME_LENGTH + 1} characters; a site name has at most "
           f"{SITE_NAME_LENGTH}"),
    ),
    "a closure of three centuries": Case(
        (*CLOSE, "--from", "1900-01-01", "--to", "2199-12-31"), 1,
        _x(f"error: closure 1900-01-01..2199-12-31 lasts 109,573 days; a closure lasts at most "
           f"{MAX_CLOSURE_DAYS} days"),
    ),
    "a workload report of three centuries": Case(
        ("report", "workload", "--from", "1900-01-01", "--to", "2199-12-31"), 1,
        _x("error: --from 1900-01-01 --to 2199-12-31 spans 109,573 days; a workload report "
           "covers at most 1,096 (three years)"),
    ),
    "a protocol directory with a block of two billion": Case(
        ("init",), 1,
        r"error: \S+/blocks\.toml: allocation\.block_sizes\[0\]: Input should be less than or "
        r"equal to 100; got 2000000000",
        env={"SARCOMA_SCHED_PROTOCOLS": "protocols-blocks"},
    ),
    "a protocol directory with a byte-order mark": Case(
        ("init",), 1,
        r"error: \S+/bom-protocol\.toml: the file starts with a UTF-8 byte-order mark \(BOM\): "
        r"save it as UTF-8 without a BOM",
        env={"SARCOMA_SCHED_PROTOCOLS": "protocols-bom-protocol"},
    ),
    "a protocol directory with a 256-character site zone": Case(
        ("init",), 1,
        r"error: \S+/zone\.toml: sites\[AMS\]\.time_zone: unknown IANA time zone "
        r"'Asia/A+\.\.\. \(256 characters\)",
        env={"SARCOMA_SCHED_PROTOCOLS": "protocols-zone"},
    ),
}
# fmt: on
NAMES = list(CASES)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hostile")
    write_files(directory)
    return directory


@pytest.fixture(scope="module")
def sqlite_outcomes(command, home):
    """Every case on its own copy of an initialised SQLite database, side by side."""
    built = home / "built.db"
    init(str(built))

    def attempt(name: str):
        db = home / f"case-{NAMES.index(name)}.db"
        shutil.copyfile(built, db)
        before = dump(db)
        case = CASES[name]
        try:
            result = sarcoma(command, home, "--db", str(db), *case.args, env=case.env)
        except subprocess.TimeoutExpired as exc:  # a hang is this case's failure, not all
            result = subprocess.CompletedProcess(exc.cmd, -9, "", f"hung: {exc}")
        return result, before, dump(db)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(NAMES, pool.map(attempt, NAMES), strict=True))


@pytest.fixture(scope="module")
def pg_url():
    with pg_schema_url() as url:
        init(url)
        yield url


@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_on_sqlite_is_one_error_line_and_changes_nothing(sqlite_outcomes, name):
    result, before, after = sqlite_outcomes[name]
    one_error_line(result, CASES[name].code, CASES[name].line)
    assert after == before, "the refused command changed the database"


@pytest.mark.postgres
@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_on_postgresql_is_one_error_line_and_changes_nothing(
    command, home, pg_url, name
):
    # The login acts on PostgreSQL, and a --user naming anyone else is refused for that; a
    # long one is refused for its length first, with the same line as on SQLite.
    case = CASES[name]
    before = dump(pg_url)
    result = sarcoma(command, home, "--db", pg_url, *case.args, env=case.env)
    one_error_line(result, case.code, case.line)
    assert dump(pg_url) == before, "the refused command changed the database"


# --- commands that need no database -------------------------------------------------------------

PLAN = ("plan", "NATARS", "NEOADJUVANT", "--anchor", "2026-02-10")
SIMULATE = ("allocation", "simulate", "NATARS-R")

# fmt: off
NO_DATABASE: dict[str, Case] = {
    "plan from a protocol with a 256-character site zone": Case(
        ("plan", str(FIXTURES / "bad_time_zone_too_long.toml"), "CONTROL", "--anchor",
         "2026-02-10"), 1,
        r"error: \S+bad_time_zone_too_long\.toml: sites\[AMS\]\.time_zone: unknown IANA time "
        r"zone 'Asia/A+\.\.\. \(256 characters\)",
    ),
    "plan with a closure of three centuries": Case(
        (*PLAN, "--closure", "1900-01-01..2199-12-31"), 2,
        _x(f"Error: Invalid value for --closure: '1900-01-01..2199-12-31' lasts 109,573 days; "
           f"a closure lasts at most {MAX_CLOSURE_DAYS}"),
    ),
    "simulate a trillion patients": Case(
        (*SIMULATE, "--patients", str(10**12)), 2,
        _x(f"Error: Invalid value for '--patients': '1000000000000' is outside "
           f"1..{MAX_SIMULATED_PATIENTS}"),
    ),
    "simulate a quadrillion trials": Case(
        (*SIMULATE, "--trials", str(10**15)), 2,
        _x(f"Error: Invalid value for '--trials': '1000000000000000' is outside "
           f"1..{MAX_SIMULATED_TRIALS}"),
    ),
    "simulate hours of draws": Case(
        (*SIMULATE, "--patients", str(MAX_SIMULATED_PATIENTS), "--trials",
         str(MAX_SIMULATED_TRIALS)), 2,
        _x(f"Error: --patients {MAX_SIMULATED_PATIENTS} x --trials {MAX_SIMULATED_TRIALS} is "
           f"{MAX_SIMULATED_PATIENTS * MAX_SIMULATED_TRIALS:,} draws; at most "
           f"{MAX_SIMULATED_DRAWS:,} are simulated in one run"),
    ),
    "simulate a protocol with a block of two billion": Case(
        ("allocation", "simulate", str(FIXTURES / "bad_block_size_too_large.toml")), 1,
        r"error: \S+bad_block_size_too_large\.toml: allocation\.block_sizes\[0\]: Input should "
        r"be less than or equal to 100; got 2000000000",
    ),
    "validate a protocol that is a FIFO": Case(
        ("protocol", "validate", "protocol.fifo"), 1,
        _x("error: protocol.fifo: cannot read file: it is a named pipe (FIFO), not a regular "
           "file"),
    ),
    "validate /dev/zero": Case(
        ("protocol", "validate", "/dev/zero"), 1,
        _x("error: /dev/zero: cannot read file: it is a device, not a regular file"),
    ),
    "validate a protocol in UTF-16": Case(
        ("protocol", "validate", "utf16-protocol.toml"), 1,
        _x("error: utf16-protocol.toml: the file is UTF-16 text: save it as UTF-8"),
    ),
    "validate a protocol nested 100,000 deep": Case(
        ("protocol", "validate", "deep-protocol.toml"), 1,
        _x(f"error: deep-protocol.toml: tables and arrays are nested more than {MAX_NESTING} "
           "deep"),
    ),
    "validate a protocol of a billion cycles": Case(
        ("protocol", "validate", "cycles.toml"), 1,
        _x("error: cycles.toml: arms[EXPERIMENTAL].events[cycle].repeat.count: Input should be "
           "less than or equal to 200; got 1000000000"),
    ),
}
# fmt: on


@pytest.mark.parametrize("name", list(NO_DATABASE))
def test_hostile_input_to_a_command_without_database_is_one_error_line(command, home, name):
    case = NO_DATABASE[name]
    one_error_line(sarcoma(command, home, *case.args), case.code, case.line)


# --- at the bounds, both backends store the same ------------------------------------------------


def test_values_at_the_bounds_are_stored_alike_on_both_backends(run, db_arg, tmp_path):
    """What is refused one past a bound is stored at it: the same on SQLite as on PostgreSQL,
    whose columns are the narrower."""
    db = ["--db", db_arg]
    init(db_arg)
    name = "n" * SITE_NAME_LENGTH
    added = run(*db, "site", "add", "WCH", "--name", name, "--time-zone",
                "America/Argentina/ComodRivadavia", "--holiday-country", "CN")  # fmt: skip
    assert added.returncode == 0, added.stderr
    run(*db, "site", "capacity", "PKUIH", "theatre", "--day", f"tue={MAX_CAPACITY}", check=True)
    run(*db, "site", "capacity", "FJMUUH", "rt_course", "--week", f"+{MAX_CAPACITY}", check=True)
    assert query(db_arg, "SELECT name, time_zone FROM sites WHERE code = 'WCH'") == [
        (name, "America/Argentina/ComodRivadavia")
    ]
    assert sorted(query(db_arg, "SELECT resource, capacity FROM site_resources")) == [
        ("rt_course", MAX_CAPACITY),
        ("theatre", MAX_CAPACITY),
    ]
    # Nested as deep as allowed, a file reaches the screening, which names the field.
    (tmp_path / "shallow.json").write_text(
        '{"age_years": ' + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1) + "}"
    )
    shallow = run(*db, "screen", "NATARS", "--site", "PKUIH", "--from-file", "shallow.json")
    one_error_line(shallow, 1, r"error: shallow\.json: age_years: not a whole number .*")


# --- any whole number typed for a capacity ------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.integers(min_value=0, max_value=MAX_CAPACITY).map(lambda n: f"+{n}"),
    st.text(alphabet="0123456789²³١٢３_+- ", min_size=1, max_size=12),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),
)


@pytest.fixture(scope="module")
def capacity_db(home):
    db = home / "capacity.db"
    init(str(db))
    return db


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=NUMBERS)
def test_any_number_typed_for_a_capacity_is_stored_within_bounds_or_one_usage_error(
    command, home, capacity_db, text
):
    before = dump(capacity_db)
    result = sarcoma(
        command, home, "--db", str(capacity_db), "site", "capacity", "FJMUUH", "rt_course",
        f"--week={text}",
    )  # fmt: skip
    stripped = text.strip()
    valid = re.fullmatch(r"\+?[0-9]+|-[0-9]+", stripped) is not None and len(stripped) < 20
    if valid and 0 <= int(stripped) <= MAX_CAPACITY:
        assert result.returncode == 0, result.stderr
        [(stored,)] = query(capacity_db, "SELECT capacity FROM site_resources")
        assert stored == int(stripped)
        return
    one_error_line(result, 2, r"Error: Invalid value for '--week': .*")
    assert dump(capacity_db) == before
