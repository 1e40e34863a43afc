"""A PostgreSQL schema of one's own: the benchmarks, the reliability scripts and the tests never
touch tables they did not create."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["fresh_schema", "kept_schema"]


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


def kept_schema(
    base: str, name: str, *, rebuild: bool = False, stale: str = ""
) -> tuple[str, bool]:
    """(URL of the schema ``name`` on the server of ``base``, whether it must be built): kept
    between runs, so made afresh, empty, only when it holds no built database yet (no
    ``audit_head``) or ``rebuild`` is asked. Making it afresh first drops the schemas whose
    names are LIKE ``stale`` (kept ones of other inputs)."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            built = conn.scalar(
                text(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = :s "
                    "AND table_name = 'audit_head'"
                ),
                {"s": name},
            )
            build = rebuild or not built
            if build:
                old = (
                    stale
                    and conn.scalars(
                        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": stale}
                    ).all()
                )
                for schema in [*(old or []), name]:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
    finally:
        admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False), build
