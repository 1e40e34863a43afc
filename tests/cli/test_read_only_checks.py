"""``audit verify``, ``allocation verify`` and ``audit anchor`` by someone who may only read.

A monitor handed an archived trial file (mode 0444 in a read-only folder), or a statistician or
data manager on PostgreSQL whose roles grant SELECT and nothing more, checks the trail and the
sequence; the checks never needed to write, and must not fail trying to. Each runs the installed
command; the database is the same byte for byte (row for row on PostgreSQL) afterwards.

Root writes any file whatever its mode, so when the tests run as root the command under test
runs as ``nobody`` (through ``setpriv``): permissions then bite as they do for a monitor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.cli.conftest import SCRUBBED, query
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

DAY = dt.date(2026, 11, 2)
SECRET = hashlib.sha256(b"sarcoma-sched read-only test key").digest()
CONFIRMED = "NATARS-R (minimization): all 2 allocations confirmed\n"


def build_trial(url: str) -> None:
    """NATARS-R with two patients allocated by minimization under ``SECRET``."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.protocols import initialize
    from sarcoma_sched.services.screening import screen

    db = Database(url, check_schema=False)
    try:
        initialize(db, "setup")
        for site in ("PKUIH", "BJFH"):
            screened = screen(db, "nurse", "NATARS-R", site, ELIGIBLE_NATARS, screened_on=DAY)
            allocate_patient(
                db, "nurse", screened.screening_number, today=DAY, consent_date=DAY, secret=SECRET
            )
    finally:
        db.dispose()


def intact(db: str | Path) -> str:
    [(seq, head)] = query(db, "SELECT seq, hash FROM audit_head")
    return f"audit log intact: {seq} entries, head {head}\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("read-only") / "trial.db"
    build_trial(str(path))
    return path


def _reader(command: str) -> list[str]:
    """How to run ``command`` as a user who may not write a file root made read-only."""
    if os.geteuid() != 0:
        return [command]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("the tests run as root and setpriv is missing: nobody to read as")
    nobody = pwd.getpwnam("nobody")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    probe = subprocess.run([*prefix, command, "--help"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run {command}: {probe.stderr.decode(errors='replace')[:200]}")
    return [*prefix, command]


@pytest.fixture
def archive(trial_file) -> Iterator[Path]:
    """A copy of the trial, mode 0444, in a folder of mode 0555 that ``nobody`` can reach
    (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="sarcoma-read-only-"))
    try:
        copy = folder / "trial.db"
        shutil.copyfile(trial_file, copy)
        copy.chmod(0o444)
        folder.chmod(0o555)
        yield copy
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_monitor_who_may_only_read_the_file_verifies_the_trail_and_the_sequence(command, archive):
    reader = _reader(command)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["SARCOMA_SCHED_SECRET"] = SECRET.hex()
    before = sha256(archive)
    # Really read-only for the reader: a write is refused as before, in one line.
    refused = subprocess.run(
        [*reader, "--db", str(archive), "screen", "NATARS-R", "--site", "PKUIH",
         "--field", "age_years=56"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == f"error: database {archive}: not writable by this user\n"

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*reader, "--db", str(archive), *args],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, ""), f"{args}: {done.stderr}"
        return done

    assert check("audit", "verify").stdout == intact(archive)
    assert check("allocation", "verify", "NATARS-R").stdout == CONFIRMED
    anchor = json.loads(check("audit", "anchor").stdout)
    assert anchor["seq"] == query(archive, "SELECT seq FROM audit_head")[0][0]
    assert sha256(archive) == before
    assert sorted(p.name for p in archive.parent.iterdir()) == ["trial.db"]


def test_checking_a_file_the_user_may_write_changes_nothing_and_leaves_no_index_files(
    run, trial_file, tmp_path
):
    # The checks open such a file as usual but refuse every statement that would write (a
    # read-only open would leave the WAL index files behind: only a writer removes them).
    copy = tmp_path / "trial.db"
    shutil.copyfile(trial_file, copy)
    before = sha256(copy)
    assert run("--db", str(copy), "audit", "verify", check=True).stdout == intact(copy)
    assert sha256(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("trial")) == ["trial.db"]


@pytest.mark.postgres
def test_statistician_and_data_manager_logins_with_select_only_run_both_verifies(command, tmp_path):
    """Logins whose only rights are their group role's SELECT grants (``access setup``); one
    more set to read-only transactions (``default_transaction_read_only``), as on a standby."""
    from tests.databases import pg_base_url
    from tests.integration.access_fixtures import World, _teardown

    suffix = uuid.uuid4().hex[:10]
    world = World(
        base=pg_base_url(), schema=f"ro_{suffix}", prefix=f"ro{suffix}", cwd=tmp_path,
        suffix=suffix, command=command,
    )  # fmt: skip
    key = tmp_path / "trial.key"
    key.write_text(SECRET.hex() + "\n")
    key.chmod(stat.S_IRUSR | stat.S_IWUSR)
    try:
        world.admin(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(world.schema)))
        owner = world.url(world.superuser)
        build_trial(owner)
        world.ok(world.superuser, "access", "setup", "--prefix", world.prefix)
        logins = {}
        roles = {"stat": "statistician", "dm": "data_manager", "ro": "statistician"}
        for name, role in roles.items():
            login = f"ro_{name}_{suffix}"
            world.admin(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
            world.created_roles.append(login)
            world.admin("SELECT sarcoma_access_grant(%s, %s, NULL)", (login, role))
            logins[name] = login
        world.admin(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(logins["ro"])
            )
        )
        before = dump(owner)
        for login in logins.values():
            audit = world.cli(login, "audit", "verify")
            assert (audit.returncode, audit.stderr) == (0, ""), f"{login}: {audit.stderr}"
            assert audit.stdout == intact(owner)
            replay = world.cli(login, "allocation", "verify", "NATARS-R", "--secret-file", str(key))
            assert (replay.returncode, replay.stderr) == (0, ""), f"{login}: {replay.stderr}"
            assert replay.stdout == CONFIRMED
        assert dump(owner) == before, "a verify changed the database"
    finally:
        problems = _teardown(world)
        assert not problems, problems
