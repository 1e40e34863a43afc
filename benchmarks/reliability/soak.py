"""Concurrency soak: coordinators allocate and record while readers query, for a set time.

    python -m benchmarks.reliability.soak --db PATH_OR_URL [--seconds 120] [--coordinators 8]
                                          [--readers 2] [--seed 1] [--keep]

Each coordinator is a process running the real commands (``sarcoma_sched.cli.main`` in
process, exactly what the installed command runs, so every failure surfaces as the user would
see it): it screens and allocates new patients (``screen`` + ``allocate``) and records what
happened to their events (``record --status done``, on the planned day or a few days late),
reading the patient's calendar first (``schedule``). Each reader runs ``visits`` over random
date ranges and sites. All of them start together and stop at the deadline; each reports
what it did.

What must hold:

* no command fails: exit status 0, and nothing on stderr but ``warning:`` lines (a planned
  event the planner flagged) and ``notice: database busy ... retrying`` (counted);
* nothing is lost: the allocations, screenings and done events in the database are exactly
  those the processes report (each recorded event with the date they gave it);
* the database is consistent (``_common.check_consistency``): every patient whole, positions
  1..n, audit chain and allocation sequence verified.

``--db`` is an SQLite file (replaced) or a PostgreSQL URL (a schema of its own inside it,
dropped afterwards unless ``--keep``). The processes are forked from one parent that has
already run a command of each kind, so none of them spends the soak importing modules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.reliability._common import (
    SECRET,
    check_consistency,
    new_patient,
    run_cli,
    scratch_database,
)

__all__ = ["SoakResult", "main", "run_soak"]

TODAY = dt.date.today()
# Patients are allocated this long ago, so most of their first months can be recorded.
START = TODAY - dt.timedelta(days=100)
ALLOWED_STDERR = ("warning: ", "notice: database busy")


@dataclass
class Report:
    """What one process did, as it saw it (written as JSON when it stops)."""

    role: str
    commands: int = 0
    screened: list[str] = field(default_factory=list)
    allocated: list[str] = field(default_factory=list)
    recorded: list[list[str]] = field(default_factory=list)  # [study id, event, date]
    visit_rows: int = 0
    busy_notices: int = 0
    errors: list[str] = field(default_factory=list)


class _Cli:
    """Runs commands as ``role`` and files every failure in ``report``."""

    def __init__(self, url: str, role: str, report: Report, work: Path) -> None:
        self.url, self.role, self.report, self.work = url, role, report, work

    def __call__(self, *args: str) -> str | None:
        env: dict[str, str | None] = {
            "SARCOMA_SCHED_SECRET": SECRET.hex(),
            "SARCOMA_SCHED_DB": None,
            "SARCOMA_SCHED_DEBUG": None,
            "XDG_CONFIG_HOME": str(self.work),
        }
        # On PostgreSQL the login is the actor and any other --user is refused; the role is a
        # label only where labels are what the audit records (SQLite).
        label = [] if self.url.startswith("postgresql") else ["--user", self.role]
        code, out, err, escaped = run_cli(["--db", self.url, *label, *args], env)
        self.report.commands += 1
        lines = err.splitlines()
        self.report.busy_notices += sum(1 for line in lines if line.startswith("notice: "))
        unexpected = [line for line in lines if not line.startswith(ALLOWED_STDERR)]
        if code != 0 or unexpected or escaped:
            detail = escaped or "\n".join(unexpected) or err
            self.report.errors.append(f"{' '.join(args)}: exit {code}: {detail.strip()}")
            return None
        return out


def _coordinator(url: str, index: int, deadline: float, work: Path, seed: int) -> Report:
    rng = random.Random(seed * 1000 + index)
    report = Report(f"coord{index}")
    cli = _Cli(url, report.role, report, work)
    mine: list[str] = []
    n = index
    while time.time() < deadline:
        if not mine or rng.random() < 0.35:
            study_id = _allocate_new(cli, report, n, work)
            n += 100
            if study_id:
                mine.append(study_id)
            continue
        study_id = rng.choice(mine)
        if not _record_next(cli, report, study_id, late=rng.random() < 0.3, rng=rng):
            mine.remove(study_id)  # nothing left to record in the past
    return report


def _allocate_new(cli: _Cli, report: Report, n: int, work: Path) -> str | None:
    protocol, site, values = new_patient(n)
    values_file = work / f"{protocol}.json"
    if not values_file.exists():
        values_file.write_text(json.dumps(values), encoding="utf-8")
    out = cli(
        "screen",
        protocol,
        "--site",
        site,
        "--from-file",
        str(values_file),
        "--date",
        START.isoformat(),
        "--format",
        "json",
    )
    if out is None:
        return None
    number = json.loads(out)["screening_number"]
    report.screened.append(number)
    out = cli(
        "allocate",
        number,
        "--consent-date",
        START.isoformat(),
        "--date",
        START.isoformat(),
        "--format",
        "json",
    )
    if out is None:
        return None
    study_id = json.loads(out)["study_id"]
    report.allocated.append(study_id)
    return study_id


def _record_next(
    cli: _Cli, report: Report, study_id: str, *, late: bool, rng: random.Random
) -> bool:
    """Record the patient's next planned event done, if its day has passed."""
    out = cli("schedule", study_id, "--format", "json")
    if out is None:
        return True
    rows = json.loads(out)["events"]
    planned = [r for r in rows if r["status"] == "planned"]
    if not planned:
        return False
    # The listing is in date order; "days" are ISO dates, "window" is {earliest, latest}.
    first = planned[0]
    day = dt.date.fromisoformat(first["days"][0])
    if late:
        latest = dt.date.fromisoformat(first["window"]["latest"])
        day = latest + dt.timedelta(days=rng.randint(1, 5))
    if day >= TODAY:
        return False
    done = cli(
        "record",
        study_id,
        first["event"],
        "--status",
        "done",
        "--date",
        day.isoformat(),
        "--format",
        "json",
    )
    if done is not None:
        report.recorded.append([study_id, first["event"], day.isoformat()])
    return True


