"""Units of work: a read session, or a write transaction that commits with its audit entries.

Services open ``db.write(actor, action)``; everything they change inside commits together with
the audit entries or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event, make_url, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sarcoma_sched.db.audit import ACTION_KEY, ACTOR_KEY, record_flush
from sarcoma_sched.db.engine import (
    BUSY_TIMEOUT_MS,
    make_engine,
    refresh_statistics,
    resolve_url,
)
from sarcoma_sched.db.migrate import SchemaMismatch, check_schema
from sarcoma_sched.db.models import AuditHead
from sarcoma_sched.errors import SarcomaSchedError

__all__ = ["BUSY_RETRIES", "AuditedSession", "Database", "DatabaseBusy"]

# Waits for the write lock after the first busy timeout. Only the wait is retried, never a
# transaction body: see ``Database.write``.
BUSY_RETRIES = 2


class DatabaseBusy(SarcomaSchedError):
    """Another transaction held the database longer than the busy timeout."""


class AuditedSession(Session):
    """A session whose flushes append to the audit log (see ``sarcoma_sched.db.audit``)."""


@event.listens_for(AuditedSession, "after_flush")
def _audit_after_flush(session: Session, _context: object) -> None:
    record_flush(session)


class Database:
    """One database, by URL. ``check_schema`` refuses a database at another migration."""

    def __init__(
        self,
        url: str | None = None,
        *,
        check_schema: bool = True,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        on_busy: Callable[[str], None] | None = None,
    ) -> None:
        """``on_busy`` hears one line each time a write waited ``busy_timeout_ms`` for the lock
        and tries again (the CLI prints it, so a coordinator knows why the command is slow)."""
        self.url = resolve_url(url)
        if check_schema:
            _refuse_missing_sqlite_file(self.url)
        self.engine: Engine = make_engine(self.url, busy_timeout_ms=busy_timeout_ms)
        self.busy_timeout_ms = busy_timeout_ms
        self.on_busy = on_busy
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
        """One transaction: commits on success, rolls back everything on any exception.

        The write lock is taken before the ``with`` block runs. A wait for it that times out is
        retried (``BUSY_RETRIES`` times, each announced through ``on_busy``): nothing has been
        read or written yet, so trying again is exactly what the coordinator would do by hand.
        A busy error after that point (inside the block, or at commit) is not retried here,
        since the block cannot be run twice by a context manager; it rolls back and raises
        ``DatabaseBusy``, which says nothing was changed.
        """
        self._ensure_schema()
        session = self._locked_session(actor, action)
        try:
            yield session
            session.commit()
            self._wrote = True
        except OperationalError as exc:
            session.rollback()
            if _is_busy(exc):
                raise self._busy(1) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _locked_session(self, actor: str, action: str) -> Session:
        """A write session that holds the database's single write lock."""
        for attempt in range(1, BUSY_RETRIES + 2):
            session = self._write()
            session.info[ACTOR_KEY] = actor
            session.info[ACTION_KEY] = action
            try:
                if self.backend == "postgresql":
                    # PostgreSQL would wait for a row lock for ever (a client that died
                    # mid-transaction, a psql session left open); wait as long as SQLite does.
                    session.execute(text(f"SET LOCAL lock_timeout = {int(self.busy_timeout_ms)}"))
                # Lock the chain head first, before reading anything a decision depends on
                # (the next sequence position, a slot's bookings): one writer at a time.
                # On SQLite BEGIN IMMEDIATE already holds the write lock; FOR UPDATE is a no-op.
                session.execute(select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())
                return session
            except OperationalError as exc:
                session.rollback()
                session.close()
                if not _is_busy(exc):
                    raise
                if attempt > BUSY_RETRIES:
                    raise self._busy(attempt) from exc
                if self.on_busy is not None:
                    self.on_busy(
                        f"database busy: waited {self._seconds()} for another transaction; "
                        f"retrying ({attempt} of {BUSY_RETRIES})"
                    )
            except BaseException:
                session.rollback()
                session.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _seconds(self) -> str:
        seconds = self.busy_timeout_ms / 1000
        return f"{seconds:g} s"

    def _busy(self, attempts: int) -> DatabaseBusy:
        tries = f" ({attempts} tries)" if attempts > 1 else ""
        return DatabaseBusy(
            f"database busy: another transaction held it for over {self._seconds()}{tries}; "
            "nothing was changed, try again"
        )

    def dispose(self) -> None:
        try:
            if self._wrote and self.backend == "sqlite":
                # Through the writer, so the check and ANALYZE run under BEGIN IMMEDIATE: in a
                # deferred transaction ANALYZE would upgrade a read snapshot to a write, which
                # SQLite refuses at once (SQLITE_BUSY_SNAPSHOT) whenever another coordinator
                # committed in between, failing a command whose own work was already done.
                refresh_statistics(self._writer)
        except OperationalError as exc:
            # Statistics only speed up queries; the next writer's exit refreshes them.
            if not _is_busy(exc):
                raise
        finally:
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
