"""Real databases for tests: an SQLite file, or a PostgreSQL schema of its own.

PostgreSQL tests read ``SARCOMA_SCHED_TEST_PG_URL``. Without it (or without a server) they are
skipped with the reason shown; ``.ci/run`` sets ``SARCOMA_SCHED_REQUIRE_PG=1``, which turns that
skip into a failure so CI always runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from benchmarks._pg import fresh_schema

PG_ENV = "SARCOMA_SCHED_TEST_PG_URL"
REQUIRE_ENV = "SARCOMA_SCHED_REQUIRE_PG"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"PostgreSQL required ({REQUIRE_ENV} is set) but {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        _unavailable(f"{PG_ENV} is not set")
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server
        _unavailable(f"cannot connect to {url}: {exc.__class__.__name__}")
    return url  # type: ignore[return-value]


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections see only a fresh schema, dropped afterwards."""
    with fresh_schema(pg_base_url(), "t") as url:
        yield url


def quote_url(url: str) -> str:
    return quote(url, safe=":/@?=&+")
