"""Any single change, deletion or insertion behind the engine's back is reported with its row.

Reliability item 4, the short version of ``python -m benchmarks.reliability.tamper``: hypothesis
chooses the table, the operation, the row, the column and the new value. Every example starts
from the same small network, built once per backend: on SQLite the tampering is committed to a
copy of the file, which ``verify`` then opens as ``audit verify`` does; on PostgreSQL it is made
inside a transaction that ``verify`` reads on the same connection before it is rolled back (the
module's docstring says why both read the tampered rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from benchmarks.reliability.tamper import REQUIRED, PgTrials, SqliteTrials, build, reported
from tests.databases import pg_schema_url

PATIENTS = 6
EXAMPLES = settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The three tables item 4 names, then any audited table (patients, sites, enrolments...).
TABLES = pytest.mark.parametrize("table", [*REQUIRED, None], ids=[*REQUIRED, "any_table"])


class Drawn:
    """The tampering's choices drawn by hypothesis, so a miss shrinks to the simplest one."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.data.draw(st.sampled_from(list(seq)))


@pytest.fixture(scope="module")
def sqlite_trials(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tamper")
    build(str(folder / "network.db"), PATIENTS, progress=lambda _line: None)
    trials = SqliteTrials(folder / "network.db", folder / "trial.db")
    yield trials
    trials.close()


@pytest.fixture(scope="module")
def pg_trials():
    with pg_schema_url() as url:
        build(url, PATIENTS, progress=lambda _line: None)
        trials = PgTrials(url)
        yield trials
        trials.close()


def _check(done, problems: list[str]) -> None:
    assume(done is not None)  # every try refused by a constraint: nothing was tampered with
    assert reported(done, problems), f"{done.what}: verify reported {problems or 'nothing'}"


@TABLES
@EXAMPLES
@given(data=st.data())
def test_tampering_with_an_sqlite_file_is_reported_with_the_row(sqlite_trials, table, data):
    _check(*sqlite_trials(Drawn(data), table=table))


@pytest.mark.postgres
@TABLES
@EXAMPLES
@given(data=st.data())
def test_tampering_with_a_postgresql_database_is_reported_with_the_row(pg_trials, table, data):
    _check(*pg_trials(Drawn(data), table=table))
