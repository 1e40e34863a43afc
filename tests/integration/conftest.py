from __future__ import annotations

import pytest

from sarcoma_sched.db.session import Database
from tests.databases import pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """An empty database of each backend: an SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "schedule.db")
    else:
        with pg_schema_url() as url:
            yield url


@pytest.fixture
def database(db_url):
    """A database at the current schema, with the bundled protocols loaded."""
    from sarcoma_sched.services.protocols import initialize

    db = Database(db_url, check_schema=False)
    initialize(db, "setup")
    yield db
    db.dispose()
