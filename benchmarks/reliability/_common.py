"""What the reliability scripts share: a scratch database, test patients, and the consistency
check every one of them ends with.

A *consistent* database, as ``check_consistency`` defines it from the schema:

* every patient is in one of two states, each the result of whole transactions:

  - **screened**: the patient row (no study id) and its screening rows; no enrolment, no
    allocation, no scheduled event (``screen`` committed, ``allocate`` did not);
  - **allocated**: a study id, exactly one enrolment pointing at one of the patient's own
    screenings, exactly one allocation, and exactly the scheduled events the planner gives for
    that arm and allocation date (no more, no fewer), each with the UID made from the study
    id (``enroll``, ``allocate`` and ``store_plan`` wrote them in one transaction);

* allocation positions of each trial are 1..n, without a gap or a duplicate;
* ``audit.verify`` finds nothing: the chain links, the head matches the last entry, every
  audited row has the entry that created or last changed it, and no entry describes a row
  that is not there;
* ``verify_allocations`` replays every trial's sequence from the secret and agrees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sys
import tempfile
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks._pg import fresh_schema
from sarcoma_sched.db.session import Database

__all__ = [
    "SECRET",
    "Consistency",
    "PlanCache",
    "check_consistency",
    "create_schema",
    "new_patient",
    "run_cli",
    "scratch_database",
]

# A fixed trial secret: the scripts replay the minimization sequence with it.
SECRET = hashlib.sha256(b"sarcoma-sched test key").digest()

_NATARS_SITES = ("PKUIH", "BJFH", "XJTU1", "PKUFH", "SHCH", "SHZS", "QDUAH")
_HISTOLOGIES = ("DDLPS", "LMS", "UPS", "SFT")


@contextmanager
def scratch_database(target: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh database at the current schema with the bundled protocols, as a URL.

    ``target`` is an SQLite file path (replaced) or a PostgreSQL URL, in which a schema of its
    own is created and, unless ``keep``, dropped afterwards: the scripts never touch existing
    tables.
    """
    if "://" not in target or target.startswith("sqlite"):
        path = Path(target.split(":///", 1)[1] if "://" in target else target)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.touch()
        create_schema(str(path))
        yield str(path)
        return
    with fresh_schema(target, "rel", keep=keep) as url:
        create_schema(url)
        yield url


_SQLITE_TEMPLATE: list[Path] = []


def create_schema(url: str) -> None:
    """``sarcoma-sched init``, in process. An SQLite file gets a copy of the first one this
    process built: the migrations cost seconds, and every script and test needs the same."""
    if "://" not in url:
        if not _SQLITE_TEMPLATE:
            template = Path(tempfile.mkdtemp(prefix="schema-")) / "template.db"
            template.touch()
            _init(str(template))
            _SQLITE_TEMPLATE.append(template)
        for suffix in ("", "-wal"):
            source = Path(f"{_SQLITE_TEMPLATE[0]}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{url}{suffix}")
        return
    _init(url)


def _init(url: str) -> None:
    from sarcoma_sched.services.protocols import initialize

    database = Database(url, check_schema=False)
    try:
        initialize(database, "setup")
    finally:
        database.dispose()


def new_patient(n: int) -> tuple[str, str, dict[str, str]]:
    """The ``n``-th test patient: (protocol, site, screening values), all eligible.

    Three in four go to NATARS-R (minimization: the secret and the whole history matter), one
    in four to TNT-STS (fixed arm, a second allocation sequence).
    """
    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

    if n % 4 == 3:
        return "TNT-STS", "FJMUUH", dict(ELIGIBLE_TNT)
    values = {**ELIGIBLE_NATARS, "histology": _HISTOLOGIES[n % 4]}
    if values["histology"] == "SFT":
        values["sft_risk_score"] = "6"
    return "NATARS-R", _NATARS_SITES[n % len(_NATARS_SITES)], values


