"""A database's whole content as text, to show that a refused command changed nothing.

``dump(db)`` before and after a command must be equal. For an SQLite file it is the ``sqlite3``
module's ``iterdump()`` (schema and every row); for a PostgreSQL URL, every table of the URL's
schema with its columns and its rows sorted, plus the audit chain's head (the one row every
write transaction locks and moves).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

__all__ = ["dump"]


def dump(db: str | Path) -> str:
    """Everything in the database ``db`` (an SQLite path or ``sqlite:///`` URL, or a PostgreSQL
    URL) as text; an SQLite file that does not exist dumps as ``""`` and is not created."""
    text = str(db)
    if "://" in text and not text.startswith("sqlite"):
        return _dump_url(text)
    path = Path(text.split(":///", 1)[1] if text.startswith("sqlite") else text)
    if not path.exists():
        return ""
    # Read-only: a plain connect() would create a missing file, and the dump must never write.
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return "\n".join(conn.iterdump())


def _dump_url(url: str) -> str:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        lines = []
        with engine.connect() as conn:
            # The URL's search_path names the schema; get_table_names() reads that default one.
            for table in sorted(inspector.get_table_names()):
                columns = [c["name"] for c in inspector.get_columns(table)]
                lines.append(f"-- {table} ({', '.join(columns)})")
                rows = conn.execute(text(f'SELECT * FROM "{table}"'))
                lines.extend(sorted(repr(tuple(row)) for row in rows))
            head = conn.execute(text("SELECT seq, hash FROM audit_head")).all()
            lines.append(f"-- audit head: {[tuple(row) for row in head]}")
        return "\n".join(lines)
    finally:
        engine.dispose()
