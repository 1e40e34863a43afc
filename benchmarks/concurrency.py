"""Concurrent allocation on PostgreSQL: 8 coordinator processes against 1, and no lost position.

    python -m benchmarks.concurrency [--pg-url URL] [--workers 8] [--per-worker 125] [--quick]

Two runs, each in a fresh PostgreSQL schema (created and dropped like ``tests/databases.py``),
each allocating the same N = workers × per-worker NATARS-R patients (minimization) through
``services.allocation.allocate_patient``, one transaction per patient:

* measured: ``--workers`` processes (``python -m benchmarks.concurrency --worker ...``), each
  allocating every workers-th patient, all released at the same instant;
* baseline: one process allocating all N, the same patients in the same order.

Throughput = N / (last worker's end − the common start), in allocations per second. Ratio =
throughput with the workers / throughput with one process (above 1: concurrency helps). The
patients are screened before the clock (screening is an earlier transaction in real life); the
second schema is a copy of the first's screened state, so both runs start from identical data.

After each run: the trial's positions must be exactly 1..N (each once: no duplicate, no gap),
each site's study ids 1..k, ``allocation verify`` must confirm every arm from the secret and
``audit verify`` the whole chain.

Expect a ratio around 1 or below: every write transaction takes the row lock on the audit
chain's head first (``Database.write``), so allocations are serialised by design — that lock is
what makes positions gap-free without retries. Extra processes add only lock waits and, on a
small machine, competition for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from benchmarks._table import header, row
from benchmarks.allocation_floor import LAST_DAY, SECRET, TRIAL, cohort

__all__ = ["main"]

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ACTOR = "benchmark"
SEED = 20261102


@dataclass
class Run:
    workers: int
    n: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _schema_url(base: str, schema: str) -> str:
    return (
        make_url(base)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def _screen(url: str, n: int) -> None:
    """Schema, protocols and N screened patients (set-up: not timed)."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.protocols import initialize
    from sarcoma_sched.services.screening import screen

    db = Database(url, check_schema=False)

    # Set-up only: commits need not wait for the WAL flush. The timed workers never see this.
    @event.listens_for(db.engine, "connect")
    def _async_commit(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
        dbapi_connection.commit()

    initialize(db, ACTOR)
    for site, screened, _day, sex, values in cohort(n, SEED):
        screen(db, ACTOR, TRIAL, site, values, screened_on=screened, sex=sex)
    db.dispose()


def _copy_schema(admin_url: str, source: str, target: str) -> None:
    """``target`` (already migrated, empty) gets every row of ``source``, sequences included."""
    from sarcoma_sched.db.models import Base

    engine = create_engine(admin_url)
    with engine.begin() as conn:
        tables = [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]
        # The append-only triggers refuse the DELETE below, as they should for any login; the
        # copy is the benchmark's own set-up, run as a superuser, so they are off for it.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"DELETE FROM {target}.alembic_version"))
        conn.execute(text(f"DELETE FROM {target}.audit_head"))
        for table in tables:
            conn.execute(text(f"INSERT INTO {target}.{table} SELECT * FROM {source}.{table}"))
        for table in tables:
            for (column,) in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                    "AND table_name = :t AND pg_get_serial_sequence(:q, column_name) IS NOT NULL"
                ),
                {"s": target, "t": table, "q": f"{target}.{table}"},
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{target}.{table}', '{column}'), "
                        f"coalesce((SELECT max({column}) FROM {target}.{table}), 0) + 1, false)"
                    )
                )
    engine.dispose()


def _migrate(url: str) -> None:
    from sarcoma_sched.db.migrate import upgrade
    from sarcoma_sched.db.session import Database

    db = Database(url, check_schema=False)
    upgrade(db.engine)
    db.dispose()


def _run(url: str, workers: int, n: int) -> Run:
    run = Run(workers, n)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.concurrency",
                "--worker",
                url,
                str(w),
                str(workers),
                str(n),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    # Each worker imports, connects and reads its patients, then says "ready"; once all have,
    # they are given one start instant, so all contend from the first allocation on.
    for w, proc in enumerate(procs):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            for other in procs:
                other.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"error: worker {w} did not start: {(line + err).strip()[-400:]}")
    start_at = time.time() + 0.5
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n")
        proc.stdin.flush()
    ends = []
    for w, proc in enumerate(procs):
        out, err = proc.communicate()
        if proc.returncode != 0:
            run.ok = False
            run.checks.append(f"worker {w} exit {proc.returncode}: {err.strip()[-400:]}")
            continue
        result = json.loads(out.strip().splitlines()[-1])
        ends.append(result["end"])
        run.latencies += result["latencies"]
    run.seconds = (max(ends) - start_at) if ends else float("nan")
    return run


