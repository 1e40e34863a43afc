"""The demo database the SDTM and ODM tests read, made once per module by the installed
command, and what they compare the files with: the datasets as built from the service's read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sarcoma_sched.db.session import Database
from sarcoma_sched.exports.sdtm import submission
from sarcoma_sched.services.queries.subjects import TrialSubjects, trial_subjects

# The installed command and the scrubbed environment of the command tests: these tests run
# `sarcoma-sched` as a data manager would.
from tests.cli.conftest import _no_ambient_settings, command, invoke, run

__all__ = ["_no_ambient_settings", "as_text", "command", "demo", "expected", "read", "run"]

AS_OF = "2026-12-01"
TRIALS = ("NATARS", "NATARS-R", "TNT-STS")


@pytest.fixture(scope="module")
def demo(command, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("sdtm")
    done = invoke(command, cwd, "demo", "--as-of", AS_OF, "--out", str(cwd / "demo"))
    assert done.returncode == 0, done.stderr
    return cwd / "demo" / "demo.db"


def read(db: Path, trial: str, *, notes: bool = False) -> TrialSubjects:
    database = Database(str(db))
    try:
        with database.read() as session:
            return trial_subjects(session, trial, notes=notes)
    finally:
        database.dispose()


def as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def expected(db: Path, trial: str, *, notes: bool = False) -> dict[str, list[dict[str, str]]]:
    data = submission(read(db, trial, notes=notes), notes=notes)
    return {n: [{k: as_text(v) for k, v in r.items()} for r in rows] for n, rows in data.items()}
