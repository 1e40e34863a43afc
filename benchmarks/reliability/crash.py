"""Crash consistency: SIGKILL a coordinator at random moments, then check the database.

    python -m benchmarks.reliability.crash --db PATH_OR_URL [--kills 50] [--seed 1]
                                           [--max-delay 1.5] [--keep]

A child process screens and allocates patients in a loop through the real services (an SQLite
file with the engine's durable commits, or a PostgreSQL schema created inside ``--db`` and
dropped afterwards unless ``--keep``). The parent kills it with SIGKILL after a random delay,
so kills land before, inside and during the commit of write transactions, then checks the
database (``_common.check_consistency``: every patient screened or fully allocated, positions
1..n, audit and allocation verify) and starts a new child, which first allocates any patient
the last one screened but did not allocate, as a coordinator would.

Durability is checked too: the child writes a line to a log after each service call returns,
so every screening and allocation it reported must be in the database; one committed but
unreported transaction per kill is allowed (the kill fell between commit and log line).

The child is forked from the parent, with everything already imported, so a restart costs
milliseconds and the kills are spent on the database, not on Python start-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event, select

from benchmarks.reliability._common import (
    SECRET,
    PlanCache,
    check_consistency,
    new_patient,
    scratch_database,
)
from sarcoma_sched.db.models import Patient
from sarcoma_sched.db.session import Database
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.screening import screen

__all__ = ["CrashResult", "main", "run_crash"]

DAY = dt.date(2026, 11, 2)

# Where the last line of the child's log says the kill landed.
PHASES = {
    "B": "inside a write transaction",
    "c": "during or just after a commit",
    "S": "between transactions",
    "A": "between transactions",
    "R": "between transactions",
    "": "before the first transaction",
}


@dataclass
class CrashResult:
    backend: str
    kills: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    checks_passed: int = 0
    allocated: int = 0
    screened_only: int = 0
    audit_entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _child(url: str, log: str, errors: str) -> None:
    """Screen and allocate for ever; each step is logged once its service call returned."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def mark(line: str) -> None:
        os.write(fd, f"{line}\n".encode())

    try:
        db = Database(url)

        @event.listens_for(db.engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("sarcoma_write"):
                mark("B")

        @event.listens_for(db.engine, "commit")
        def _commit(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("sarcoma_write"):
                mark("c")

        @event.listens_for(db.engine, "rollback")
        def _rollback(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("sarcoma_write"):
                mark("R")

        with db.read() as session:
            waiting = session.scalars(
                select(Patient.screening_number)
                .where(Patient.study_id.is_(None))
                .order_by(Patient.id)
            ).all()
            n = len(session.scalars(select(Patient.id)).all())
        for number in waiting:
            _allocate(db, number, mark)
        while True:
            protocol, site, values = new_patient(n)
            outcome = screen(db, "crash", protocol, site, values, screened_on=DAY)
            mark(f"S {outcome.screening_number}")
            _allocate(db, outcome.screening_number, mark)
            n += 1
    except BaseException:
        with open(errors, "a", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        os._exit(1)


def _allocate(db: Database, number: str, mark: Callable[[str], None]) -> None:
    done = allocate_patient(db, "crash", number, today=DAY, consent_date=DAY, secret=SECRET)
    mark(f"A {number} {done.study_id}")


def _warm_up(url: str, log: Path) -> tuple[set[str], dict[str, str]]:
    """A patient of each trial, allocated by the parent before any child is forked.

    The children inherit what this loads (parsed protocols, holiday tables, the planner's
    caches), so their transactions take what a coordinator's would, not a cold start's.
    """
    db = Database(url)
    try:
        with log.open("a", encoding="utf-8") as f:
            for n in range(4):
                protocol, site, values = new_patient(n)
                outcome = screen(db, "crash", protocol, site, values, screened_on=DAY)
                f.write(f"S {outcome.screening_number}\n")
                _allocate(db, outcome.screening_number, lambda line: f.write(f"{line}\n"))
    finally:
        db.dispose()
    screened, allocated, _ = _read_log(log)
    return screened, allocated


def _read_log(log: Path) -> tuple[set[str], dict[str, str], str]:
    screened, allocated, last = set(), {}, ""
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts:
                continue
            last = parts[0]
            if parts[0] == "S":
                screened.add(parts[1])
            elif parts[0] == "A":
                allocated[parts[1]] = parts[2]
    return screened, allocated, last


def _wait_for_first_write(
    log: Path, child: multiprocessing.process.BaseProcess, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.exitcode is None:
        if log.exists() and log.stat().st_size > 0:
            return
        time.sleep(0.005)


def _sqlite_synchronous(url: str) -> int | None:
    database = Database(url)
    try:
        if database.backend != "sqlite":
            return None
        with database.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0)
    finally:
        database.dispose()


def run_crash(
    url: str,
    kills: int,
    *,
    seed: int = 1,
    min_delay: float = 0.0,
    max_delay: float = 1.0,
    work_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> CrashResult:
    """Kill and check ``kills`` times against the prepared database ``url``."""
    rng = random.Random(seed)
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    result = CrashResult(backend)
    if backend == "sqlite" and _sqlite_synchronous(url) != 2:
        result.problems.append("SQLite commits are not durable (PRAGMA synchronous is not FULL)")
    work = Path(work_dir or tempfile.mkdtemp(prefix="crash-"))
    work.mkdir(parents=True, exist_ok=True)
    errors = work / "child-errors.txt"
    context = multiprocessing.get_context("fork")
    plans = PlanCache()
    screened, allocated = _warm_up(url, work / "warm-up.log")
    check_consistency(url, SECRET, plans)
    for k in range(1, kills + 1):
        log = work / f"child-{k}.log"
        child = context.Process(target=_child, args=(url, str(log), str(errors)), daemon=True)
        child.start()
        # The delay runs from the child's first write transaction: under load, opening the
        # database alone can take longer than a fixed delay, and a kill before any write
        # tests nothing.
        _wait_for_first_write(log, child, timeout=60.0)
        time.sleep(rng.uniform(min_delay, max_delay))
        if child.exitcode is not None:
            detail = errors.read_text() if errors.exists() else f"exit {child.exitcode}"
            result.problems.append(f"kill {k}: the child stopped on its own:\n{detail}")
            break
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        result.kills += 1
        new_screened, new_allocated, last = _read_log(log)
        result.phases[PHASES.get(last, last)] += 1
        screened |= new_screened
        allocated.update(new_allocated)

        state = check_consistency(url, SECRET, plans)
        problems = [f"kill {k}: {p}" for p in state.problems]
        lost = sorted(n for n in screened if n not in state.numbers)
        lost += sorted(n for n, sid in allocated.items() if state.numbers.get(n) != sid)
        if lost:
            problems.append(f"kill {k}: reported as committed but missing: {lost[:5]}")
        unreported = sum(1 for n in state.numbers if n not in screened) + sum(
            1 for n, sid in state.numbers.items() if sid is not None and n not in allocated
        )
        if unreported > k:
            problems.append(
                f"kill {k}: {unreported} transactions committed that no child reported, "
                "more than one per kill"
            )
        result.problems.extend(problems)
        if not problems:
            result.checks_passed += 1
        result.allocated, result.screened_only = state.allocated, state.screened_only
        result.audit_entries = state.audit_entries
        if progress:
            verdict = "ok" if not problems else f"{len(problems)} problem(s)"
            progress(
                f"kill {k:>3}: {PHASES.get(last, last):<31} patients {state.patients:>4} "
                f"(allocated {state.allocated}), audit entries {state.audit_entries:>6}: "
                f"{verdict}"
            )
        if problems and len(result.problems) > 50:
            break
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability.crash", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--db", required=True, help="an SQLite file (replaced) or a PG URL")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-delay", type=float, default=1.0, help="most seconds from first write to kill"
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    with scratch_database(args.db, keep=args.keep) as url:
        result = run_crash(
            url,
            args.kills,
            seed=args.seed,
            max_delay=args.max_delay,
            progress=lambda line: print(line, flush=True),
        )
    print(f"\ncrash consistency on {result.backend} (seed {args.seed})")
    print(f"kills              {result.kills}")
    for phase, n in result.phases.most_common():
        print(f"  {phase:<33}{n}")
    print(f"patients committed {result.allocated} allocated, {result.screened_only} screened only")
    print(f"audit entries      {result.audit_entries}")
    print(f"checks passed      {result.checks_passed} of {result.kills}")
    print(f"time               {time.perf_counter() - start:.1f} s")
    for problem in result.problems[:20]:
        print(f"PROBLEM {problem}")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
