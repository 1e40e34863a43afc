"""A coordinators' day on one database: N processes of the realistic mix against 1.

    python -m benchmarks.mix [--backend postgresql|sqlite] [--pg-url URL] [--workers 8]
                             [--also 2] [--minutes 5] [--patients 1400] [--seed K] [--quick]
                             [--keep-network]

Each coordinator process does, per simulated minute, the mix of issue 24 item 3, interleaved at
random (its own seed), closed-loop (no think time: a minute is compressed into however long its
work takes):

* 1 allocation: ``services.screening.screen`` of a new eligible NATARS-R patient at its site,
  then ``services.allocation.allocate_patient`` (consent, minimization, calendar): two write
  transactions, timed as one operation;
* 20 records: ``services.events.record_event`` of a due event of one of its site's patients
  (done on its planned first day, or one in ten missed), each patient's events in date order;
* 100 reads, one of ``visits`` (this week, its site), ``overdue`` (its site) and ``schedule``
  (a patient of its site) chosen at random, each the commands' own SQL text (``db.rows``) on
  a pooled ``db.reader.CoreReader`` connection (a command opens its own with the driver,
  ``db.quick_open``; the pool keeps connecting out of the figure).

The database: ``benchmarks.network`` builds ``--patients`` allocated patients with their
calendars on the seven NATARS-R sites (and TNT-STS's one) as of ``DUE_DAYS`` days ago, so the
events of the last months are due and unrecorded; every run starts from its own copy (a fresh
PostgreSQL schema from ``benchmarks._pg``, dropped afterwards, or a copied SQLite file). With
``--keep-network`` (and ``--quick``) the built network itself is kept as a schema named by what
it is built from, and later runs copy it instead of building it again. Runs:
``--workers`` processes (worker i at NATARS-R site i mod 7; two at one site take alternate
patients), ``--also`` processes (the CPU bound, below), and one process at the median site
alone, each process doing ``--minutes`` minutes. All processes of a run are started, import and
connect, then are released at one instant.

Throughput = all operations / (last process's end - the common start). Ratio = throughput with N
processes / with one (the issue's target: at least 4 with 8). Per kind: p50/p95 latency.

Per write transaction, measured in the benchmark by subclassing ``Database`` and listening to
its engine (``sarcoma_sched`` is not changed): *lock wait* is the round trip of the statement
that takes the serial lock (``SELECT sarcoma_begin_write(..)`` on PostgreSQL, which locks the
audit chain's head row until commit; ``BEGIN IMMEDIATE`` on SQLite); *lock held* runs from that
statement's return to the end of the commit, split into the SQL statements' round trips (the
server's audit triggers run inside them), the commit itself and the client's own work between
statements (Python: ORM, planning, eligibility).

Two ceilings on the ratio, both from the one-process run: the *lock* ceiling (wall time / time
the lock was held: with the lock held back to back by N processes, no more is possible) and the
*CPU* ceiling (the machine's cores / the CPU seconds per second the run used, the process's own
plus its PostgreSQL backends', read from /proc: N processes cannot do more work than the cores
give, and this machine's other users take their share of those too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._pg import fresh_schema, kept_schema
from benchmarks._table import header, row

__all__ = ["main"]

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TRIAL = "NATARS-R"
ACTOR = "benchmark"
TARGET = 4.0
ALLOCATIONS, RECORDS, READS = 1, 20, 100  # per coordinator and simulated minute
P_MISSED = 0.1
DUE_DAYS = 120  # the network is built as of this many days ago: its recent events are due
READ_KINDS = ("visits", "overdue", "schedule")
KINDS = ("allocate", "record", *READ_KINDS)
# One day before the machine's date: a screening may not be later than today at the site, and
# the sites' zone may be behind the machine's.
TODAY = dt.date.today() - dt.timedelta(days=1)


# -- inside a coordinator process ---------------------------------------------------------------

_LOCK_SQL = re.compile(r"sarcoma_begin_write|^\s*BEGIN IMMEDIATE", re.IGNORECASE)
_STATEMENT = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\b(?:.*?\bFROM\s+)?\s*\"?(\w+)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass
class _Tx:
    """One write transaction's instants (perf_counter) and its statements inside the lock."""

    action: str
    called: float
    asked: float = 0.0
    locked: float = 0.0
    committing: float = 0.0
    sql: float = 0.0
    count: int = 0
    cpu: float = 0.0
    statements: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    phases: dict[str, float] = field(default_factory=lambda: defaultdict(float))


