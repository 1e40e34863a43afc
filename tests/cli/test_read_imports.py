"""The daily read commands import only what they use (issue 24): a heavy import added to their
path later fails here, not in a coordinator's morning.

Each command runs as the installed program does (``sarcoma_sched.cli.main``) in a fresh
interpreter, on the demo's database, and writes the modules it ended with; none of ``FORBIDDEN``
(or a submodule) may be among them.

``schedule`` reads two facts it keeps on disk (``services/queries/kept.py``): the first run with
an empty cache works them out with the parser and the ``holidays`` package, and every run after
it imports neither. Its runs here are the runs after one that filled a cache of their own; the
first run is checked apart, with a missing and a corrupt cache: the same output either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import SCRUBBED

# What a listing does not need: SQLAlchemy at all (the driver runs its statements, db.rows),
# the models, the audit hooks, the protocol models (pydantic), the holiday tables, the
# exporters and the pictures.
FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "sarcoma_sched.db.models",
    "sarcoma_sched.db.session",
    "sarcoma_sched.db.audit",
    "sarcoma_sched.services.lookups",
    "sarcoma_sched.protocol",
    "sarcoma_sched.calendar",  # the planner, the working-day calendars (``notices`` is outside)
    "sarcoma_sched.allocation",
    "sarcoma_sched.exports",
    "sarcoma_sched.reports",
    "pydantic",
    "holidays",
    "icalendar",
    "matplotlib",
    "numpy",
    "pandas",
    "openpyxl",
    "jinja2",
    "psycopg",
)

READ_COMMANDS = [
    ["visits", "--site", "PKUIH"],
    ["visits", "--from", "2020-01-01", "--to", "2030-12-31", "--format", "csv"],
    ["visits", "--site", "PKUIH", "--kind", "surgery", "--format", "json"],
    ["overdue", "--site", "PKUIH"],
    ["overdue", "--format", "json"],
    ["deviations", "--include-notes"],
    ["schedule", "PKUIH-NATARS-0001"],
    ["schedule", "pkuih-natars-r-0001", "--format", "json"],
    ["schedule", "XJTU1-NATARS-S0001", "--format", "csv"],  # screened, never allocated
]

_WRAPPER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from sarcoma_sched.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, command) -> Path:
    where = tmp_path_factory.mktemp("demo")
    db = where / "demo.db"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(where / "xdg")
    done = subprocess.run(
        [command, "demo", "--db", str(db)], capture_output=True, text=True, cwd=where, env=env
    )
    assert done.returncode == 0, done.stderr
    return db


def _modules_of(
    db: Path, args: list[str], tmp_path: Path, cache: Path | None = None
) -> tuple[list[str], str]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["XDG_CACHE_HOME"] = str(cache or tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(out), "--db", str(db), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_a_read_command_imports_none_of_the_heavy_modules(demo_db, tmp_path, args):
    if args[0] == "schedule":
        _modules_of(demo_db, args, tmp_path)  # the first run fills the cache
    modules, stdout = _modules_of(demo_db, args, tmp_path)
    assert stdout.strip(), "the command printed nothing: it did not run its query"
    assert "sqlite3" in modules  # it did reach the database, through the driver
    assert _heavy(modules) == []


def test_the_check_sees_a_heavy_import_when_there_is_one(demo_db, tmp_path):
    # `patients` is served by the ORM session still: the check must see what it imports.
    modules, _ = _modules_of(demo_db, ["patients"], tmp_path)
    assert {"sqlalchemy", "sqlalchemy.orm"} <= set(_heavy(modules))


def test_only_the_command_asked_for_is_imported(demo_db, tmp_path):
    modules, _ = _modules_of(demo_db, ["visits", "--site", "PKUIH"], tmp_path)
    commands = {m for m in modules if m.startswith("sarcoma_sched.cli.")}
    assert "sarcoma_sched.cli.queries" in commands
    assert not commands & {
        "sarcoma_sched.cli.report",
        "sarcoma_sched.cli.export",
        "sarcoma_sched.cli.allocation",
        "sarcoma_sched.cli.patients",
        "sarcoma_sched.cli.sites",
    }


def test_a_schedule_with_a_missing_or_corrupt_cache_works_its_facts_out_and_says_the_same(
    demo_db, tmp_path
):
    cache = tmp_path / "cold"
    args = ["schedule", "PKUIH-NATARS-0001", "--format", "json"]
    cold, first = _modules_of(demo_db, args, tmp_path, cache)
    # Nothing kept yet: the protocol was parsed and the holidays package asked.
    assert {"pydantic", "holidays"} <= set(cold)
    kept = sorted((cache / "sarcoma-sched").iterdir())
    assert [p.name.split("-")[0] for p in kept] == ["occurrences", "official"]
    warm, second = _modules_of(demo_db, args, tmp_path, cache)
    assert _heavy(warm) == [] and second == first
    for entry in kept:
        entry.write_text('{"truncated', encoding="utf-8")
    again, third = _modules_of(demo_db, args, tmp_path, cache)
    assert "pydantic" in again and third == first  # parsed again, not believed
    for entry in kept:
        json.loads(entry.read_text(encoding="utf-8"))  # and kept again, whole
    assert _heavy(_modules_of(demo_db, args, tmp_path, cache)[0]) == []
