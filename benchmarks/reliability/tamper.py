"""Changing, deleting or inserting a row behind the engine's back is reported by ``audit verify``
with the row (reliability item 4).

    python -m benchmarks.reliability.tamper --db PATH_OR_URL [--trials 500] [--patients 12]
                                            [--seed K] [--keep]

Builds a small real network once (``benchmarks.network``, plus a site closure, a capacity and a
withdrawal so that every audited table has rows), checks that ``audit.verify`` passes it, then
runs trials. Each trial starts from that untouched network and makes one change no service made,
in ``audit_log``, ``allocations``, ``scheduled_events`` or any other audited table:

* **change**: one column of one row set to another plausible value: another row's value of
  that column first (valid hashes, real JSON, existing patients), else a shifted one (a day or
  a second later, +1, one character changed, NULL), never the same value;
* **delete**: one row;
* **insert**: a copy of a row under a new id, its unique columns made unique; in the log, a
  forged entry appended after the last one, linking to it with a correctly computed hash.

A change the database itself refuses (a foreign key, a check constraint) is not tampering; the
trial tries another value or row. Then ``audit.verify`` reads the tampered data and must report a
problem naming the row: ``scheduled_events 123: ...``, ``audit entry 45: ...`` (or the head line
naming entry 45), and for a changed column the column among the differing fields.

Every write goes through SQLAlchemy Core on a bare connection: no ORM session, hence no audit
hook, exactly what ``sqlite3`` or ``psql`` would do (SQLite's foreign keys off, as ``sqlite3``
starts). Where the trial's data lives:

* SQLite: each trial copies the built file, commits its tampering to the copy and closes it;
  ``verify`` then opens the copy through ``Database`` as ``audit verify`` does.
* PostgreSQL: each trial tampers inside a transaction on one connection, runs ``verify`` on a
  session bound to that same connection, then rolls back. ``verify`` reads the tampered rows
  from the database (its own transaction sees them), not from anything the trial holds;
  rebuilding a schema per trial would cost seconds for no difference in what is read.

Prints how many tamperings of each kind were detected; exits 1 unless all were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from benchmarks._pg import fresh_schema
from sarcoma_sched.db.audit import canonical, entry_hash, verify
from sarcoma_sched.db.engine import make_engine
from sarcoma_sched.db.models import AUDITED, AuditEntry, AuditHead
from sarcoma_sched.db.session import Database

__all__ = [
    "AS_OF",
    "LOG",
    "OPS",
    "REQUIRED",
    "TABLES",
    "Chooser",
    "PgTrials",
    "SqliteTrials",
    "Tampering",
    "build",
    "read_rows",
    "reported",
    "tamper",
]

AS_OF = dt.date(2026, 6, 1)
LOG = AuditEntry.__tablename__
# The tables reliability item 4 names; the others are covered as well.
REQUIRED = (LOG, "allocations", "scheduled_events")
TABLES = (LOG, *AUDITED)
OPS = ("change", "delete", "insert")
ACTOR = "tamper-setup"
# A change the database refuses is retried with another value or row this many times.
ATTEMPTS = 12

T = TypeVar("T")


class Chooser(Protocol):
    """Where the trial's choices come from: ``random.Random`` or a hypothesis adapter."""

    def choice(self, seq: Sequence[T]) -> T: ...


@dataclass(frozen=True)
class Tampering:
    table: str
    op: str
    ids: tuple[str, ...]  # the row, as the report names it (a moved row: old and new id)
    column: str | None = None
    what: str = ""

    @property
    def kind(self) -> str:
        return f"{self.table} {self.op}"


# -- the network every trial starts from --------------------------------------------------------


def build(url: str, patients: int = 12, progress: Callable[[str], None] = print) -> None:
    """The small network the trials tamper with, into the empty database at ``url``."""
    from benchmarks.network import build_network
    from sarcoma_sched.db.models import Allocation, ParticipationEnd, Patient
    from sarcoma_sched.services.capacity import set_capacity
    from sarcoma_sched.services.participation import end_participation
    from sarcoma_sched.services.sites import close_site

    build_network(url, patients, as_of=AS_OF, progress=lambda _line: None)
    db = Database(url)
    try:
        with db.read() as session:
            site, study_id = session.execute(
                select(Patient.site_code, Patient.study_id)
                .join(Allocation, Allocation.patient_id == Patient.id)
                .where(~Patient.id.in_(select(ParticipationEnd.patient_id)))
                .order_by(Allocation.allocation_date.desc())
                .limit(1)
            ).one()
        # Rows for the audited tables a bare network leaves empty.
        set_capacity(db, ACTOR, site, "theatre", per_weekday={"tue": 2, "thu": 1})
        close_site(
            db,
            ACTOR,
            site,
            AS_OF + dt.timedelta(days=9),
            AS_OF + dt.timedelta(days=10),
            "ward refurbishment",
        )
        end_participation(
            db, ACTOR, study_id, "withdrawn", "patient's choice", effective_date=AS_OF, today=AS_OF
        )
        with db.read() as session:
            report = verify(session)
    finally:
        db.dispose()
    if not report.ok:
        raise RuntimeError(f"the untampered network fails audit verify: {report.problems[:3]}")
    progress(f"network: {patients} patients, {report.entries} audit entries, verify passes")


