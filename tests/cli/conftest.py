import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def command() -> str:
    """The installed console script of the environment running the tests."""
    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found, "sarcoma-sched is not installed in this environment (pip install -e .)"
    return found


@pytest.fixture
def run(command, tmp_path):
    def _run(*args: str, check: bool | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SARCOMA_SCHED_DEBUG", "SARCOMA_SCHED_DB", "SARCOMA_SCHED_USER")
        }
        # The default database lives under XDG_DATA_HOME: keep it inside the test's directory.
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        result = subprocess.run(
            [command, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
        )
        if check is True:
            assert result.returncode == 0, result.stderr
        return result

    return _run


# Settings of the person running the tests must not leak into the command under test.
SCRUBBED = (
    "SARCOMA_SCHED_DEBUG",
    "SARCOMA_SCHED_DB",
    "SARCOMA_SCHED_USER",
    "SARCOMA_SCHED_SECRET",
    "SARCOMA_SCHED_SECRET_FILE",
)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch, tmp_path):
    # The default key file lives under XDG_CONFIG_HOME: keep it inside the test's directory.
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_arg(request, tmp_path):
    """A database argument for --db: an SQLite file, or a PostgreSQL schema of its own."""
    from tests.databases import pg_schema_url

    if request.param == "sqlite":
        yield str(tmp_path / "trial.db")
    else:
        with pg_schema_url() as url:
            yield url


def invoke(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """As the ``run`` fixture does, for module-scoped setup (which cannot use ``tmp_path``)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    done = subprocess.run(
        [command, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


def today() -> str:
    return dt.date.today().isoformat()


def query(db: str | Path, sql: str, **params: object) -> list[tuple]:
    """Rows from an SQLite file (through sqlite3) or a PostgreSQL URL (through SQLAlchemy)."""
    if "://" in str(db):
        from sqlalchemy import create_engine, text

        engine = create_engine(str(db))
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _is_url(db: str | Path) -> bool:
    text = str(db)
    return "://" in text and not text.startswith("sqlite")


def as_user(db: str | Path, name: str) -> list[str]:
    """``--user NAME`` for an SQLite database; nothing for a PostgreSQL URL, where the login
    acts (the server refuses a --user that is not the login)."""
    return [] if _is_url(db) else ["--user", name]


def actor(db: str | Path, name: str) -> str:
    """Who the audit log and the ``*_by`` columns name after ``as_user(db, name)``: ``name`` on
    SQLite, the URL's login on PostgreSQL."""
    if not _is_url(db):
        return name
    from sqlalchemy.engine import make_url

    login = make_url(str(db)).username
    assert login, f"no login in {db}"
    return login
