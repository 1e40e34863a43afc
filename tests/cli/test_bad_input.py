"""Every mistake a coordinator can type is refused the same way: the right exit code (1 for a
domain error, 2 for a usage error), one ``error: ...`` line on stderr and no traceback, and the
database exactly as it was (``tests.dumps.dump`` before and after).

The state the mistakes are made against is built once per module in-process through the
services. On SQLite every case gets its own copy and the cases run side by side; on PostgreSQL
they share one schema and run one after another, each checking its own dump.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import SCRUBBED, query
from tests.cohort import ELIGIBLE_NATARS
from tests.databases import pg_schema_url
from tests.dumps import dump

P1 = "PKUIH-NATARS-0001"  # allocated P1_DAYS_AGO days ago; cycle 1 recorded done
P2 = "PKUIH-NATARS-0002"  # allocated today; everything ahead
FAILED = "PKUIH-NATARS-S0002"  # a screen failure (age 80)
P1_DAYS_AGO = 40
DAY = dt.timedelta(days=1)


# --- the state the mistakes are made against ----------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Dates the cases need, read back from the built database."""

    consent: dt.date  # P1's consent (and allocation) date
    ai1_done: dt.date  # the day P1's cycle 1 was recorded done


def init(db: str) -> None:
    """``sarcoma-sched init``, in-process: the schema at head and the bundled protocols."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.protocols import initialize

    database = Database(db, check_schema=False)
    try:
        initialize(database, "setup")
    finally:
        database.dispose()


def build(db: str) -> Facts:
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.events import record_event
    from sarcoma_sched.services.screening import screen

    today = dt.date.today()
    consent = today - P1_DAYS_AGO * DAY
    init(db)
    database = Database(db)
    try:
        for values in (ELIGIBLE_NATARS, {**ELIGIBLE_NATARS, "age_years": "80"}, ELIGIBLE_NATARS):
            screen(database, "setup", "NATARS", "PKUIH", values, screened_on=today)
        mdt = {"arm": "NEOADJUVANT", "basis": "mdt_decision", "reason": "MDT: borderline"}
        allocate_patient(
            database, "setup", "PKUIH-NATARS-S0001", today=today, allocation_date=consent,
            consent_date=consent, **mdt,
        )  # fmt: skip
        allocate_patient(
            database, "setup", "PKUIH-NATARS-S0003", today=today, consent_date=today, **mdt
        )
        [(first,)] = query(
            db,
            "SELECT e.first_day FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
            "WHERE p.study_id = :sid AND e.event_id = 'ai.1'",
            sid=P1,
        )
        done = first if isinstance(first, dt.date) else dt.date.fromisoformat(first)
        record_event(database, "setup", P1, "ai.1", "done", date=done, reason=None, today=today)
    finally:
        database.dispose()
    return Facts(consent, done)


# --- the mistakes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    stderr: str  # a regular expression stderr must match in full
    # Also run on PostgreSQL: refused only after reading the database (the backends differ in
    # how they read and lock; a refusal made on the command line alone is the same on both).
    on_postgresql: bool = True


def _exact(text: str) -> str:
    return re.escape(text) + r"\n"


def _cases(f: Facts) -> dict[str, Case]:
    today = dt.date.today()
    mdt = ("--arm", "NEOADJUVANT", "--basis", "mdt_decision", "--reason", "MDT")
    return {
        "unknown patient": Case(
            ("record", "PKUIH-NATARS-0099", "ai.1", "--status", "missed"),
            1,
            _exact("error: no patient with study id or screening number 'PKUIH-NATARS-0099'"),
            on_postgresql=False,  # the same lookup as "unknown event"
        ),
        "unknown event": Case(
            ("record", P1, "ai.9", "--status", "missed"),
            1,
            re.escape(f"error: patient {P1} has no event 'ai.9' (events: labs.1, ai.1, ")
            + r"anlotinib\.1, .*follow_up\.m60\)\n",
        ),
        "unknown site to close": Case(
            ("site", "close", "PKUXX", "--from", "+7d", "--reason", "ward move"),
            1,
            re.escape("error: no site 'PKUXX' (sites: BJFH, ") + r".*PKUIH.*\)\n",
        ),
        "impossible date": Case(
            ("record", P1, "ai.2", "--status", "done", "--date", "2027-02-30"),
            2,
            r"Usage: sarcoma-sched record .*\n.*\n\n"
            + _exact(
                "Error: Invalid value for '--date': '2027-02-30' is not a date "
                "(YYYY-MM-DD, today, +7d or -7d)"
            ),
            on_postgresql=False,
        ),
        "done before consent": Case(
            ("record", P1, "ai.2", "--status", "done", "--date", str(f.consent - DAY)),
            1,
            _exact(f"error: date {f.consent - DAY} is before {P1}'s consent ({f.consent})"),
        ),
        "done in the future": Case(
            ("record", P1, "ai.2", "--status", "done", "--date", "+1d"),
            1,
            _exact(
                f"error: date {today + DAY} is in the future; record an event once it has happened"
            ),
            on_postgresql=False,
        ),
        "recorded twice": Case(
            ("record", P1, "ai.1", "--status", "done", "--date", str(f.ai1_done)),
            1,
            _exact(
                f"error: {P1} ai.1 is already recorded as done on {f.ai1_done}; "
                "to change it give --correct and --reason"
            ),
        ),
        "allocated twice": Case(
            ("allocate", P1, "--date", "today", *mdt),
            1,
            _exact(f"error: patient {P1} is already allocated; an allocation is never redone"),
        ),
        "ineligible allocated": Case(
            ("allocate", FAILED, "--consent-date", "today", *mdt),
            1,
            _exact(
                f"error: patient {FAILED} is not eligible at the latest screening ({today}): "
                "INC-13 not passed"
            ),
        ),
        "done event rescheduled": Case(
            ("reschedule", P1, "ai.1", "--to", "+7d"),
            1,
            _exact(f"error: {P1} ai.1 is done; only planned events move"),
        ),
        # Cycle 2 of a patient allocated today is weeks away: nothing can have been missed yet,
        # just as nothing can have been done yet ("record an event once it has happened").
        "missed before its window opens": Case(
            ("record", P2, "ai.2", "--status", "missed"),
            1,
            r"error: [^\n]*ai\.2[^\n]*\n",
        ),
    }


_NAMED = _cases(Facts(dt.date.today(), dt.date.today()))
CASES = list(_NAMED)
PG_CASES = [name for name, case in _NAMED.items() if case.on_postgresql]


def sarcoma(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, as the ``run`` fixture runs it, for module-scoped fixtures."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    return subprocess.run(
        [command, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def check(result: subprocess.CompletedProcess[str], case: Case, before: str, after: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout) == (case.code, ""), result.stderr
    assert re.fullmatch(case.stderr, result.stderr), result.stderr
    if case.code == 1:
        assert len(result.stderr.splitlines()) == 1
    assert after == before, "the refused command changed the database"


@dataclass(frozen=True)
class Outcome:
    case: Case
    result: subprocess.CompletedProcess[str]
    before: str
    after: str


@pytest.fixture(scope="module")
def sqlite_outcomes(command, tmp_path_factory) -> dict[str, Outcome]:
    """Every case on its own copy of the SQLite state, run side by side."""
    home = tmp_path_factory.mktemp("bad-input")
    built = home / "built.db"
    cases = _cases(build(str(built)))

    def attempt(name: str) -> Outcome:
        db = home / f"{CASES.index(name)}.db"
        shutil.copyfile(built, db)
        before = dump(db)
        result = sarcoma(command, home, "--db", str(db), *cases[name].args)
        return Outcome(cases[name], result, before, dump(db))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(attempt, CASES), strict=True))


@pytest.fixture(scope="module")
def pg_state():
    with pg_schema_url() as url:
        yield url, build(url)


@pytest.mark.parametrize("name", CASES)
def test_a_mistake_on_sqlite_is_one_error_line_and_changes_nothing(sqlite_outcomes, name):
    outcome = sqlite_outcomes[name]
    check(outcome.result, outcome.case, outcome.before, outcome.after)


@pytest.mark.postgres
@pytest.mark.parametrize("name", PG_CASES)
def test_a_mistake_on_postgresql_is_one_error_line_and_changes_nothing(run, pg_state, name):
    url, facts = pg_state
    case = _cases(facts)[name]
    before = dump(url)
    result = run("--db", url, *case.args)
    check(result, case, before, dump(url))


# --- the database itself ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["under a regular file", "in a directory that cannot exist"])
def test_an_unwritable_database_path_is_one_error_line_not_a_traceback(run, tmp_path, kind):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a directory\n")
    # Tests may run as root, so a chmod-ed directory would still be writable; these are not.
    path = str(blocker / "trial.db") if kind == "under a regular file" else "/proc/nope/trial.db"
    result = run("--db", path, "init")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and str(Path(path).parent) in line
    assert blocker.read_text() == "not a directory\n"
    assert not Path(path).exists()


def _engine(db: str):
    from sarcoma_sched.db.engine import make_engine, resolve_url

    return make_engine(resolve_url(db))


def _refused_side_by_side(
    run: Callable[..., subprocess.CompletedProcess[str]], db: str, *commands: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    before = dump(db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: run("--db", db, *args), commands))
    assert dump(db) == before, "a refused command changed the database"
    return results


SITE_ADD = (
    "site", "add", "WCH", "--name", "West China Hospital", "--time-zone", "Asia/Shanghai",
    "--holiday-country", "CN",
)  # fmt: skip


def test_a_database_at_an_older_revision_is_refused_with_the_command_that_upgrades_it(
    run, db_arg, tmp_path
):
    from sarcoma_sched.db.migrate import downgrade, head_revision

    init(db_arg)
    engine = _engine(db_arg)
    try:
        # The installation row would be dropped: a downgrade of recorded data is forced.
        downgrade(engine, "0002", force=True, dump=tmp_path / "dropped.jsonl")
    finally:
        engine.dispose()
    message = re.compile(
        r"error: database \S+ is at revision 0002, older than this sarcoma-sched "
        rf"\(expects {head_revision()}\): run `sarcoma-sched db upgrade`\n"
    )
    [result] = _refused_side_by_side(run, db_arg, SITE_ADD)
    assert result.returncode == 1, result.stderr
    assert message.fullmatch(result.stderr), result.stderr


def test_a_database_stamped_ahead_is_refused_naming_a_newer_sarcoma_sched_as_the_fix(run, db_arg):
    """Even by the commands that migrate: they must never touch a schema they do not know."""
    from sqlalchemy import text

    from sarcoma_sched.db.migrate import head_revision

    init(db_arg)
    engine = _engine(db_arg)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        engine.dispose()
    message = re.compile(
        r"error: database \S+ is at revision 0099, newer than this sarcoma-sched "
        rf"\(expects {head_revision()}\): upgrade sarcoma-sched\n"
    )
    # init and db upgrade share one migration path: PostgreSQL runs one of them.
    commands = [("visits",), ("init",)]
    if "://" not in db_arg:
        commands.append(("db", "upgrade"))
    results = _refused_side_by_side(run, db_arg, *commands)
    wrong = [
        (" ".join(args), result.returncode, result.stderr.splitlines()[-1:])
        for args, result in zip(commands, results, strict=True)
        if result.returncode != 1 or not message.fullmatch(result.stderr)
    ]
    assert not wrong, wrong
