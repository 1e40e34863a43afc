"""Alembic environment: runs on a connection the engine hands over, or on a URL.

``sarcoma-sched db upgrade`` passes its own connection (``config.attributes["connection"]``),
so migrations see the same SQLite pragmas as the engine. The ``alembic`` command takes the URL
from ``-x db=URL``, then ``SARCOMA_SCHED_DB``, then the default SQLite path.
"""

from __future__ import annotations

from alembic import context

from sarcoma_sched.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from sarcoma_sched.db.engine import make_engine, resolve_url

    engine = make_engine(resolve_url(context.get_x_argument(as_dictionary=True).get("db")))
    with engine.begin() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
