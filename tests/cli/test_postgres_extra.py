"""PostgreSQL support is an extra (issue 21, item 7): without psycopg a postgresql:// URL is
refused in one line naming what to install, and SQLite works as before.

psycopg's absence is simulated for the installed command: a ``sitecustomize`` on PYTHONPATH
puts a finder first on ``sys.meta_path`` that refuses to import ``psycopg``, as an environment
installed without the extra would; nothing of the engine is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.conftest import SCRUBBED

BLOCKER = '''
import sys


class _NoPsycopg:
    """An environment installed without sarcoma-sched[postgres]."""

    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith("psycopg.") or name.startswith("psycopg_"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoPsycopg())
'''


@pytest.fixture
def without_psycopg(command, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PYTHONPATH"] = str(site)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([command, *args], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=60)  # fmt: skip

    return run


def test_the_blocker_really_hides_psycopg(without_psycopg, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    probe = subprocess.run([sys.executable, "-c", "import psycopg"], capture_output=True,
                           text=True, env=env, timeout=60)  # fmt: skip
    assert probe.returncode != 0 and "No module named 'psycopg'" in probe.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql://trial@db.example/natars", "postgresql+psycopg://trial:secret@db.example/x"],
)
def test_a_postgresql_url_without_the_extra_is_refused_in_one_line(without_psycopg, url):
    refused = without_psycopg("--db", url, "site", "list")
    assert refused.returncode == 1
    shown = url.replace(":secret", ":***").replace("postgresql://", "postgresql+psycopg://")
    assert refused.stderr == (
        f"error: database {shown}: PostgreSQL support is not installed; "
        "pip install 'sarcoma-sched[postgres]'\n"
    )
    assert "secret" not in refused.stderr


def test_sqlite_needs_no_postgresql_driver(without_psycopg, tmp_path):
    db = str(tmp_path / "trial.db")
    done = without_psycopg("--db", db, "init")
    assert done.returncode == 0, done.stderr
    listed = without_psycopg("--db", db, "site", "list", "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    assert "PKUIH" in listed.stdout
