"""A migrated database on each backend for the reliability tests (``conftest.db_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.reliability._common import create_schema
from tests.databases import pg_schema_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def migrated_database(backend: str, directory: Path) -> Iterator[str]:
    """A URL (an SQLite file in ``directory``, or a schema of its own) at the current schema."""
    if backend == "sqlite":
        path = directory / "reliability.db"
        path.touch()
        create_schema(str(path))
        yield str(path)
    else:
        with pg_schema_url() as url:
            create_schema(url)
            yield url