# -- one tampering ------------------------------------------------------------------------------


Rows = dict[str, list[dict[str, Any]]]


def read_rows(conn: Connection) -> Rows:
    """Every row of the log and the audited tables: what each trial starts from."""
    return {name: _rows(conn, _table(name)) for name in TABLES}


def tamper(
    conn: Connection,
    choose: Chooser,
    savepoint: Callable[[], AbstractContextManager[Any]],
    rows: Rows,
    *,
    table: str | None = None,
    op: str | None = None,
) -> Tampering | None:
    """One change behind the engine's back through ``conn``, whose tables hold ``rows``; None if
    the database refused every try. ``savepoint`` wraps each try so that a refused one leaves
    nothing behind."""
    if table is None:
        table = choose.choice([name for name in TABLES if rows[name]])
    op = op or choose.choice(OPS)
    t, existing = _table(table), rows[table]
    if not existing:
        return None
    for _ in range(ATTEMPTS):
        row = choose.choice(existing)
        try:
            with savepoint():
                if op == "delete":
                    return _delete(conn, t, row)
                if op == "insert":
                    if table == LOG:
                        return _forge_entry(conn, row, existing)
                    return _insert_copy(conn, t, row, existing, rows, choose)
                return _change(conn, t, row, existing, choose)
        except (DBAPIError, _Refused):
            continue  # refused by a constraint: not a tampering the database lets through
    return None


def _table(name: str) -> Table:
    return AuditEntry.__table__ if name == LOG else AUDITED[name].__table__  # type: ignore[return-value]


def _pk(t: Table) -> Column[Any]:
    (pk,) = t.primary_key.columns
    return pk


def _rows(conn: Connection, t: Table) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(t).order_by(_pk(t))).mappings()]


def _name(t: Table, row: dict[str, Any]) -> str:
    return str(row[_pk(t).name])


def _where(t: Table, row: dict[str, Any]) -> Any:
    return _pk(t) == row[_pk(t).name]


def _delete(conn: Connection, t: Table, row: dict[str, Any]) -> Tampering:
    conn.execute(delete(t).where(_where(t, row)))
    return Tampering(t.name, "delete", (_name(t, row),), what=f"deleted {t.name} {_name(t, row)}")


def _change(
    conn: Connection,
    t: Table,
    row: dict[str, Any],
    existing: list[dict[str, Any]],
    choose: Chooser,
) -> Tampering:
    column = choose.choice(list(t.columns))
    old = row[column.name]
    candidates = [v for v in _candidates(column, old, existing) if _differs(v, old)]
    if not candidates:
        raise _Refused()
    new = choose.choice(candidates)
    conn.execute(update(t).where(_where(t, row)).values({column.name: new}))
    ids = (_name(t, row),)
    if column.primary_key:
        ids = (*ids, str(new))
    return Tampering(
        t.name,
        "change",
        ids,
        column.name,
        f"{t.name} {ids[0]}: {column.name} {_short(old)} -> {_short(new)}",
    )


class _Refused(Exception):
    """No plausible other value: like a refusal, the next try picks another row."""


def _differs(new: Any, old: Any) -> bool:
    # As verify compares: the same JSON value is the same value (no tampering at all).
    return json.loads(canonical({"v": new})) != json.loads(canonical({"v": old}))


def _candidates(column: Column[Any], value: Any, existing: list[dict[str, Any]]) -> list[Any]:
    """Other rows' values of the column first (most plausible), then shifted ones."""
    if column.primary_key:
        top = max((r[column.name] for r in existing), default=0)
        if isinstance(value, int):
            return [top + 1, top + 7]
        return [_shifted(column, value)]
    seen: list[Any] = []
    for r in existing:
        v = r[column.name]
        if all(_differs(v, s) for s in seen):
            seen.append(v)
    others = [v for v in seen if _differs(v, value)]
    shifted = [_shifted(column, value)]
    if column.nullable and value is not None:
        shifted.append(None)
    # Mostly another row's value, sometimes a shifted one: both kinds get tried.
    return [*others[:8], *shifted]