class PlanCache:
    """The event ids the planner gives an arm at a site from an allocation date (memoised: a
    check runs after every kill, and most patients share these keys)."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, str, str, dt.date], frozenset[str]] = {}

    def event_ids(
        self, session: Any, version_id: int, arm: str, site: str, day: dt.date
    ) -> frozenset[str]:
        from sarcoma_sched.calendar import plan_arm
        from sarcoma_sched.services.lookups import protocol_version, site_calendar

        key = (version_id, arm, site, day)
        if key not in self._plans:
            protocol = protocol_version(session, version_id).protocol
            plan = plan_arm(protocol, arm, day, site_calendar(session, site))
            self._plans[key] = frozenset(e.id for e in plan.events)
        return self._plans[key]


@dataclass
class Consistency:
    patients: int = 0
    screened_only: int = 0
    allocated: int = 0
    events: int = 0
    audit_entries: int = 0
    allocations_by_trial: dict[str, int] = field(default_factory=dict)
    # screening number -> study id (None while only screened): what the durability check reads
    numbers: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_consistency(
    url: str, secret: bytes = SECRET, plans: PlanCache | None = None, *, replanned: bool = False
) -> Consistency:
    """Everything the module docstring calls consistent; problems are listed, not raised.

    ``replanned``: events were recorded since allocation, so a patient's events are whatever
    the re-plans made of them; only their presence is checked, not the allocation-day plan.
    """
    from sarcoma_sched.db.audit import verify
    from sarcoma_sched.db.models import (
        Allocation,
        Enrollment,
        Patient,
        ScheduledEvent,
        Screening,
    )
    from sarcoma_sched.services.allocation_audit import verify_allocations

    plans = plans or PlanCache()
    out = Consistency()
    database = Database(url)
    try:
        with database.read() as session:
            patients = session.execute(
                select(
                    Patient.id, Patient.study_id, Patient.screening_number, Patient.site_code
                ).order_by(Patient.id)
            ).all()
            screenings: dict[int, set[int]] = defaultdict(set)
            for sid, pid in session.execute(select(Screening.id, Screening.patient_id)):
                screenings[pid].add(sid)
            enrollments: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for pid, screening_id, version_id in session.execute(
                select(
                    Enrollment.patient_id, Enrollment.screening_id, Enrollment.protocol_version_id
                )
            ):
                enrollments[pid].append((screening_id, version_id))
            allocations: dict[int, list[Any]] = defaultdict(list)
            positions: dict[str, list[int]] = defaultdict(list)
            for row in session.execute(
                select(
                    Allocation.patient_id,
                    Allocation.protocol_id,
                    Allocation.position,
                    Allocation.arm,
                    Allocation.allocation_date,
                )
            ):
                allocations[row.patient_id].append(row)
                positions[row.protocol_id].append(row.position)
            events: dict[int, list[tuple[str, str]]] = defaultdict(list)
            for pid, event_id, uid in session.execute(
                select(ScheduledEvent.patient_id, ScheduledEvent.event_id, ScheduledEvent.uid)
            ):
                events[pid].append((event_id, uid))
            out.events = sum(len(v) for v in events.values())

            for p in patients:
                ref = p.study_id or p.screening_number
                out.problems.extend(
                    _patient_problems(
                        session,
                        None if replanned else plans,
                        p,
                        ref,
                        screenings,
                        enrollments,
                        allocations,
                        events,
                    )
                )
                if p.study_id is None:
                    out.screened_only += 1
                else:
                    out.allocated += 1
            out.patients = len(patients)
            out.numbers = {p.screening_number: p.study_id for p in patients}

            for trial, found in sorted(positions.items()):
                out.allocations_by_trial[trial] = len(found)
                if sorted(found) != list(range(1, len(found) + 1)):
                    dupes = sorted(p for p, n in Counter(found).items() if n > 1)
                    missing = sorted(set(range(1, max(found) + 1)) - set(found))
                    out.problems.append(
                        f"{trial}: positions not 1..{len(found)} "
                        f"(duplicates {dupes}, missing {missing})"
                    )
            report = verify(session)
            out.audit_entries = report.entries
            out.problems.extend(f"audit verify: {p}" for p in report.problems[:10])
            orphans = session.scalar(
                select(func.count())
                .select_from(ScheduledEvent)
                .where(ScheduledEvent.patient_id.not_in(select(Allocation.patient_id)))
            )
            if orphans:
                out.problems.append(f"{orphans} scheduled event(s) of unallocated patients")
        for trial in sorted(positions):
            verified = verify_allocations(database, trial, secret)
            out.problems.extend(f"allocation verify {trial}: {m}" for m in verified.mismatches)
            if verified.checked != len(positions[trial]):
                out.problems.append(
                    f"allocation verify {trial}: checked {verified.checked} of "
                    f"{len(positions[trial])}"
                )
    finally:
        database.dispose()
    return out


def _patient_problems(
    session: Any,
    plans: PlanCache | None,
    p: Any,
    ref: str,
    screenings: dict[int, set[int]],
    enrollments: dict[int, list[tuple[int, int]]],
    allocations: dict[int, list[Any]],
    events: dict[int, list[tuple[str, str]]],
) -> list[str]:
    problems = []
    if not screenings[p.id]:
        problems.append(f"{ref}: a patient row without a screening")
    if p.study_id is None:
        parts = [
            name
            for name, rows in (
                ("an enrolment", enrollments[p.id]),
                ("an allocation", allocations[p.id]),
                ("scheduled events", events[p.id]),
            )
            if rows
        ]
        if parts:
            problems.append(f"{ref}: no study id but {', '.join(parts)} (a partial allocation)")
        return problems
    if len(enrollments[p.id]) != 1:
        problems.append(f"{ref}: {len(enrollments[p.id])} enrolments, expected 1")
    elif enrollments[p.id][0][0] not in screenings[p.id]:
        problems.append(f"{ref}: enrolled on a screening that is not the patient's")
    if len(allocations[p.id]) != 1:
        problems.append(f"{ref}: {len(allocations[p.id])} allocations, expected 1")
        return problems
    if len(enrollments[p.id]) != 1:
        return problems
    prefix = f"{p.study_id}.".lower()
    if any(not uid.startswith(prefix) for _, uid in events[p.id]):
        problems.append(f"{ref}: an event UID not made from its study id")
    if plans is None:
        if not events[p.id]:
            problems.append(f"{ref}: allocated without scheduled events")
        return problems
    allocation = allocations[p.id][0]
    expected = plans.event_ids(
        session, enrollments[p.id][0][1], allocation.arm, p.site_code, allocation.allocation_date
    )
    stored = Counter(event_id for event_id, _ in events[p.id])
    if set(stored) != expected or any(n > 1 for n in stored.values()):
        missing = sorted(expected - set(stored))[:3]
        extra = sorted(set(stored) - expected)[:3]
        problems.append(
            f"{ref}: {sum(stored.values())} scheduled events, the plan has {len(expected)} "
            f"(missing {missing}, unexpected {extra})"
        )
    return problems


def run_cli(argv: list[str], env: dict[str, str | None]) -> tuple[int | None, str, str, str | None]:
    """``sarcoma_sched.cli.main(argv)`` in process: exit status, stdout, stderr, and the
    traceback of any exception that escaped ``main`` (which a real process would print)."""
    from click.testing import CliRunner

    from sarcoma_sched.cli import main

    runner = CliRunner()
    code: int | None
    escaped = None
    with runner.isolation(env=env) as streams:
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            code = None
            escaped = traceback.format_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), escaped