# What the services call inside their write transaction, timed by wrapping the names in the
# services' modules (each call's own time only: a phase inside another pauses it).
PHASES = {
    "sarcoma_sched.services.allocation": {
        "_allocation_state": "find patient+enrolment",
        "enroll_row": "enrol",
        "protocol_version": "protocol",
        "commit_key": "trial key",
        "may_read": "privilege check",
        "trial_counts": "history counts",
        "allocate_counted": "draw",
        "insert_audited": "write allocation",
        "site_calendar": "site calendar",
        "site_capacity": "capacity read",
        "plan_arm": "plan (pure)",
        "store_plan": "store plan",
    },
    "sarcoma_sched.services.events": {
        "_locate": "find patient+events",
        "protocol_version": "protocol",
        "site_calendar": "site calendar",
        "site_capacity": "capacity read",
        "plan_arm": "plan (pure)",
        "apply_plan": "apply plan",
        "_check_not_before_study": "date check",
        "_outcome": "outcome",
    },
    "sarcoma_sched.services.screening": {
        "screen_in": "screen (all)",
    },
}


class _Probe:
    """Listens to a coordinator's engines: the lock statement, the statements under the lock,
    the commit, and each connection's server process (for its CPU time)."""

    def __init__(self) -> None:
        self.tx: _Tx | None = None
        self.done: list[dict[str, Any]] = []
        self.statements: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.phases: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.backends: set[int] = set()
        self._t0 = 0.0
        self._stack: list[list[Any]] = []

    def wrap_services(self) -> None:
        import importlib

        from sqlalchemy import event

        from sarcoma_sched.db.session import AuditedSession

        for module_name, names in PHASES.items():
            module = importlib.import_module(module_name)
            for name, phase in names.items():
                setattr(module, name, self._timed(getattr(module, name), phase))
        # Flushes (the ORM's INSERTs and UPDATEs, and on SQLite the audit hook) are a phase of
        # their own, whichever call triggered them.
        event.listen(AuditedSession, "before_flush", lambda *_a: self._enter("flush"))
        event.listen(AuditedSession, "after_flush_postexec", lambda *_a: self._leave())

    def _timed(self, function: Any, phase: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._enter(phase)
            try:
                return function(*args, **kwargs)
            finally:
                self._leave()

        return timed

    def _enter(self, phase: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self._charge(self._stack[-1], now)
        self._stack.append([phase, now])

    def _leave(self) -> None:
        if not self._stack:
            return
        now = time.perf_counter()
        self._charge(self._stack.pop(), now)
        if self._stack:
            self._stack[-1][1] = now

    def _charge(self, entry: list[Any], now: float) -> None:
        tx = self.tx
        if tx is not None and tx.locked and not tx.committing:
            tx.phases[entry[0]] += now - max(entry[1], tx.locked)
        entry[1] = now

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._backend)

    def _backend(self, dbapi_connection: Any, _record: object) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backends.add(int(cursor.fetchone()[0]))
        dbapi_connection.rollback()

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._t0 = time.perf_counter()
        if self.tx is not None and _LOCK_SQL.search(statement):
            self.tx.asked = self._t0

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        now = time.perf_counter()
        tx = self.tx
        if tx is None:
            return
        if tx.asked and not tx.locked:
            if _LOCK_SQL.search(statement):
                tx.locked = now
                tx.cpu = time.process_time()
            return
        if tx.locked and not tx.committing:
            tx.sql += now - self._t0
            tx.count += 1
            match = _STATEMENT.match(statement)
            key = f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else "other"
            tx.statements[key] += now - self._t0

    def _commit(self, _conn: Any) -> None:
        if self.tx is not None and self.tx.locked:
            self.tx.committing = time.perf_counter()

    def begin(self, action: str) -> None:
        self.tx = _Tx(action, time.perf_counter())
        self._stack.clear()  # a flush that raised never said it ended

    def end(self, ok: bool) -> None:
        tx, self.tx = self.tx, None
        now = time.perf_counter()
        if tx is None or not tx.locked:
            return
        self.done.append(
            {
                "action": tx.action.split()[0],
                "ok": ok,
                "total": now - tx.called,
                "wait": tx.locked - tx.asked,
                "held": now - tx.locked,
                "sql": tx.sql,
                "statements": tx.count,
                "commit": (now - tx.committing) if tx.committing else 0.0,
                "cpu": time.process_time() - tx.cpu,
            }
        )
        for key, seconds in tx.statements.items():
            self.statements[tx.action.split()[0]][key] += seconds
        for key, seconds in tx.phases.items():
            self.phases[tx.action.split()[0]][key] += seconds


def _timed_database(url: str, probe: _Probe) -> Any:
    from sarcoma_sched.db.session import Database

    class TimedDatabase(Database):
        """``Database`` whose write transactions are timed by ``probe``: the ``with`` block's
        end is the end of the commit (the session is only closed after it)."""

        @contextmanager
        def write(self, actor: str, action: str) -> Iterator[Any]:
            probe.begin(action)
            ok = False
            try:
                with super().write(actor, action) as session:
                    yield session
                ok = True
            finally:
                probe.end(ok)

    return TimedDatabase(url, busy_timeout_ms=60_000)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the backend has gone, or another machine's
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ops(rng: random.Random, minutes: int) -> list[str]:
    out: list[str] = []
    for _ in range(minutes):
        minute = ["allocate"] * ALLOCATIONS + ["record"] * RECORDS
        minute += [rng.choice(READ_KINDS) for _ in range(READS)]
        rng.shuffle(minute)
        out += minute
    return out


def _due(session: Any, site: str, rank: int, sharers: int) -> list[tuple[str, str, dt.date]]:
    """(study id, event, first day) of the site's planned events due by TODAY, of this
    coordinator's patients, each patient's in date order, patients taken in turn."""
    from sqlalchemy import select

    from sarcoma_sched.db.models import Patient, ScheduledEvent

    rows = session.execute(
        select(Patient.id, Patient.study_id, ScheduledEvent.event_id, ScheduledEvent.first_day)
        .join(ScheduledEvent, ScheduledEvent.patient_id == Patient.id)
        .where(
            Patient.site_code == site,
            Patient.protocol_id.in_(("NATARS", TRIAL)),
            ScheduledEvent.status == "planned",
            ScheduledEvent.first_day <= TODAY,
        )
        .order_by(Patient.id, ScheduledEvent.first_day, ScheduledEvent.id)
    )
    queues: dict[int, list[tuple[str, str, dt.date]]] = {}
    for patient_id, study_id, event_id, first_day in rows:
        if patient_id % sharers == rank:
            queues.setdefault(patient_id, []).append((study_id, event_id, first_day))
    out = []
    lists = list(queues.values())
    while lists:
        out += [q.pop(0) for q in lists]
        lists = [q for q in lists if q]
    return out


def worker(config: dict[str, Any]) -> None:
    """One coordinator: prepares, says ``ready``, waits for the start instant, runs its ops and
    prints what it measured as one JSON line."""
    from sqlalchemy import select

    from benchmarks.network import HISTOLOGIES, SECRET
    from sarcoma_sched.db.models import Patient
    from sarcoma_sched.db.reader import CoreReader
    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS
    from sarcoma_sched.errors import SarcomaSchedError
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.events import record_event
    from sarcoma_sched.services.queries import overdue, patient_schedule, visits
    from sarcoma_sched.services.screening import screen

    url, site = config["url"], config["site"]
    probe = _Probe()
    db = _timed_database(url, probe)
    reader = CoreReader(url)
    probe.attach(db.engine)
    probe.attach(reader.engine)
    probe.wrap_services()
    rng = random.Random(config["seed"])
    ops = _ops(rng, config["minutes"])
    with db.read() as session:
        patients = list(
            session.scalars(
                select(Patient.study_id).where(
                    Patient.site_code == site, Patient.study_id.is_not(None)
                )
            )
        )
        due = _due(session, site, config["rank"], config["sharers"])
    need = ops.count("record")
    if len(due) < need:
        raise SystemExit(
            f"error: {site} has {len(due)} due events for this coordinator, {need} needed: "
            "give more --patients or fewer --minutes"
        )

    def read(kind: str) -> None:
        with reader.read() as connection:
            if kind == "schedule":
                patient_schedule(connection, rng.choice(patients))
            elif kind == "visits":
                visits(connection, TODAY, TODAY + dt.timedelta(days=6), site=site)
            else:
                overdue(connection, TODAY, site=site)

    def allocate() -> None:
        values = dict(ELIGIBLE_NATARS, age_years=str(rng.randint(18, 75)))
        values["histology"] = rng.choice(HISTOLOGIES)
        if values["histology"] == "SFT":
            values["sft_risk_score"] = str(rng.randint(6, 7))
        sex = rng.choice(("female", "male"))
        screened = screen(db, ACTOR, TRIAL, site, values, screened_on=TODAY, sex=sex)
        allocate_patient(
            db,
            ACTOR,
            screened.screening_number,
            today=TODAY,
            allocation_date=TODAY,
            consent_date=TODAY,
            secret=SECRET,
        )

    def record() -> None:
        study_id, event_id, first_day = due.pop(0)
        missed = rng.random() < P_MISSED
        record_event(
            db,
            ACTOR,
            study_id,
            event_id,
            "missed" if missed else "done",
            date=None if missed else first_day,
            reason=None,
            today=TODAY,
        )

    for kind in READ_KINDS:  # imports and first-use caches, as a coordinator's first command
        read(kind)
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    backends = {pid: _cpu_seconds(pid) for pid in probe.backends}
    cpu0 = time.process_time()
    done: list[tuple[str, float, bool]] = []
    refused: dict[str, str] = {}
    for kind in ops:
        t0 = time.perf_counter()
        ok = True
        try:
            if kind == "allocate":
                allocate()
            elif kind == "record":
                record()
            else:
                read(kind)
        except SarcomaSchedError as exc:  # a refusal is an answer the coordinator waited for
            ok = False
            refused.setdefault(kind, f"{exc.__class__.__name__}: {exc}"[:200])
        done.append((kind, time.perf_counter() - t0, ok))
    end = time.time()
    client_cpu = time.process_time() - cpu0
    server_cpu = sum(_cpu_seconds(pid) - backends.get(pid, 0.0) for pid in probe.backends)
    db.dispose()
    reader.dispose()
    result = {
        "end": end,
        "ops": done,
        "txs": probe.done,
        "statements": probe.statements,
        "phases": probe.phases,
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
        "refused": refused,
    }
    print(json.dumps(result))


# -- the runner ---------------------------------------------------------------------------------


@dataclass
class Run:
    workers: int
    sites: list[str]
    seconds: float = 0.0
    ops: list[tuple[str, float, bool]] = field(default_factory=list)
    txs: list[dict[str, Any]] = field(default_factory=list)
    statements: dict[str, dict[str, float]] = field(default_factory=dict)
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    refused: dict[str, str] = field(default_factory=dict)
    load: str = ""
    checks: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def rate(self) -> float:
        return len(self.ops) / self.seconds


def _sites() -> list[str]:
    from sarcoma_sched.protocol import find_protocol

    return [s.code for s in find_protocol(TRIAL).protocol.sites]


def _median_site(url: str, sites: list[str]) -> str:
    from sqlalchemy import func, select

    from sarcoma_sched.db.models import Patient
    from sarcoma_sched.db.session import Database

    db = Database(url)
    try:
        with db.read() as session:
            counts = dict(
                session.execute(
                    select(Patient.site_code, func.count())
                    .where(Patient.study_id.is_not(None))
                    .group_by(Patient.site_code)
                ).all()
            )
    finally:
        db.dispose()
    ranked = sorted(sites, key=lambda s: (counts.get(s, 0), s))
    return ranked[len(ranked) // 2]


def _run(url: str, sites: list[str], minutes: int, seed: int) -> Run:
    """One process per entry of ``sites`` (a site twice: alternate patients each)."""
    run = Run(len(sites), sites)
    configs = []
    for w, site in enumerate(sites):
        sharers = sites.count(site)
        rank = sites[:w].count(site)
        configs.append(
            {
                "url": url,
                "site": site,
                "rank": rank,
                "sharers": sharers,
                "minutes": minutes,
                "seed": seed * 1000 + w,
            }
        )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.mix", "--worker", json.dumps(c)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    for w, proc in enumerate(procs):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            for other in procs:
                other.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"error: worker {w} did not start: {(line + err).strip()[-600:]}")
    start_at = time.time() + 0.5
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n")
        proc.stdin.flush()
    ends = []
    statements: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    phases: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for w, proc in enumerate(procs):
        out, err = proc.communicate()
        if proc.returncode != 0:
            run.ok = False
            run.checks.append(f"worker {w} exit {proc.returncode}: {err.strip()[-600:]}")
            continue
        result = json.loads(out.strip().splitlines()[-1])
        ends.append(result["end"])
        run.ops += [(kind, seconds, ok) for kind, seconds, ok in result["ops"]]
        run.txs += result["txs"]
        run.client_cpu += result["client_cpu"]
        run.server_cpu += result["server_cpu"]
        run.refused.update(result["refused"])
        for action, keys in result["statements"].items():
            for key, seconds in keys.items():
                statements[action][key] += seconds
        for action, keys in result["phases"].items():
            for key, seconds in keys.items():
                phases[action][key] += seconds
    run.statements = {a: dict(k) for a, k in statements.items()}
    run.phases = {a: dict(k) for a, k in phases.items()}
    run.seconds = (max(ends) - start_at) if ends else float("nan")
    run.load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return run


def _verify(url: str, run: Run, before: int) -> None:
    """Positions still 1..n without gap or duplicate, one allocation per allocate op, and the
    audit chain intact: concurrency changed nothing it must not."""
    from sqlalchemy import select

    from sarcoma_sched.db.audit import verify
    from sarcoma_sched.db.models import Allocation
    from sarcoma_sched.db.session import Database

    db = Database(url)
    try:
        with db.read() as session:
            positions = list(
                session.scalars(
                    select(Allocation.position)
                    .where(Allocation.protocol_id == TRIAL)
                    .order_by(Allocation.position)
                )
            )
            audit = verify(session)
    finally:
        db.dispose()
    made = sum(1 for kind, _s, ok in run.ops if kind == "allocate" and ok)
    gapless = positions == list(range(1, len(positions) + 1))
    counted = len(positions) == before + made
    run.checks.append(
        f"{TRIAL} positions 1..{len(positions)}: "
        + ("no gap, no duplicate" if gapless else "PROBLEM: gap or duplicate")
        + f"; {made} new allocations"
        + ("" if counted else f" PROBLEM: {len(positions) - before} rows")
    )
    run.checks.append(
        f"audit verify: {audit.entries} entries, "
        + ("chain and rows ok" if audit.ok else f"PROBLEM: {audit.problems[:3]}")
    )
    run.ok &= gapless and counted and audit.ok


def _allocations(url: str) -> int:
    from sqlalchemy import func, select

    from sarcoma_sched.db.models import Allocation
    from sarcoma_sched.db.session import Database

    db = Database(url)
    try:
        with db.read() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Allocation)
                    .where(Allocation.protocol_id == TRIAL)
                )
                or 0
            )
    finally:
        db.dispose()