def _shifted(column: Column[Any], value: Any) -> Any:
    if value is None:
        return _typed_default(column)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, dt.datetime):
        return value + dt.timedelta(seconds=1)
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    if isinstance(value, str):
        return value[:-1] + ("y" if value[-1:] == "x" else "x")
    if isinstance(value, dict):
        return {**value, "tampered": True}
    if isinstance(value, list):
        return [*value, "tampered"]
    return value


def _typed_default(column: Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, Integer):
        return 1
    if isinstance(getattr(kind, "impl", kind), DateTime):
        return dt.datetime.combine(AS_OF, dt.time(3), tzinfo=dt.UTC)
    if isinstance(kind, Date):
        return AS_OF
    return "x"


def _short(value: Any) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 40 else text_[:37] + "..."


def _unique_sets(t: Table) -> list[list[Column[Any]]]:
    sets = [list(c.columns) for c in t.constraints if isinstance(c, UniqueConstraint)]
    sets += [list(i.columns) for i in t.indexes if i.unique]
    return [s for s in sets if s != [_pk(t)]]


def _insert_copy(
    conn: Connection,
    t: Table,
    row: dict[str, Any],
    existing: list[dict[str, Any]],
    rows: dict[str, list[dict[str, Any]]],
    choose: Chooser,
) -> Tampering:
    pk = _pk(t)
    copy = dict(row)
    if isinstance(row[pk.name], int):
        copy[pk.name] = max(r[pk.name] for r in existing) + 1
    else:
        copy[pk.name] = _unique_text(pk, row[pk.name], existing, "")
    for columns in _unique_sets(t):
        if any(copy[c.name] is None for c in columns):
            continue  # NULLs never collide
        column = choose.choice(columns)
        copy[column.name] = _unique_value(column, copy, existing, rows)
    conn.execute(insert(t).values(copy))
    new = str(copy[pk.name])
    return Tampering(
        t.name, "insert", (new,), what=f"inserted {t.name} {new} (a copy of {_name(t, row)})"
    )


def _unique_value(
    column: Column[Any],
    copy: dict[str, Any],
    existing: list[dict[str, Any]],
    rows: dict[str, list[dict[str, Any]]],
) -> Any:
    used = {r[column.name] for r in existing}
    for fk in column.foreign_keys:
        # An existing parent not yet used here (a screen failure for an allocation), else a
        # dangling one (refused where foreign keys are enforced).
        target = fk.column
        parents = [r[target.name] for r in rows.get(target.table.name, [])]
        free = [p for p in parents if p not in used]
        if free:
            return free[0]
    value = copy[column.name]
    if isinstance(value, bool) or not isinstance(value, int | str):
        return _shifted(column, value)
    if isinstance(value, int):
        return max(used) + 1
    return _unique_text(column, value, existing, copy)


def _unique_text(column: Column[Any], value: str, existing: list[dict[str, Any]], salt: Any) -> str:
    used = {r[column.name] for r in existing}
    length = getattr(column.type, "length", None) or 64
    for n in range(1, 1000):
        suffix = f"~{n}"
        candidate = value[: max(0, length - len(suffix))] + suffix
        if candidate not in used:
            return candidate
    raise _Refused()


def _forge_entry(
    conn: Connection, row: dict[str, Any], existing: list[dict[str, Any]]
) -> Tampering:
    """The strongest single-row forgery: a copy of an entry appended after the last one, its
    links and hash computed exactly as the engine would. Only the head can tell."""
    last = existing[-1]
    fields = {
        "seq": last["seq"] + 1,
        "at": last["at"],
        "actor": row["actor"],
        "action": row["action"],
        "entity": row["entity"],
        "entity_id": row["entity_id"],
        "change": row["change"],
        "prev_hash": last["hash"],
    }
    fields["hash"] = entry_hash(
        fields["seq"],
        fields["at"],
        fields["actor"],
        fields["action"],
        fields["entity"],
        fields["entity_id"],
        fields["change"],
        prev=fields["prev_hash"],
    )
    conn.execute(insert(AuditEntry.__table__).values(fields))
    seq = str(fields["seq"])
    return Tampering(LOG, "insert", (seq,), what=f"forged audit entry {seq} (copy of {row['seq']})")


# -- was it reported? ---------------------------------------------------------------------------

_DIFFERS = re.compile(r": differs from its last audit entry in (.*) \(changed behind the engine\)$")


def reported(t: Tampering, problems: Sequence[str]) -> bool:
    """Whether ``verify``'s problems name the tampered row (and a changed column)."""
    if t.table == LOG:
        named = re.compile(r"\bentry (" + "|".join(t.ids) + r")\b")
        return any(named.search(p) for p in problems)
    for p in problems:
        for row_id in t.ids:
            if not p.startswith(f"{t.table} {row_id}: "):
                continue
            if t.op != "change" or len(t.ids) > 1:
                return True
            found = _DIFFERS.search(p)
            if found and t.column in found.group(1).split(", "):
                return True
    return False


