"""The database commands, run as a coordinator or data manager would run them."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.databases import pg_schema_url

README = Path(__file__).parents[2] / "README.md"


def test_db_upgrade_creates_the_schema_and_db_current_reports_it(run, db_arg):
    refused = run("--db", db_arg, "audit", "verify")
    assert refused.returncode == 1
    assert re.search(
        r"(no sarcoma-sched schema|does not exist): run `sarcoma-sched init`", refused.stderr
    )
    upgraded = run("--db", db_arg, "db", "upgrade", check=True)
    assert re.search(r": empty -> \w+$", upgraded.stdout.strip())
    current = run("--db", db_arg, "db", "current", check=True)
    assert "up to date" in current.stdout
    again = run("--db", db_arg, "db", "upgrade", check=True)
    assert "already at" in again.stdout


def test_init_loads_every_bundled_protocol_once(run, db_arg):
    first = run("--db", db_arg, "init", check=True)
    assert first.stdout.count("  loaded") == 3
    second = run("--db", db_arg, "init", check=True)
    assert second.stdout.count("already loaded") == 3
    verified = run("--db", db_arg, "audit", "verify", check=True)
    assert re.fullmatch(r"audit log intact: \d+ entries, head [0-9a-f]{64}\n", verified.stdout)


def test_audit_verify_exits_1_naming_the_edited_entry(run, tmp_path):
    path = tmp_path / "trial.db"
    run("--db", str(path), "init", check=True)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    result = run("--db", str(path), "audit", "verify")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "error: audit verify: audit entry 2: content does not match its hash (edited)"
    )
    assert "Traceback" not in result.stderr


def test_an_old_schema_is_refused_with_the_fix_and_db_upgrade_fixes_it(run, tmp_path):
    path = tmp_path / "trial.db"
    run("--db", str(path), "db", "upgrade", "--revision", "0001", check=True)
    refused = run("--db", str(path), "audit", "verify")
    assert refused.returncode == 1
    assert "run `sarcoma-sched db upgrade`" in refused.stderr
    run("--db", str(path), "db", "upgrade", check=True)
    assert run("--db", str(path), "audit", "verify").returncode == 0


def test_the_database_comes_from_the_environment_when_no_db_option_is_given(command, tmp_path):
    import os

    path = tmp_path / "env.db"
    env = {**os.environ, "SARCOMA_SCHED_DB": str(path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([command, "init"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert path.exists()
    assert not (tmp_path / "xdg").exists()


def _readme_queries() -> dict[str, str]:
    text = README.read_text()
    section = text[text.index("### Views for analysts") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    return {
        shell: " ".join(query.split())
        for shell, query in re.findall(r'^(sqlite3|psql)\b[^"]*"(SELECT .*?;)"', block, re.S | re.M)
    }


def test_the_readme_view_queries_run_in_the_sqlite3_and_psql_shells(run, tmp_path):
    import shutil

    queries = _readme_queries()
    assert set(queries) == {"sqlite3", "psql"}
    path = tmp_path / "trial.db"
    run("--db", str(path), "init", check=True)
    for shell in ("sqlite3",):
        if shutil.which(shell):
            done = subprocess.run(
                [shell, str(path), queries[shell]], capture_output=True, text=True
            )
            assert done.returncode == 0 and not done.stderr, done.stderr
    # The psql query is PostgreSQL SQL; SQLite must at least accept the view it reads.
    with sqlite3.connect(path) as conn:
        conn.execute("SELECT study_id, event_id, target FROM v_visit_schedule").fetchall()


@pytest.mark.postgres
def test_the_readme_psql_query_runs_in_psql(run):
    import shutil

    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    with pg_schema_url() as url:
        run("--db", url, "init", check=True)
        schema = re.search(r"search_path%3D(\w+)", url).group(1)
        base = url.replace("postgresql+psycopg", "postgresql").split("?")[0]
        done = subprocess.run(
            [
                "psql",
                base,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f"SET search_path TO {schema}",
                "-c",
                _readme_queries()["psql"],
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "study_id" in done.stdout


def test_an_unreachable_database_server_is_one_line_not_a_traceback(run):
    result = run("--db", "postgresql://nobody@127.0.0.1:1/trials", "db", "current")
    assert result.returncode == 1
    assert result.stderr.startswith("error: database: connection failed")
    assert len(result.stderr.splitlines()) == 1
