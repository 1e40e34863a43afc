"""Units of work: a read session, or a write transaction that commits with its audit entries.

Services open ``db.write(actor, action)``; everything they change inside commits together with
the audit entries or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from sarcoma_sched.db.audit import (
    ACTION_KEY,
    ACTOR_KEY,
    HEAD_KEY,
    SERVER_AUDIT_KEY,
    record_flush,
    remember_replaced,
    write_pending,
)
from sarcoma_sched.db.columns import check_fits
from sarcoma_sched.db.engine import (
    BUSY_TIMEOUT_MS,
    make_engine,
    refresh_statistics,
    resolve_url,
)
from sarcoma_sched.db.facts import FACTS_KEY, promote
from sarcoma_sched.db.migrate import check_schema
from sarcoma_sched.db.models import AUDITED, AuditHead
from sarcoma_sched.db.refusals import check_actor as _check_actor
from sarcoma_sched.db.refusals import refuse_missing_sqlite_file as _refuse_missing_sqlite_file
from sarcoma_sched.db.refusals import server_refusal
from sarcoma_sched.errors import (
    ActorMismatch,
    DatabaseBusy,
)

__all__ = ["BUSY_RETRIES", "AuditedSession", "Database", "server_refusal"]

# Waits for the write lock after the first busy timeout. Only the wait is retried, never a
# transaction body: see ``Database.write``.
BUSY_RETRIES = 2


class AuditedSession(Session):
    """A session whose flushes append to the audit log (see ``sarcoma_sched.db.audit``)."""


@event.listens_for(AuditedSession, "before_flush")
def _audit_before_flush(session: Session, _context: object, _instances: object) -> None:
    if not session.info.get(SERVER_AUDIT_KEY):
        remember_replaced(session)


@event.listens_for(AuditedSession, "before_flush")
def _refuse_what_a_column_cannot_hold(session: Session, _context: object, _ins: object) -> None:
    # Before any SQL is sent: SQLite would store a 500-character name that PostgreSQL refuses
    # mid-transaction, so the same value is one error line on both (see db.columns).
    check_fits(session)


@event.listens_for(AuditedSession, "after_flush")
def _audit_after_flush(session: Session, _context: object) -> None:
    # On PostgreSQL the server's triggers write the entries (migration 0006); writing them here
    # as well would chain every change twice.
    if not session.info.get(SERVER_AUDIT_KEY):
        record_flush(session)


@event.listens_for(AuditedSession, "before_commit")
def _audit_before_commit(session: Session) -> None:
    # The entries chained by this transaction's flushes go in last, in one statement; the
    # flush first, so a change still pending is chained (and written) with the rest.
    if not session.info.get(SERVER_AUDIT_KEY) and session.info.get(ACTOR_KEY):
        session.flush()
        write_pending(session)


# Built once: every write transaction starts with it, and composing a statement costs more
# than SQLite takes to run this one.
_HEAD_FOR_UPDATE = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()

_WRITE_SQL = re.compile(
    r"^\s*(?:WITH\b.*?\)\s*)?(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+(?:TABLE\s+)?"
    r"\"?(\w+)\"?",
    re.IGNORECASE | re.DOTALL,
)


@event.listens_for(AuditedSession, "do_orm_execute")
def _refuse_unaudited_writes(state: ORMExecuteState) -> None:
    # The audit log records what a flush changed (record_flush); a bulk UPDATE or DELETE, a Core
    # INSERT or a textual write through the session never reaches it, and `audit verify` would
    # later call the row changed behind the engine's back. Refused here, for every audited
    # table, on both backends, so the one write path stays the only one.
    statement = state.statement
    tables: set[str] = set()
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(statement, "table", None)
        if table is not None and getattr(table, "name", None):
            tables.add(table.name)
    elif isinstance(statement, TextClause):
        match = _WRITE_SQL.match(statement.text)
        if match:
            tables.add(match.group(2).lower())
    bypassing = sorted(tables & set(AUDITED) | (tables & {"audit_log", "audit_head"}))
    if bypassing:
        raise RuntimeError(
            f"a bulk write to {', '.join(bypassing)} would bypass the audit log: change rows "
            "through the session (add, attribute changes, delete) inside Database.write"
        )


class Database:
    """One database, by URL. ``check_schema`` refuses a database at another migration."""

    def __init__(
        self,
        url: str | None = None,
        *,
        check_schema: bool = True,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        on_busy: Callable[[str], None] | None = None,
        user: str | None = None,
        read_only: bool = False,
    ) -> None:
        """``on_busy`` hears one line each time a write waited ``busy_timeout_ms`` for the lock
        and tries again (the CLI prints it, so a coordinator knows why the command is slow).

        ``user`` is who the caller says is acting (``--user``). On SQLite it is the audit's
        actor, a label. On PostgreSQL the actor is the login the server authenticated, whatever
        a service passes as ``actor``; a ``user`` that names anyone else is refused.

        ``read_only``: only ``read`` sessions, on connections that cannot write (SQLite's
        ``query_only``, and ``mode=ro`` for a file this user may not write; PostgreSQL's
        read-only transactions), so a check runs on a file or with a login that may only read."""
        self.url = resolve_url(url)
        self.user = user
        self.read_only = read_only
        if check_schema or read_only:
            _refuse_missing_sqlite_file(self.url)
        self.engine: Engine = make_engine(
            self.url, busy_timeout_ms=busy_timeout_ms, read_only=read_only
        )
        self.busy_timeout_ms = busy_timeout_ms
        self.on_busy = on_busy
        self._writer = self.engine.execution_options(sarcoma_write=True)
        self._read = sessionmaker(self.engine, class_=AuditedSession, expire_on_commit=False)
        self._write = sessionmaker(self._writer, class_=AuditedSession, expire_on_commit=False)
        self._schema_checked = not check_schema
        # Rows that never change once committed (db.facts), shared by this Database's sessions.
        self._facts: dict[tuple[object, ...], object] = {}
        self._wrote = False
        self._user_checked = False

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def _ensure_schema(self) -> None:
        if not self._schema_checked:
            try:
                check_schema(self.engine)
            except DBAPIError as exc:
                refusal = server_refusal(exc)
                if refusal is None:
                    raise
                raise refusal from exc
            self._schema_checked = True

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; anything it would change is rolled back."""
        self._ensure_schema()
        session = self._read()
        session.info[FACTS_KEY] = self._facts
        try:
            self._check_user(session)
            yield session
            promote(session)
        except DBAPIError as exc:
            refusal = server_refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc
        finally:
            # close() rolls the connection back without expiring what was read, so results
            # stay usable after the block.
            session.close()

    def _check_user(self, session: Session) -> None:
        # A read names no actor, but a --user that is not the login is a mistake (or a lie)
        # either way: refuse it on reads as writes do, once per Database.
        _check_actor(self.user)
        if self.user is None or self.backend != "postgresql" or self._user_checked:
            return
        login = session.execute(text("SELECT session_user")).scalar_one()
        if self.user != login:
            raise ActorMismatch(
                f"--user {self.user} is not the PostgreSQL login {login}: on PostgreSQL you "
                "act under your own login"
            )
        self._user_checked = True

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
        if self.read_only:
            raise RuntimeError(f"{action}: this Database was opened read-only")
        self._ensure_schema()
        try:
            session = self._locked_session(actor, action)
        except DBAPIError as exc:
            refusal = server_refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc
        try:
            yield session
            session.commit()
            promote(session)
            self._wrote = True
        except OperationalError as exc:
            session.rollback()
            if _is_busy(exc):
                raise self._busy(1) from exc
            refusal = server_refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc
        except DBAPIError as exc:
            session.rollback()
            refusal = server_refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _locked_session(self, actor: str, action: str) -> Session:
        """A write session that holds the database's single write lock."""
        _check_actor(self.user)
        _check_actor(actor)
        for attempt in range(1, BUSY_RETRIES + 2):
            session = self._write()
            session.info[FACTS_KEY] = self._facts
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
                if self.backend == "postgresql":
                    # The server locks the head, records the action for its audit triggers
                    # and says who is logged in; application roles cannot touch the head.
                    login = session.execute(
                        text("SELECT sarcoma_begin_write(:action)"), {"action": action}
                    ).scalar_one()
                    if self.user is not None and self.user != login:
                        raise ActorMismatch(
                            f"--user {self.user} is not the PostgreSQL login {login}: on "
                            "PostgreSQL the audit names the login, so act under your own login"
                        )
                    session.info[SERVER_AUDIT_KEY] = True
                    session.info[ACTOR_KEY] = login
                else:
                    # BEGIN IMMEDIATE holds the write lock already; the head is read once here
                    # and kept with the session for the appends (audit._append).
                    session.info[HEAD_KEY] = tuple(session.execute(_HEAD_FOR_UPDATE).one())
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


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "lock timeout" in text