# -- trials -------------------------------------------------------------------------------------


class SqliteTrials:
    """Trials on copies of the built file ``template`` at ``work``.

    The engines live across trials, so SQLAlchemy compiles each statement once; their
    connections are closed before every copy.
    """

    def __init__(self, template: Path, work: Path) -> None:
        self.template, self.work = template, work
        self._copy()
        self.engine = make_engine(f"sqlite:///{work}")
        self.db = Database(str(work))
        with self.engine.connect() as conn:
            self.rows = read_rows(conn)

    def _copy(self) -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)
        for suffix in ("", "-wal"):
            if Path(f"{self.template}{suffix}").exists():
                shutil.copyfile(f"{self.template}{suffix}", f"{self.work}{suffix}")

    def __call__(
        self, choose: Chooser, *, table: str | None = None, op: str | None = None
    ) -> tuple[Tampering | None, list[str]]:
        """Commit one tampering to a fresh copy, then verify it as ``audit verify`` would."""
        self.engine.dispose()
        self.db.engine.dispose()
        self._copy()
        with self.engine.connect() as conn:
            driver = conn.connection.driver_connection
            # As the sqlite3 shell starts: foreign keys not enforced (set outside a
            # transaction). A scratch copy needs no fsync.
            driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            driver.execute("PRAGMA synchronous=OFF")  # type: ignore[union-attr]
            with conn.begin():
                done = tamper(conn, choose, conn.begin_nested, self.rows, table=table, op=op)
        self.engine.dispose()
        with self.db.read() as session:
            problems = verify(session).problems
        return done, problems

    def close(self) -> None:
        self.engine.dispose()
        self.db.engine.dispose()


class PgTrials:
    """Trials on the built PostgreSQL database at ``url``, each in a transaction rolled back."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        with self.engine.connect() as conn:
            self.rows = read_rows(conn)

    def __call__(
        self, choose: Chooser, *, table: str | None = None, op: str | None = None
    ) -> tuple[Tampering | None, list[str]]:
        """Tamper inside a transaction, verify on that connection, roll back."""
        with self.engine.connect() as conn:
            outer = conn.begin()
            try:
                # The server audits every write and refuses edits of the log (migration 0006):
                # the tamperer here is a superuser who switched the triggers off first.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                done = tamper(conn, choose, conn.begin_nested, self.rows, table=table, op=op)
                with Session(bind=conn) as session:
                    problems = verify(session).problems
            finally:
                outer.rollback()
        return done, problems

    def close(self) -> None:
        self.engine.dispose()


def _head(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as session:
            return session.scalar(select(AuditHead.seq)) or 0
    finally:
        db.dispose()


def run(target: str, trials: int, patients: int, seed: int, keep: bool = False) -> bool:
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    refused = 0
    missed: list[tuple[Tampering, list[str]]] = []
    started = time.perf_counter()
    is_pg = "://" in target and not target.startswith("sqlite")
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tamper-")))
        if is_pg:
            url = stack.enter_context(fresh_schema(target, "tamper", keep=keep))
        else:
            url = str(Path(target).resolve())
            for suffix in ("", "-wal", "-shm"):
                Path(f"{url}{suffix}").unlink(missing_ok=True)
        build(url, patients)
        print(f"built in {time.perf_counter() - started:.1f} s; head at entry {_head(url)}")
        trial = PgTrials(url) if is_pg else SqliteTrials(Path(url), scratch / "trial.db")
        stack.callback(trial.close)
        for n in range(trials):
            done, problems = trial(rng)
            if done is None:
                refused += 1
                continue
            tally[done.kind] += 1
            if reported(done, problems):
                caught[done.kind] += 1
            else:
                missed.append((done, problems))
            if (n + 1) % 100 == 0:
                print(f"  {n + 1} trials, {sum(caught.values())}/{sum(tally.values())} caught")
    seconds = time.perf_counter() - started
    print(
        f"{sum(tally.values())} tamperings in {seconds:.1f} s ({refused} refused by the database)"
    )
    for kind in sorted(tally):
        print(f"  {kind:<28} {caught[kind]:>4} / {tally[kind]:<4} detected")
    for done, problems in missed[:20]:
        print(f"MISSED {done.what}: verify said {problems[:3] or 'nothing'}")
    ok = not missed
    print("all detected" if ok else f"{len(missed)} tampering(s) NOT detected")
    return ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability.tamper", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--db", required=True, help="SQLite file to build (replaced) or a postgresql:// URL"
    )
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args(argv)
    sys.exit(0 if run(args.db, args.trials, args.patients, args.seed, args.keep) else 1)


if __name__ == "__main__":
    main()
