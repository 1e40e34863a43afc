"""The same trial network, built from one seed on an SQLite file and on PostgreSQL, gives the
same SDTM datasets and the same conformance result: the subject read is the same code on both
(SQLAlchemy Core through the caller's session), and nothing in the export depends on which
database answered (row order, date types, JSON lists of days).
"""

from __future__ import annotations

import datetime as dt

import pytest

from benchmarks.network import build_network
from sarcoma_sched.db.session import Database
from sarcoma_sched.exports.sdtm import submission
from sarcoma_sched.services.queries.subjects import trial_subjects
from tests.databases import pg_schema_url
from tests.sdtm import conformance
from tests.sdtm.conftest import TRIALS, as_text

AS_OF = dt.date(2026, 11, 21)


def datasets(url: str) -> dict[str, dict[str, list[dict[str, str]]]]:
    build_network(url, 24, sites=4, as_of=AS_OF, batch=24, writer="orm", progress=lambda _: None)
    db = Database(url)
    try:
        out = {}
        for trial in TRIALS:
            with db.read() as session:
                data = trial_subjects(session, trial)
            out[trial] = {
                name: [{k: as_text(v) for k, v in r.items()} for r in rows]
                for name, rows in submission(data).items()
            }
        return out
    finally:
        db.dispose()


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_sdtm_datasets_and_both_conform(tmp_path):
    on_sqlite = datasets(str(tmp_path / "network.db"))
    with pg_schema_url() as url:
        on_postgresql = datasets(url)
    assert sum(len(d["DM"]) for d in on_sqlite.values()) > 0
    for trial in TRIALS:
        # TS's SSTDTC and ACTSUB, every subject dataset: row for row, value for value.
        assert on_postgresql[trial] == on_sqlite[trial], trial
        assert conformance.check(on_sqlite[trial]) == [], trial