def _reader(url: str, index: int, deadline: float, work: Path, seed: int) -> Report:
    rng = random.Random(seed * 1000 + 500 + index)
    report = Report(f"reader{index}")
    cli = _Cli(url, report.role, report, work)
    while time.time() < deadline:
        first = START + dt.timedelta(days=rng.randint(0, 200))
        args = [
            "visits",
            "--from",
            first.isoformat(),
            "--to",
            (first + dt.timedelta(days=rng.randint(0, 27))).isoformat(),
            "--format",
            "json",
        ]
        if rng.random() < 0.5:
            args += ["--site", new_patient(rng.randint(0, 99))[1]]
        out = cli(*args)
        if out is not None:
            report.visit_rows += len(json.loads(out))
    return report


def _child(kind: str, url: str, index: int, deadline: float, work: str, seed: int) -> None:
    directory = Path(work) / f"{kind}{index}"
    directory.mkdir(parents=True, exist_ok=True)
    run = _coordinator if kind == "coord" else _reader
    try:
        report = run(url, index, deadline, directory, seed)
    except BaseException:
        report = Report(f"{kind}{index}", errors=[f"crashed:\n{traceback.format_exc()}"])
    (Path(work) / f"{kind}{index}.json").write_text(json.dumps(report.__dict__))


