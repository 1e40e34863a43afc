"""A Core connection for the daily listings, opened without the ORM.

``Database.read`` hands out an ORM session, and importing what it needs (``sqlalchemy.orm``, the
models, the audit hooks) cost ``visits`` and ``overdue`` most of their wall time. These commands
need no ORM, so ``CoreReader.read`` gives them a ``Connection`` on the same engine
(``db.engine.make_engine``) after the same checks as ``Database.read``: the file exists, the
schema is this code's, ``--user`` fits and, on PostgreSQL, is the login. The queries run as the
logged-in role, so grants and row-level security apply exactly as they do to a session.

A read command opens its database with the driver alone first (``db.quick_open``) and comes
here for every case that path does not take for granted, so that it is refused, or served, in
the engine's words.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from sarcoma_sched.db.engine import make_engine, resolve_url
from sarcoma_sched.db.migrate import check_schema
from sarcoma_sched.db.refusals import check_actor, refuse_missing_sqlite_file, server_refusal
from sarcoma_sched.errors import ActorMismatch

__all__ = ["CoreReader"]


class CoreReader:
    """One database by URL (``--db``, ``SARCOMA_SCHED_DB``, the default file), for reading.
    ``read_only`` as for ``Database``: connections that cannot write, for a file or a login
    that may only read."""

    def __init__(
        self, url: str | None = None, *, user: str | None = None, read_only: bool = False
    ) -> None:
        self.url = resolve_url(url)
        self.user = user
        refuse_missing_sqlite_file(self.url)
        self.engine: Engine = make_engine(self.url, read_only=read_only)
        self._schema_checked = False

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for queries; it is rolled back when the block ends."""
        try:
            if not self._schema_checked:
                check_schema(self.engine)
                self._schema_checked = True
            with self.engine.connect() as connection:
                self._check_user(connection)
                yield connection
        except DBAPIError as exc:
            refusal = server_refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc

    def _check_user(self, connection: Connection) -> None:
        # As Database.read: a --user that is not the login is refused on reads too.
        check_actor(self.user)
        if self.user is None or self.engine.dialect.name != "postgresql":
            return
        login = connection.execute(text("SELECT session_user")).scalar_one()
        if self.user != login:
            raise ActorMismatch(
                f"--user {self.user} is not the PostgreSQL login {login}: on PostgreSQL you "
                "act under your own login"
            )

    def dispose(self) -> None:
        self.engine.dispose()
