"""`--db` takes a path, sqlite:///PATH or postgresql://…, the same everywhere; a malformed URL is
one error line and creates nothing (it used to create a relative file named `sqlite:`)."""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize(
    "value", ["sqlite:/x.db", "sqlite:x.db", "postgresql:trial", "postgres:/db", "sqlite://"]
)
def test_a_malformed_database_url_is_refused_and_creates_nothing(run, tmp_path, value):
    before = sorted(os.listdir(tmp_path))
    result = run("--db", value, "init")
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert value in result.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_the_demo_accepts_an_sqlite_url_and_refuses_another_backend(run, tmp_path):
    done = run("demo", "--db", "sqlite:///made.db", "--as-of", "2026-06-01")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "made.db").is_file() and not (tmp_path / "sqlite:").exists()
    refused = run("demo", "--db", "postgresql://nobody@127.0.0.1/none", "--replace")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error:") and "needs an SQLite file" in refused.stderr