@dataclass
class SoakResult:
    backend: str
    seconds: float
    reports: list[Report]
    problems: list[str]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_soak(
    url: str,
    seconds: float,
    *,
    coordinators: int = 8,
    readers: int = 2,
    seed: int = 1,
    warm_up: int = 4,
    work_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> SoakResult:
    """Soak the prepared database ``url`` and check it afterwards."""
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    work = Path(work_dir or tempfile.mkdtemp(prefix="soak-"))
    work.mkdir(parents=True, exist_ok=True)
    # One command of each kind in this process first: the forked children inherit the loaded
    # modules, parsed protocols and holiday tables.
    warm = Report("warm-up")
    warm_cli = _Cli(url, "warm-up", warm, work)
    for n in (0, 3, 1, 2)[:warm_up]:  # a NATARS-R patient, then a TNT-STS one, ...
        study_id = _allocate_new(warm_cli, warm, n, work)
        if study_id:
            _record_next(warm_cli, warm, study_id, late=False, rng=random.Random(0))
    warm_cli("visits", "--from", START.isoformat(), "--to", TODAY.isoformat(), "--format", "json")

    context = multiprocessing.get_context("fork")
    deadline = time.time() + seconds
    children = [
        context.Process(target=_child, args=(kind, url, i, deadline, str(work), seed))
        for kind, count in (("coord", coordinators), ("reader", readers))
        for i in range(count)
    ]
    start = time.perf_counter()
    for child in children:
        child.start()
    for child in children:
        # A command that started just before the deadline still finishes; one stuck for
        # minutes is a hang, which is a failure of its own.
        child.join(timeout=max(0.0, deadline - time.time()) + 300)
    elapsed = time.perf_counter() - start
    problems: list[str] = []
    reports = [warm]
    for child in children:
        if child.is_alive():
            child.kill()
            problems.append(f"a soak process (pid {child.pid}) hung past the deadline")
    for kind, count in (("coord", coordinators), ("reader", readers)):
        for i in range(count):
            path = work / f"{kind}{i}.json"
            if not path.exists():
                problems.append(f"{kind}{i} wrote no report")
                continue
            reports.append(Report(**json.loads(path.read_text())))
    for report in reports:
        problems.extend(f"{report.role}: {e}" for e in report.errors[:5])
    counts = _database_counts(url)
    problems.extend(_lost(url, reports, counts))
    state = check_consistency(url, SECRET, replanned=True)
    problems.extend(state.problems)
    counts["audit entries"] = state.audit_entries
    if progress:
        progress(f"{backend}: {len(children)} processes ran {elapsed:.1f} s")
    return SoakResult(backend, elapsed, reports, problems, counts)


def _database_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from sarcoma_sched.db.models import Allocation, ScheduledEvent, Screening
    from sarcoma_sched.db.session import Database

    database = Database(url)
    try:
        with database.read() as session:
            return {
                "screenings": session.scalar(select(func.count()).select_from(Screening)) or 0,
                "allocations": session.scalar(select(func.count()).select_from(Allocation)) or 0,
                "done events": session.scalar(
                    select(func.count())
                    .select_from(ScheduledEvent)
                    .where(ScheduledEvent.status == "done")
                )
                or 0,
            }
    finally:
        database.dispose()


def _lost(url: str, reports: list[Report], counts: dict[str, int]) -> list[str]:
    """Reported work that is not in the database, or database rows nobody reported."""
    from sqlalchemy import select

    from sarcoma_sched.db.models import Patient, ScheduledEvent
    from sarcoma_sched.db.session import Database

    problems = []
    for what, reported in (
        ("screenings", sum(len(r.screened) for r in reports)),
        ("allocations", sum(len(r.allocated) for r in reports)),
        ("done events", sum(len(r.recorded) for r in reports)),
    ):
        if counts[what] != reported:
            problems.append(f"{what}: {counts[what]} in the database, {reported} reported")
    database = Database(url)
    try:
        with database.read() as session:
            done = {
                (sid, event, str(day))
                for sid, event, day in session.execute(
                    select(Patient.study_id, ScheduledEvent.event_id, ScheduledEvent.actual_date)
                    .join(Patient, Patient.id == ScheduledEvent.patient_id)
                    .where(ScheduledEvent.status == "done")
                )
            }
            study_ids = set(session.scalars(select(Patient.study_id)))
    finally:
        database.dispose()
    missing = [tuple(r) for report in reports for r in report.recorded if tuple(r) not in done]
    if missing:
        problems.append(f"{len(missing)} recorded event(s) not done as reported: {missing[:3]}")
    gone = [s for report in reports for s in report.allocated if s not in study_ids]
    if gone:
        problems.append(f"{len(gone)} allocated patient(s) missing: {gone[:3]}")
    return problems


def summary(result: SoakResult) -> list[str]:
    coordinators = [r for r in result.reports if r.role.startswith("coord")]
    readers = [r for r in result.reports if r.role.startswith("reader")]
    total: Counter[str] = Counter()
    for r in result.reports:
        total.update(
            commands=r.commands,
            allocated=len(r.allocated),
            recorded=len(r.recorded),
            busy=r.busy_notices,
        )
    per_second = (total["commands"] - result.reports[0].commands) / max(result.seconds, 1e-9)
    lines = [
        f"soak on {result.backend}: {len(coordinators)} coordinators, {len(readers)} readers, "
        f"{result.seconds:.0f} s",
        f"commands           {total['commands']} ({per_second:.1f}/s during the soak)",
        f"patients allocated {total['allocated']} (database: {result.counts['allocations']})",
        f"events recorded    {total['recorded']} done (database: {result.counts['done events']})",
        f"visits queries     {sum(r.commands for r in readers)}, "
        f"{sum(r.visit_rows for r in readers)} rows",
        f"busy notices       {total['busy']}",
        f"audit entries      {result.counts['audit entries']}",
        f"problems           {len(result.problems)}",
    ]
    for r in coordinators:
        lines.append(
            f"  {r.role:<8} {r.commands:>4} commands, {len(r.allocated):>3} allocated, "
            f"{len(r.recorded):>3} recorded, {len(r.errors)} errors"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--db", required=True, help="an SQLite file (replaced) or a PG URL")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--coordinators", type=int, default=8)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args(argv)

    with scratch_database(args.db, keep=args.keep) as url:
        result = run_soak(
            url,
            args.seconds,
            coordinators=args.coordinators,
            readers=args.readers,
            seed=args.seed,
            progress=lambda line: print(line, flush=True),
        )
    for line in summary(result):
        print(line)
    for problem in result.problems[:30]:
        print(f"PROBLEM {problem}")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
