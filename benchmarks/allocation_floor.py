"""Allocation transactions vs the physical floor: the same rows, durably, with bare ``sqlite3``.

    python -m benchmarks.allocation_floor [--patients N] [--quick] [--chunk 25] [--profile]
                                          [--profile-patients 200] [--rebuild] [--dir DIR]

Measured: ``services.allocation.allocate_patient`` for N NATARS-R patients (minimization), one
call per patient, each its own transaction: enrol (study id, consent) + allocate (position,
minimization over the trial's history) + plan and store the calendar (capacity read included) +
the audit entries and head. Screening is **not** timed: in real life it is a separate, earlier
transaction (``services.screening.screen``). The screened database is built once per (N, seed,
schema, protocols) and kept in the cache directory; each run starts from a copy. Allocation
dates are spread over the two years before a fixed day, in order, as a trial accrues.

Baseline (the floor): every row each allocation transaction inserted or updated is read back
from the engine's database (enrolments, the patient's study id, allocations, scheduled events,
audit entries, the audit head; found through the transaction's audit entries), and the identical
rows are written by the stdlib ``sqlite3`` module, ``executemany`` per table, in one durable
transaction per patient (``BEGIN IMMEDIATE`` .. ``COMMIT``) into a second copy of the same
screened database: same schema, indexes, foreign keys, data and pragmas. Both sides use what
``db.engine`` sets on every connection: ``journal_mode=WAL`` with ``synchronous=FULL`` (a commit
waits for the WAL's fsync; nothing needs forcing), ``foreign_keys=ON``. The two sides alternate
in runs of ``--chunk`` transactions (the floor replays a run right after the engine wrote it), so
both meet the same machine load. At the end the two databases must hold identical rows, table
by table.

Ratio = engine time / floor time (lower is better; the issue's target is at most 3). The floor is
the cost of the I/O alone; the gap is the engine's own work (planning, ORM, audit hashing).
``--profile`` then runs the engine side again on a fresh copy under cProfile (profiling slows
it, so that run is not the one timed) and prints where its time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import json
import os
import pstats
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event

from benchmarks._table import header, row

__all__ = ["LAST_DAY", "SECRET", "TRIAL", "cohort", "main"]

TARGET = 3.0
TRIAL = "NATARS-R"
ACTOR = "benchmark"
LAST_DAY = dt.date(2026, 11, 2)
# A fixed, public key: never a real trial's secret.
SECRET = hashlib.sha256(b"sarcoma-sched allocation floor benchmark").digest()
HISTOLOGIES = ("DDLPS", "DDLPS", "DDLPS", "LMS", "LMS", "UPS", "SFT")


@dataclass
class Prepared:
    """A database with N screened, not yet allocated patients, and a copy of it."""

    directory: Path
    start_file: Path  # the screened database, never written to
    patients: list[tuple[str, dt.date]]  # screening number, allocation date
    sites: list[str]


@dataclass
class Txn:
    """What one allocation transaction wrote, as stored: per table, the rows in column order."""

    inserts: dict[str, list[tuple]] = field(default_factory=dict)
    updates: dict[str, list[tuple]] = field(default_factory=dict)  # (non-key values..., key)
    head: tuple[int, str] = (0, "")


def cohort(n: int, seed: int) -> list[tuple[str, dt.date, dt.date, str, dict[str, str]]]:
    """(site, screened on, allocated on, sex, screening values), in allocation order."""
    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS
    from sarcoma_sched.protocol import find_protocol

    sites = [s.code for s in find_protocol(TRIAL).protocol.sites]
    rng = random.Random(seed)
    days = sorted(LAST_DAY - dt.timedelta(days=rng.randrange(730)) for _ in range(n))
    out = []
    for day in days:
        values = dict(ELIGIBLE_NATARS, age_years=str(rng.randint(18, 75)))
        values["histology"] = rng.choice(HISTOLOGIES)
        if values["histology"] == "SFT":
            values["sft_risk_score"] = str(rng.randint(6, 7))
        screened = day - dt.timedelta(days=rng.randint(1, 21))
        out.append((rng.choice(sites), screened, day, rng.choice(("female", "male")), values))
    return out


def _cache_file(n: int, seed: int) -> Path:
    from sarcoma_sched.db.migrate import head_revision
    from sarcoma_sched.protocol import list_protocols

    digest = hashlib.sha256(head_revision().encode())
    for loaded in list_protocols():
        digest.update(loaded.source.encode())
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    name = f"allocation-floor-{n}-{seed}-{digest.hexdigest()[:12]}.db"
    return Path(base) / "sarcoma-sched-benchmarks" / name


def _screened(n: int, seed: int, rebuild: bool) -> tuple[Path, list[str]]:
    """The screened database (cached: screening is set-up, and takes minutes on a busy
    machine), and the screening numbers in allocation order."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.protocols import initialize
    from sarcoma_sched.services.screening import screen

    file = _cache_file(n, seed)
    if file.exists() and not rebuild:
        with sqlite3.connect(file) as conn:
            numbers = [
                r[0]
                for r in conn.execute(
                    "SELECT screening_number FROM patients WHERE study_id IS NULL ORDER BY id"
                )
            ]
        if len(numbers) == n:
            return file, numbers
    file.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    building = file.with_name(file.name + ".building")
    building.unlink(missing_ok=True)
    db = Database(str(building), check_schema=False)

    # Set-up only: no fsync per screening. The timed engine never sees this connection.
    @event.listens_for(db.engine, "connect")
    def _no_sync(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    initialize(db, ACTOR)
    numbers = []
    for site, screened, _day, sex, values in cohort(n, seed):
        outcome = screen(db, ACTOR, TRIAL, site, values, screened_on=screened, sex=sex)
        numbers.append(outcome.screening_number)
    db.dispose()
    with sqlite3.connect(building) as src, sqlite3.connect(file) as dst:
        src.backup(dst)
    building.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return file, numbers


def _prepare(directory: Path, n: int, seed: int, rebuild: bool) -> Prepared:
    cached, numbers = _screened(n, seed, rebuild)
    start = directory / "start.db"
    _copy(cached, start)
    cases = cohort(n, seed)
    sites = sorted({c[0] for c in cases})
    return Prepared(
        directory, start, [(num, c[2]) for num, c in zip(numbers, cases, strict=True)], sites
    )


def _copy(source: Path, target: Path) -> None:
    # The backup API copies a consistent image, the WAL's committed frames included.
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


class _Engine:
    """The engine side: ``allocate_patient`` per patient, timed call by call."""

    def __init__(self, file: Path) -> None:
        from sarcoma_sched.db.session import Database

        self.db = Database(str(file))
        self.head = sqlite3.connect(file)
        self.per: list[float] = []

    def seq(self) -> int:
        return int(self.head.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()[0])

    def run(self, patients: Sequence[tuple[str, dt.date]]) -> list[int]:
        """Allocate; the audit head's seq after each transaction (read outside the clock)."""
        from sarcoma_sched.services.allocation import allocate_patient

        seqs = []
        for number, day in patients:
            t0 = time.perf_counter()
            allocate_patient(
                self.db,
                ACTOR,
                number,
                today=LAST_DAY,
                allocation_date=day,
                consent_date=day,
                secret=SECRET,
            )
            self.per.append(time.perf_counter() - t0)
            seqs.append(self.seq())
        return seqs

    def close(self) -> None:
        self.head.close()
        # dispose() may run ANALYZE (statistics refresh): after the clock, as in real use.
        self.db.dispose()


def _primary_keys(conn: sqlite3.Connection) -> dict[str, tuple[list[str], str]]:
    """table -> (columns in order, the single primary-key column)."""
    out = {}
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
        keys = [c[1] for c in info if c[5]]
        if len(keys) == 1:
            out[table] = ([c[1] for c in info], keys[0])
    return out


class _Capture:
    """Every row each allocation transaction wrote, read back from the engine's database.

    The audit entries of a transaction are those after the head before it up to the head after
    it; each names an audited row the transaction inserted or updated. A row written by two
    transactions would be read back in its final state only, so that is refused.
    """

    def __init__(self, file: Path, first_seq: int) -> None:
        from sarcoma_sched.db.models import Base

        self.order = [t.name for t in Base.metadata.sorted_tables]
        self.conn = sqlite3.connect(file)
        self.tables = _primary_keys(self.conn)
        self.owner: dict[tuple[str, str], int] = {}
        self.before = first_seq
        self.count = 0

    def read(self, seqs: Sequence[int]) -> list[Txn]:
        audit_cols = self.tables["audit_log"][0]
        txns = []
        for after in seqs:
            txn, i = Txn(), self.count
            entries = self.conn.execute(
                f"SELECT {', '.join(audit_cols)} FROM audit_log WHERE seq > ? AND seq <= ? "
                "ORDER BY seq",
                (self.before, after),
            ).fetchall()
            txn.inserts["audit_log"] = entries
            for entry in entries:
                e = dict(zip(audit_cols, entry, strict=True))
                key = (e["entity"], e["entity_id"])
                if self.owner.setdefault(key, i) != i:
                    raise SystemExit(f"{key} written by transactions {self.owner[key]} and {i}")
                cols, pk = self.tables[e["entity"]]
                stored = self.conn.execute(
                    f"SELECT {', '.join(cols)} FROM {e['entity']} WHERE {pk} = ?",
                    (e["entity_id"],),
                ).fetchone()
                kind = json.loads(e["change"])["op"]
                if kind == "insert":
                    txn.inserts.setdefault(e["entity"], []).append(stored)
                elif kind == "update":
                    values = dict(zip(cols, stored, strict=True))
                    txn.updates.setdefault(e["entity"], []).append(
                        (*(values[c] for c in cols if c != pk), values[pk])
                    )
                else:
                    raise SystemExit(f"unexpected audit op {kind!r} in an allocation")
            if entries:
                last = dict(zip(audit_cols, entries[-1], strict=True))
                txn.head = (last["seq"], last["hash"])
            # Parents before children, as the foreign keys need.
            txn.inserts = dict(sorted(txn.inserts.items(), key=lambda kv: self.order.index(kv[0])))
            txns.append(txn)
            self.before = after
            self.count += 1
        return txns

    def close(self) -> None:
        self.conn.close()


class _Floor:
    """The floor: the captured rows, ``executemany`` per table, one durable transaction each."""

    def __init__(self, file: Path, tables: dict[str, tuple[list[str], str]]) -> None:
        # Exactly what db.engine sets on each connection, and its own BEGIN IMMEDIATE.
        self.conn = sqlite3.connect(file, isolation_level=None, timeout=30)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.inserts = {
            t: f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for t, (cols, _) in tables.items()
        }
        self.updates = {
            t: f"UPDATE {t} SET {', '.join(f'{c} = ?' for c in cols if c != pk)} WHERE {pk} = ?"
            for t, (cols, pk) in tables.items()
        }
        self.seconds = 0.0

    def run(self, txns: Sequence[Txn]) -> None:
        conn = self.conn
        for txn in txns:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for table, rows in txn.updates.items():
                conn.executemany(self.updates[table], rows)
            for table, rows in txn.inserts.items():
                conn.executemany(self.inserts[table], rows)
            conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", txn.head)
            conn.execute("COMMIT")
            self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


def _compare(a: Path, b: Path) -> str | None:
    """None when every table holds the same rows, else the first difference."""
    ca, cb = sqlite3.connect(a), sqlite3.connect(b)
    try:
        for table, (cols, pk) in _primary_keys(ca).items():
            query = f"SELECT {', '.join(cols)} FROM {table} ORDER BY {pk}"
            ra, rb = ca.execute(query).fetchall(), cb.execute(query).fetchall()
            if ra != rb:
                pairs = zip([*ra, None], [*rb, None], strict=False)
                diff = next((x, y) for x, y in pairs if x != y)
                return f"{table}: {len(ra)} vs {len(rb)} rows; first difference {diff}"
        return None
    finally:
        ca.close()
        cb.close()


def _count_rows(txns: list[Txn]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for txn in txns:
        for table, rows in [*txn.inserts.items(), *txn.updates.items()]:
            counts[table] = counts.get(table, 0) + len(rows)
    counts["audit_head"] = len(txns)
    return counts


def _profile(prep: Prepared, n: int, top: int) -> None:
    file = prep.directory / "profiled.db"
    _copy(prep.start_file, file)
    engine = _Engine(file)
    profiler = cProfile.Profile()
    profiler.enable()
    engine.run(prep.patients[:n])
    profiler.disable()
    engine.close()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\nengine under cProfile ({n} transactions, {total:.1f} s profiled):")
    print(f"  top {top} by own time:")
    entries = stats.stats  # type: ignore[attr-defined]
    by_own = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    for (path, line, name), (_cc, calls, own, cum, _callers) in by_own:
        print(f"  {own:7.2f} s own {cum:7.2f} s cum {calls:>9} calls  {_where(path, line, name)}")
    print("  where an allocation's time goes (cumulative, overlapping):")
    parts = {
        "services.allocation.allocate_patient": ("services/allocation.py", "allocate_patient"),
        "calendar planning (plan_arm)": ("calendar/planner.py", "plan_arm"),
        "site_capacity (bookings read)": ("services/capacity.py", "site_capacity"),
        "trial_counts (the history's GROUP BY)": ("services/allocation_counts.py", "trial_counts"),
        "allocation.allocate_counted (minimization)": ("allocation/methods.py", "allocate_counted"),
        "store_plan (event rows)": ("services/schedules.py", "store_plan"),
        "Session.flush (SQL + audit hook)": ("orm/session.py", "flush"),
        "audit.record_flush (snapshots, hashes)": ("db/audit.py", "record_flush"),
        "audit.insert_audited (event rows + entries)": ("db/audit.py", "insert_audited"),
        "Session.commit (incl. fsync)": ("orm/session.py", "commit"),
        "sqlite3 commit (fsync)": ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    }
    for label, (suffix, func) in parts.items():
        cum = sum(
            v[3]
            for (path, _line, name), v in entries.items()
            if name == func and path.endswith(suffix)
        )
        print(f"  {cum:7.2f} s  {cum / total:6.1%}  {label}")


def _where(path: str, line: int, name: str) -> str:
    if path == "~":
        return name
    for marker in ("site-packages/", "sarcoma_sched/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) + (0 if marker == "sarcoma_sched/" else len(marker)) :]
            break
    return f"{path}:{line}({name})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.allocation_floor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--patients", type=int, default=None, help="transactions [1000]")
    parser.add_argument("--quick", action="store_true", help="200 transactions")
    parser.add_argument("--chunk", type=int, default=25, help="transactions per alternation")
    parser.add_argument("--profile", action="store_true", help="where the engine's time goes")
    parser.add_argument(
        "--profile-patients", type=int, default=200, help="transactions profiled [200]"
    )
    parser.add_argument("--top", type=int, default=10, help="rows of the profile")
    parser.add_argument("--seed", type=int, default=20261102)
    parser.add_argument("--rebuild", action="store_true", help="screen the patients again")
    parser.add_argument("--dir", help="directory for the databases [a temporary one, removed]")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args(argv)
    n = args.patients or (200 if args.quick else 1000)
    if n < 1 or args.chunk < 1:
        parser.error("--patients and --chunk: at least 1")

    directory = Path(tempfile.mkdtemp(prefix="allocation-floor-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        prep = _prepare(directory, n, args.seed, args.rebuild)
        engine_file, floor_file = directory / "engine.db", directory / "floor.db"
        _copy(prep.start_file, engine_file)
        _copy(prep.start_file, floor_file)
        print(
            f"allocation floor: {n} {TRIAL} patients screened over {len(prep.sites)} sites "
            f"(set-up, not timed: {time.perf_counter() - t0:.1f} s; cached in "
            f"{_cache_file(n, args.seed).parent}); databases in {directory}"
        )
        print(
            "both sides: journal_mode=WAL + synchronous=FULL (what db.engine sets), "
            f"foreign_keys=ON, one BEGIN IMMEDIATE..COMMIT per patient; alternating in runs of "
            f"{args.chunk} transactions so both see the same machine load"
        )
        engine = _Engine(engine_file)
        capture = _Capture(engine_file, engine.seq())
        floor = _Floor(floor_file, capture.tables)
        txns: list[Txn] = []
        for start in range(0, n, args.chunk):
            seqs = engine.run(prep.patients[start : start + args.chunk])
            # Read back outside the clock, before any later transaction could touch the rows.
            done = capture.read(seqs)
            floor.run(done)
            txns += done
        engine.close()
        capture.close()
        floor.close()
        problem = _compare(engine_file, floor_file)

        engine_s, floor_s = sum(engine.per), floor.seconds
        ratio = engine_s / floor_s
        header()
        row(
            "allocation txn (enrol+allocate+plan+audit)",
            f"{n / engine_s:.1f} txn/s",
            f"{n / floor_s:.1f} txn/s",
            ratio,
            target=f"<= {TARGET:g}",
            met=ratio <= TARGET,
        )
        counts = _count_rows(txns)
        ordered = sorted(engine.per)
        print(
            f"  engine {engine_s / n * 1e3:.2f} ms/txn (median {ordered[n // 2] * 1e3:.2f}, "
            f"p95 {ordered[min(n - 1, n * 95 // 100)] * 1e3:.2f}); floor "
            f"{floor_s / n * 1e3:.2f} ms/txn"
        )
        print(
            f"  {sum(counts.values()) / n:.1f} rows written per txn: "
            + ", ".join(f"{t} {c}" for t, c in counts.items())
        )
        verdict = "meets" if ratio <= TARGET else "misses"
        print(f"  ratio engine/floor {ratio:.2f}: {verdict} the target of at most {TARGET:g}")
        print(
            "  floor database identical to the engine's: "
            + ("yes, every table row for row" if problem is None else f"NO: {problem}")
        )
        if args.profile:
            _profile(prep, min(n, args.profile_patients), args.top)
        if problem is not None:
            raise SystemExit(1)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