def _build(url: str, patients: int, seed: int) -> None:
    from benchmarks.network import build_network

    build_network(
        url,
        patients,
        sites=8,
        seed=seed,
        as_of=TODAY - dt.timedelta(days=DUE_DAYS),
        jobs=os.cpu_count() or 1,
        progress=lambda _line: None,
    )


def _pg_copy(base: str, source_url: str, target_url: str) -> None:
    """``target`` (a fresh schema) gets the schema by migration (its functions name their own
    schema) and then every row of ``source``, with triggers off so the copy adds no audit
    entries (session_replication_role: a superuser's setting, as the benchmark's login is)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from sarcoma_sched.db.migrate import upgrade
    from sarcoma_sched.db.session import Database

    db = Database(target_url, check_schema=False)
    upgrade(db.engine)
    db.dispose()

    def schema(url: str) -> str:
        options = str(make_url(url).query["options"])
        return options.split("search_path=", 1)[1]

    source, target = schema(source_url), schema(target_url)
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        tables = list(
            conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = :s AND table_type = 'BASE TABLE'"
                ),
                {"s": source},
            )
        )
        for table in tables:
            conn.execute(text(f'DELETE FROM {target}."{table}"'))
            conn.execute(text(f'INSERT INTO {target}."{table}" SELECT * FROM {source}."{table}"'))
        serials = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = :s "
                "AND pg_get_serial_sequence(quote_ident(:s) || '.' || quote_ident(table_name), "
                "column_name) IS NOT NULL"
            ),
            {"s": target},
        ).all()
        for table, column in serials:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{target}.{table}', '{column}'), "
                    f"coalesce((SELECT max({column}) FROM {target}.{table}), 0) + 1, false)"
                )
            )
    engine.dispose()


def _kept_template(pg_url: str, patients: int, seed: int) -> str:
    """The seeded network as a schema kept between runs (``--keep-network``, which ``--quick``
    implies): building it is most of the set-up. Named by all it is built from (size, seed, the
    as-of day, the schema revision, a digest of the code that builds it), so a changed input
    builds another; a kept one of another name is dropped when a new one is built."""
    import hashlib

    from benchmarks import network
    from sarcoma_sched.db.revision import SCHEMA_REVISION

    code = hashlib.sha256()
    for module in (network, sys.modules[__name__]):
        code.update(Path(str(module.__file__)).read_bytes())
    day = (TODAY - dt.timedelta(days=DUE_DAYS)).strftime("%Y%m%d")
    name = f"bench_mix_kept_{patients}_{seed}_{day}_{SCHEMA_REVISION}_{code.hexdigest()[:8]}"
    url, build = kept_schema(pg_url, name, stale="bench\\_mix\\_kept\\_%")
    if build:
        _build(url, patients, seed)
    return url


@contextmanager
def _copies(
    backend: str, pg_url: str, patients: int, seed: int, n: int, *, keep: bool = False
) -> Iterator[list[str]]:
    """``n`` databases holding the same seeded network, removed afterwards (the template too,
    unless ``keep``: PostgreSQL only)."""
    with ExitStack() as stack:
        if backend == "postgresql":
            if keep:
                template = _kept_template(pg_url, patients, seed)
            else:
                template = stack.enter_context(fresh_schema(pg_url, "bench_mix"))
                _build(template, patients, seed)
            urls = [stack.enter_context(fresh_schema(pg_url, "bench_mix")) for _ in range(n)]
            for url in urls:
                _pg_copy(pg_url, template, url)
        else:
            where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mix-")))
            template = str(where / "network.db")
            _build(template, patients, seed)
            urls = []
            for i in range(n):
                target = where / f"run{i}.db"
                with sqlite3.connect(template) as src, sqlite3.connect(target) as dst:
                    src.backup(dst)
                urls.append(str(target))
        yield urls


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _ms(values: Sequence[float]) -> str:
    return f"p50 {_pct(values, 0.5) * 1e3:.1f} p95 {_pct(values, 0.95) * 1e3:.1f} ms"


def _report(runs: list[Run], backend: str, cores: int) -> None:
    one = next(r for r in runs if r.workers == 1)
    many = max(runs, key=lambda r: r.workers)
    header()
    for run in sorted(runs, key=lambda r: -r.workers):
        if run is one:
            continue
        ratio = run.rate / one.rate
        row(
            f"{backend} mix ops/s, {run.workers} processes vs 1",
            f"{run.rate:.0f}/s",
            f"{one.rate:.0f}/s",
            ratio,
            target=f">= {TARGET:g}x" if run is many else None,
            met=ratio >= TARGET if run is many else None,
        )
    held = sum(t["held"] for t in one.txs)
    lock_ceiling = one.seconds / held if held else float("inf")
    row(
        f"{backend} lock ceiling (1 process)",
        f"{len(one.ops) / held:.0f}/s",
        f"{one.rate:.0f}/s",
        lock_ceiling,
    )
    used = (one.client_cpu + one.server_cpu) / one.seconds
    cpu_ceiling = cores / used if used else float("inf")
    row(
        f"{backend} CPU ceiling ({cores} cores)",
        f"{one.rate * cpu_ceiling:.0f}/s",
        f"{one.rate:.0f}/s",
        cpu_ceiling,
    )
    print(
        f"  machine: {cores} cores (os.cpu_count); the runs' load averages (1, 5, 15 min): "
        + "; ".join(f"{r.workers} proc. {r.load}" for r in runs)
    )
    print(
        f"  1 process used {used:.2f} CPU-seconds per second ({one.client_cpu / one.seconds:.2f} "
        f"its own, {one.server_cpu / one.seconds:.2f} its server backends, none on SQLite): "
        f"{cores} cores allow "
        f"at most {cpu_ceiling:.1f}x its throughput, whatever N, and less while other work "
        f"shares the machine; the lock, held {held / one.seconds:.0%} of its wall time, allows "
        f"at most {lock_ceiling:.1f}x"
    )
    for run in sorted(runs, key=lambda r: -r.workers):
        per_op = (run.client_cpu + run.server_cpu) / len(run.ops) * 1e3
        print(
            f"\n  {run.workers} process(es) at {', '.join(sorted(set(run.sites)))}: "
            f"{len(run.ops)} ops in {run.seconds:.1f} s = {run.rate:.0f}/s; CPU {per_op:.1f} ms "
            f"per op (client {run.client_cpu:.1f} s, server {run.server_cpu:.1f} s)"
        )
        for kind in KINDS:
            lat = [s for k, s, _ok in run.ops if k == kind]
            bad = sum(1 for k, _s, ok in run.ops if k == kind and not ok)
            note = f", {bad} refused ({run.refused.get(kind, '')[:90]})" if bad else ""
            print(f"    {kind:<9} {len(lat):>6} ops  {_ms(lat)}{note}")
        for action in ("screen", "allocate", "record"):
            txs = [t for t in run.txs if t["action"] == action]
            if not txs:
                continue
            total = sum(t["total"] for t in txs)
            hold = sum(t["held"] for t in txs)
            sql = sum(t["sql"] for t in txs)
            commit = sum(t["commit"] for t in txs)
            cpu = sum(t["cpu"] for t in txs)
            count = sum(t["statements"] for t in txs) / len(txs)
            print(
                f"    {action} tx: lock wait {_ms([t['wait'] for t in txs])}; held "
                f"{_ms([t['held'] for t in txs])} = {hold / total:.0%} of the transaction; "
                f"inside: {count:.0f} statements {sql / hold:.0%}, commit {commit / hold:.0%}, "
                f"client "
                f"{(hold - sql - commit) / hold:.0%} (client CPU {cpu / hold:.0%} of held)"
            )
            top = sorted(run.statements.get(action, {}).items(), key=lambda kv: -kv[1])[:4]
            if top:
                print(
                    "      most SQL time under the lock: "
                    + ", ".join(f"{k} {s / len(txs) * 1e3:.1f} ms" for k, s in top)
                    + " (per transaction)"
                )
            spent = run.phases.get(action, {})
            rest = hold - commit - sum(spent.values())
            parts = sorted(
                [*spent.items(), ("commit", commit), ("rest", rest)], key=lambda kv: -kv[1]
            )
            print(
                "      the lock-held time by step (ms per transaction, SQL included): "
                + ", ".join(f"{k} {s / len(txs) * 1e3:.1f}" for k, s in parts)
            )
        for check in run.checks:
            print(f"    {check}")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        worker(json.loads(argv[1]))
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mix", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_URL, help=f"[{DEFAULT_URL}]")
    parser.add_argument("--workers", type=int, default=8, help="coordinator processes [8]")
    parser.add_argument(
        "--also",
        type=int,
        action="append",
        default=None,
        help="another process count to measure (repeatable) [2; none with --quick]",
    )
    parser.add_argument("--minutes", type=int, default=None, help="simulated minutes [5]")
    parser.add_argument("--patients", type=int, default=None, help="seeded patients [1400]")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument(
        "--quick", action="store_true", help="1 minute, 400 patients, no --also, --keep-network"
    )
    parser.add_argument(
        "--keep-network",
        action="store_true",
        help="keep the seeded network's schema for the next run (PostgreSQL)",
    )
    args = parser.parse_args(argv)
    minutes = args.minutes or (1 if args.quick else 5)
    patients = args.patients or (400 if args.quick else 1400)
    also = args.also if args.also is not None else ([] if args.quick else [2])
    counts = sorted({1, args.workers, *also}, reverse=True)
    if args.workers < 2 or minutes < 1 or patients < 100 or min(counts) < 1:
        parser.error("--workers: at least 2; --minutes: at least 1; --patients: at least 100")

    if args.backend == "postgresql":
        from sqlalchemy import create_engine, text

        admin = create_engine(args.pg_url)
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the server
            raise SystemExit(f"error: cannot connect to {args.pg_url} ({exc})") from None
        finally:
            admin.dispose()
    sites = _sites()
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    runs = []
    keep = args.keep_network or args.quick
    with _copies(args.backend, args.pg_url, patients, args.seed, len(counts), keep=keep) as urls:
        before = _allocations(urls[0])
        alone = _median_site(urls[0], sites)
        print(
            f"mix ({args.backend}): {patients} patients at {len(sites)} {TRIAL} sites (+1), "
            f"as of {DUE_DAYS} days before {TODAY}, {len(counts)} copies (set-up, not timed: "
            f"{time.perf_counter() - t0:.1f} s); per process {minutes} min × "
            f"({ALLOCATIONS} allocation + {RECORDS} records + {READS} reads); {cores} cores",
            flush=True,
        )
        for url, count in zip(urls, counts, strict=True):
            chosen = [alone] if count == 1 else [sites[w % len(sites)] for w in range(count)]
            run = _run(url, chosen, minutes, args.seed)
            _verify(url, run, before)
            runs.append(run)
            print(f"  {count} process(es): {run.rate:.0f} ops/s, load {run.load}", flush=True)
    _report(runs, args.backend, cores)
    if not all(r.ok for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
