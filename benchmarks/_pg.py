"""A PostgreSQL schema of one's own: the benchmarks, the reliability scripts and the tests never
touch tables they did not create."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["fresh_schema"]


@contextmanager
def fresh_schema(base: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A URL on the server of ``base`` whose connections see only a new, empty schema named
    ``prefix`` plus a random suffix; dropped with everything in it afterwards unless ``keep``."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()