def _verify(url: str, run: Run) -> None:
    from sqlalchemy import select

    from sarcoma_sched.db.audit import verify
    from sarcoma_sched.db.models import Allocation, Patient
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation_audit import verify_allocations

    db = Database(url)
    try:
        with db.read() as session:
            by_trial: dict[str, list[int]] = {}
            for protocol_id, position in session.execute(
                select(Allocation.protocol_id, Allocation.position).order_by(Allocation.position)
            ):
                by_trial.setdefault(protocol_id, []).append(position)
            study: dict[str, list[int]] = {}
            for site, study_id in session.execute(
                select(Patient.site_code, Patient.study_id).where(Patient.study_id.is_not(None))
            ):
                study.setdefault(site, []).append(int(study_id.rsplit("-", 1)[1]))
        positions = by_trial.get(TRIAL, [])
        problem = _sequence_problem(positions, run.n)
        if set(by_trial) - {TRIAL}:
            problem = (problem or "") + f" other trials allocated: {sorted(set(by_trial))}"
        run.checks.append(
            f"positions 1..{run.n}: "
            + ("no duplicate, no gap" if problem is None else f"PROBLEM: {problem}")
        )
        bad_sites = {
            site: p for site, nums in study.items() if (p := _sequence_problem(sorted(nums), None))
        }
        run.checks.append(
            f"study ids per site ({len(study)} sites, {sum(map(len, study.values()))} ids): "
            + ("each 1..k, no duplicate, no gap" if not bad_sites else f"PROBLEM: {bad_sites}")
        )
        outcome = verify_allocations(db, TRIAL, SECRET)
        run.checks.append(
            f"allocation verify {TRIAL}: "
            + (
                f"all {outcome.checked} allocations confirmed"
                if not outcome.mismatches
                else f"PROBLEM: {outcome.mismatches[:3]}"
            )
        )
        with db.read() as session:
            audit = verify(session)
        run.checks.append(
            f"audit verify: {audit.entries} entries, "
            + ("chain and rows ok" if audit.ok else f"PROBLEM: {audit.problems[:3]}")
        )
        run.ok &= problem is None and not bad_sites and not outcome.mismatches and audit.ok
    finally:
        db.dispose()


def _sequence_problem(values: Sequence[int], n: int | None) -> str | None:
    """None when ``values`` (sorted) is exactly 1..n, else which numbers repeat or are missing."""
    n = len(values) if n is None else n
    seen: dict[int, int] = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    duplicates = sorted(v for v, c in seen.items() if c > 1)
    missing = [i for i in range(1, n + 1) if i not in seen]
    extra = sorted(v for v in seen if not 1 <= v <= n)
    if not (duplicates or missing or extra) and len(values) == n:
        return None
    return (
        f"count {len(values)} (want {n}); duplicates {duplicates[:10]}; missing {missing[:10]}; "
        f"out of range {extra[:10]}"
    )


def worker(argv: Sequence[str]) -> None:
    """One coordinator: allocates patients index, index + workers, ... of the screened N."""
    from sqlalchemy import select

    from sarcoma_sched.db.models import Patient
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation import allocate_patient

    url, index, workers, n = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    days = [c[2] for c in cohort(n, SEED)]
    db = Database(url)
    with db.read() as session:
        numbers = list(session.scalars(select(Patient.screening_number).order_by(Patient.id)))
    mine = [(numbers[i], days[i]) for i in range(index, n, workers)]
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    latencies = []
    for number, day in mine:
        t0 = time.perf_counter()
        allocate_patient(
            db,
            f"nurse{index}",
            number,
            today=LAST_DAY,
            allocation_date=day,
            consent_date=day,
            secret=SECRET,
        )
        latencies.append(time.perf_counter() - t0)
    end = time.time()
    db.dispose()
    print(json.dumps({"end": end, "latencies": latencies}))


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        worker(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.concurrency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pg-url", default=DEFAULT_URL, help=f"[{DEFAULT_URL}]")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-worker", type=int, default=None, help="allocations each [125]")
    parser.add_argument("--quick", action="store_true", help="25 allocations per worker")
    args = parser.parse_args(argv)
    per = args.per_worker or (25 if args.quick else 125)
    if args.workers < 2 or per < 1:
        parser.error("--workers: at least 2; --per-worker: at least 1")
    n = args.workers * per

    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server
        raise SystemExit(
            f"error: cannot connect to {args.pg_url} ({exc.__class__.__name__})"
        ) from None
    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        one_url, many_url = (_schema_url(args.pg_url, s) for s in schemas)
        t0 = time.perf_counter()
        _screen(one_url, n)
        _migrate(many_url)
        _copy_schema(args.pg_url, schemas[0], schemas[1])
        print(
            f"concurrency: {n} {TRIAL} patients screened (set-up, not timed: "
            f"{time.perf_counter() - t0:.1f} s) in schema {schemas[0]}, copied to {schemas[1]}; "
            f"{os.cpu_count()} CPUs"
        )
        one = _run(one_url, 1, n)
        _verify(one_url, one)
        many = _run(many_url, args.workers, n)
        _verify(many_url, many)
    finally:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()

    header()
    ratio = many.rate / one.rate
    row(
        f"allocations/s, {args.workers} processes vs 1",
        f"{many.rate:.1f}/s",
        f"{one.rate:.1f}/s",
        ratio,
    )
    for run in (many, one):
        lat = sorted(run.latencies)
        p95 = lat[min(len(lat) - 1, len(lat) * 95 // 100)] if lat else float("nan")
        median = statistics.median(lat) if lat else float("nan")
        print(
            f"  {run.workers} × {run.n // run.workers}: {run.n} allocations in "
            f"{run.seconds:.1f} s; per allocation median {median * 1e3:.0f} ms, "
            f"p95 {p95 * 1e3:.0f} ms (lock waits included)"
        )
        for check in run.checks:
            print(f"    {check}")
    print(
        f"  ratio {ratio:.2f} = throughput with {args.workers} processes / with 1: every write "
        "transaction holds the audit head's row lock from its first statement, so allocations "
        "run one at a time whatever the number of processes"
    )
    if not (one.ok and many.ok):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
