"""Units of work: a read session, or a write transaction that commits with its audit entries.

Services open ``db.write(actor, action)``; everything they change inside commits together with
the audit entries or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event, make_url, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sarcoma_sched.audit import ACTION_KEY, ACTOR_KEY, record_flush
from sarcoma_sched.db.engine import (
    BUSY_TIMEOUT_MS,
    make_engine,
    refresh_statistics,
    resolve_url,
)
from sarcoma_sched.db.migrate import SchemaMismatch, check_schema
from sarcoma_sched.db.models import AuditHead
from sarcoma_sched.errors import SarcomaSchedError

__all__ = ["AuditedSession", "Database", "DatabaseBusy"]


class DatabaseBusy(SarcomaSchedError):
    """Another transaction held the database longer than the busy timeout."""


class AuditedSession(Session):
    """A session whose flushes append to the audit log (see ``sarcoma_sched.audit``)."""


@event.listens_for(AuditedSession, "after_flush")
def _audit_after_flush(session: Session, _context: object) -> None:
    record_flush(session)


class Database:
    """One database, by URL. ``check_schema`` refuses a database at another migration."""

    def __init__(self, url: str | None = None, *, check_schema: bool = True) -> None:
        self.url = resolve_url(url)
        if check_schema:
            _refuse_missing_sqlite_file(self.url)
        self.engine: Engine = make_engine(self.url)
        self._writer = self.engine.execution_options(sarcoma_write=True)
        self._read = sessionmaker(self.engine, class_=AuditedSession, expire_on_commit=False)
        self._write = sessionmaker(self._writer, class_=AuditedSession, expire_on_commit=False)
        self._schema_checked = not check_schema
        self._wrote = False

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def _ensure_schema(self) -> None:
        if not self._schema_checked:
            check_schema(self.engine)
            self._schema_checked = True

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; anything it would change is rolled back."""
        self._ensure_schema()
        session = self._read()
        try:
            yield session
        finally:
            # close() rolls the connection back without expiring what was read, so results
            # stay usable after the block.
            session.close()

    @contextmanager
    def write(self, actor: str, action: str) -> Iterator[Session]:
        """One transaction: commits on success, rolls back everything on any exception."""
        self._ensure_schema()
        session = self._write()
        session.info[ACTOR_KEY] = actor
        session.info[ACTION_KEY] = action
        try:
            # Lock the chain head first, before reading anything a decision depends on
            # (the next sequence position, a slot's bookings): one writer at a time.
            # On SQLite BEGIN IMMEDIATE already holds the write lock; FOR UPDATE is a no-op.
            session.execute(select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())
            yield session
            session.commit()
            self._wrote = True
        except OperationalError as exc:
            session.rollback()
            if _is_busy(exc):
                raise DatabaseBusy(
                    f"database busy: another transaction held it for over "
                    f"{BUSY_TIMEOUT_MS // 1000} s; nothing was changed, try again"
                ) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        if self._wrote and self.backend == "sqlite":
            refresh_statistics(self.engine)
        self.engine.dispose()


def _refuse_missing_sqlite_file(url: str) -> None:
    # Connecting would create an empty file; a typo in --db should say so instead.
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        raise SchemaMismatch(f"database file {file} does not exist: run `sarcoma-sched init`")


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "lock timeout" in text
