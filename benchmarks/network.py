"""Build a large, valid trial network fast: N allocated patients with their calendars.

    python -m benchmarks.network --db PATH_OR_URL --patients N [--sites S] [--seed K]
                                 [--as-of DATE] [--batch B] [--verify]

The database passes ``sarcoma-sched audit verify`` and ``allocation verify NATARS-R`` (with the
secret this prints) and serves ``visits``, ``overdue``, ``deviations`` and ``schedule`` like a
real one. What the coordinators' services would do one patient per transaction is done here for
many patients per transaction, with the same pieces:

* schema by ``db.migrate.upgrade``, protocols and their sites by ``services.protocols``; extra
  sites (``--sites`` above the protocols' eight) as audited ``Site`` rows;
* patients, screenings, enrolments and allocations as ORM rows with the fields and id formats of
  ``services.screening``/``enrollment``/``allocation`` (screening number ``SITE-TRIAL-Snnnn``,
  study id ``SITE-TRIAL-nnnn`` per site and trial, positions 1..n per trial without gaps);
  TNT-STS and NATARS decisions come from ``allocation.allocate`` itself, NATARS-R from the
  protocol's ``MinimizationRule`` fed with running counts (see ``_Minimizer``);
* every calendar from the real planner (``calendar.plan_arm`` on ``services.schedules.
  site_calendar``), stored by ``services.schedules.store_plan``; past events recorded as done
  (some late, a few missed: deviations), the most recent ones partly left for ``overdue``;
  withdrawals and post-allocation exclusions as ``end_participation`` writes them
  (``cancel_future``);
* every write inside ``Database.write(actor, action)``, so the audit hook chains an entry for
  every row: nothing bypasses the log.

Departures from a coordinator-by-coordinator history, none of which any check depends on: each
event row is inserted once in its final state (revision 0, or 1 when cancelled) instead of being
inserted and then updated by each ``record``; the audit ``at`` is the build time, while the rows'
own instants (``created_at``, ``allocated_at``…) are set on their historical dates; patients at
extra sites belong to NATARS or NATARS-R although no protocol file lists those sites (a real
``screen`` there is refused until an amendment adds them).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from benchmarks import bulk
from sarcoma_sched.allocation import (
    Decision,
    MinimizationRule,
    PriorAllocation,
    allocate,
    factor_level,
    method_fields,
    stratum_key,
)
from sarcoma_sched.calendar import Actual, Plan, SiteCalendar, plan_arm
from sarcoma_sched.db.models import (
    Allocation,
    AuditEntry,
    Enrollment,
    Installation,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
    Screening,
    Site,
)
from sarcoma_sched.db.session import AuditedSession, Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT
from sarcoma_sched.eligibility import evaluate, parse_field_values
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    AssignedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.services.allocation import trial_stream
from sarcoma_sched.services.lookups import current_protocol, site_calendar
from sarcoma_sched.services.schedules import cancel_future, event_rows, installation_uid

__all__ = ["SECRET", "BuildStats", "build_network", "main"]

ACTOR = "benchmark"
ACTION = "benchmark network"
# A fixed, public key: `allocation verify NATARS-R` replays the network's minimization with it.
# Never a real trial's secret.
SECRET = hashlib.sha256(b"sarcoma-sched benchmark network secret").digest()
DAYS_BACK = 730  # allocations spread over the two years before --as-of

TNT = "TNT-STS"
NATARS = "NATARS"
NATARS_R = "NATARS-R"
# Histology mix of eligible retroperitoneal sarcomas (DDLPS commonest); a minimization factor.
HISTOLOGIES = ("DDLPS", "DDLPS", "DDLPS", "LMS", "LMS", "UPS", "SFT")
ASSIGNED_REASONS = {
    (
        "mdt_decision",
        "NEOADJUVANT",
    ): "MDT: borderline resectable, fit for neoadjuvant AI + anlotinib",
    ("mdt_decision", "SURGERY_ONLY"): "MDT: R0 resection feasible now; neoadjuvant not advised",
    ("patient_preference", "NEOADJUVANT"): "patient prefers treatment before surgery",
    ("patient_preference", "SURGERY_ONLY"): "patient declines chemotherapy before surgery",
}
LATE_REASONS = (
    "no inpatient bed",
    "grade 3 neutropenia; cycle delayed",
    "patient request (family event)",
    "theatre list full",
    "CT scanner down",
)
# What happens to past events, per event (a coordinator's month, roughly).
P_LATE = 0.06
P_MISSED = 0.01
P_UNRECORDED_RECENT = 0.35  # events of the last two weeks not recorded yet: `overdue`
P_UNRECORDED_OLD = 0.01
P_WITHDRAW = 0.02
P_EXCLUDE = 0.01  # NATARS trials, final pathology (post-allocation criterion)
P_SCREEN_FAIL = 0.08


# -- timing -------------------------------------------------------------------------------------

_TIMER_KEY = "benchmark_timer"


@dataclass
class _FlushTimer:
    """Splits each flush into the ORM's SQL and the audit hook (``audit.record_flush``)."""

    sql: float = 0.0
    audit: float = 0.0
    _t0: float = 0.0
    _t1: float = 0.0


def _timer(session: Session) -> _FlushTimer | None:
    return session.info.get(_TIMER_KEY)


@event.listens_for(AuditedSession, "before_flush")
def _before_flush(session: Session, _ctx: object, _instances: object) -> None:
    if (t := _timer(session)) is not None:
        t._t0 = time.perf_counter()


# insert=True: runs before the audit hook, which is registered on the same event.
@event.listens_for(AuditedSession, "after_flush", insert=True)
def _after_flush_sql(session: Session, _ctx: object) -> None:
    if (t := _timer(session)) is not None:
        t._t1 = time.perf_counter()
        t.sql += t._t1 - t._t0


# Appended: runs after the audit hook (registered when ``db.session`` was imported, above).
@event.listens_for(AuditedSession, "after_flush")
def _after_flush_audit(session: Session, _ctx: object) -> None:
    if (t := _timer(session)) is not None:
        t.audit += time.perf_counter() - t._t1


# -- the trials ---------------------------------------------------------------------------------


@dataclass
class _Trial:
    protocol: Protocol
    version_id: int
    failing: tuple[tuple[str, str], ...]  # (field, value) that makes a screen failure
    post_allocation: str | None  # criterion id for a post-allocation exclusion
    position: int = 0
    prior: list[PriorAllocation] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.protocol.id


class _Screenings:
    """Parsed values and eligibility results, as ``services.screening.screen`` stores them.

    Cached by the raw values: a network has thousands of patients but few distinct records.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Any, ...]] = {}

    def __call__(self, trial: _Trial, raw: dict[str, str]) -> tuple[dict, dict, bool, int | None]:
        key = (trial.id, tuple(sorted(raw.items())))
        hit = self._cache.get(key)
        if hit is None:
            values = parse_field_values(trial.protocol, raw, "network")
            result = evaluate(trial.protocol, values, "screening")
            stored = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}
            age = values.get("age_years")
            hit = self._cache[key] = (
                stored,
                result.to_json(),
                result.eligible,
                age if isinstance(age, int) else None,
            )
        stored, results, eligible, age = hit
        # Fresh containers per row: the ORM must never share one mutable JSON value.
        return dict(stored), _copy_json(results), eligible, age


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


class _Minimizer:
    """Pocock-Simon for a trial, with running level counts instead of a history rescan.

    ``allocation.allocate`` rebuilds the counts from the whole history at every position
    (O(n) per patient, O(n²) per trial: minutes at 30,000 patients). This keeps them as it goes
    and otherwise does what ``allocation.methods._minimization`` does: the same rule, the same
    derived draw per position, the same stored detail. ``build_network`` checks it against
    ``allocate`` for the first positions, and ``allocation verify`` replays every one.
    """

    def __init__(self, trial: _Trial) -> None:
        method = trial.protocol.allocation
        assert isinstance(method, MinimizationAllocation)
        self.method = method
        self.arms = [a.id for a in trial.protocol.arms]
        self.fields = [f.field for f in method.factors]
        self.rule = MinimizationRule(
            self.arms,
            method.ratio,
            [f.weight for f in method.factors],
            method.probability,
            method.imbalance,
        )
        self.stream = trial_stream(trial.protocol, SECRET)
        self.counts: dict[str, dict[str, list[int]]] = {f: {} for f in self.fields}

    def decide(self, factors: dict[str, str], position: int) -> Decision:
        zero = [0] * len(self.arms)
        level_counts = [self.counts[f].get(factors[f], zero) for f in self.fields]
        totals = self.rule.totals(level_counts)
        chosen, preferred, u = self.rule.choose(
            totals, self.stream.derive("minimization", position)
        )
        for f in self.fields:
            self.counts[f].setdefault(factors[f], [0] * len(self.arms))[chosen] += 1
        arms = self.arms
        return Decision(
            arm=arms[chosen],
            stratum=stratum_key(self.fields, factors),
            factors=dict(factors),
            deterministic=self.rule.deterministic(preferred),
            detail={
                "method": "minimization",
                "imbalance": self.method.imbalance,
                "scores": {arms[a]: self.rule.natural(t) for a, t in enumerate(totals)},
                "preferred": [arms[a] for a in preferred],
                "draw": u,
                "probability": self.method.probability,
                "took": "preferred" if chosen in preferred else "other",
            },
        )


# -- the cohort ---------------------------------------------------------------------------------


@dataclass
class _Case:
    trial: _Trial
    site: str
    screened_on: dt.date
    raw: dict[str, str]
    sex: str
    eligible: bool
    consent: dt.date | None = None
    allocation_date: dt.date | None = None
    arm: str | None = None  # assigned designs
    basis: str | None = None
    end: tuple[str, dt.date, str, str | None] | None = None  # kind, effective, reason, criterion
    screening_number: str = ""
    study_id: str | None = None
    seed: int = 0

    @property
    def day(self) -> dt.date:
        return self.allocation_date or self.screened_on


def _sites_for(trials: dict[str, _Trial], n_sites: int) -> tuple[list[str], list[str]]:
    """(sites used, extra sites to add): TNT-STS's own site first, then the NATARS sites."""
    own: list[str] = []
    for trial in (trials[TNT], trials[NATARS], trials[NATARS_R]):
        own += [s.code for s in trial.protocol.sites if s.code not in own]
    if n_sites < 2:
        raise SystemExit("--sites: at least 2 (TNT-STS's site and one NATARS site)")
    if n_sites <= len(own):
        return own[:n_sites], []
    extra = [f"NET{i:03d}" for i in range(len(own) + 1, n_sites + 1)]
    return own + extra, extra


def _cohort(
    rng: random.Random,
    trials: dict[str, _Trial],
    sites: Sequence[str],
    n: int,
    as_of: dt.date,
) -> list[_Case]:
    tnt_sites = {s.code for s in trials[TNT].protocol.sites}
    # Uneven recruitment: a few large centres, many small ones.
    weights = [rng.uniform(0.4, 2.5) for _ in sites]
    cases: list[_Case] = []
    failures = 0
    while len(cases) - failures < n:
        site = rng.choices(sites, weights)[0]
        if site in tnt_sites:
            trial = trials[TNT]
            raw = dict(ELIGIBLE_TNT, age_years=str(rng.randint(20, 75)))
        else:
            trial = trials[NATARS if rng.random() < 0.5 else NATARS_R]
            raw = dict(ELIGIBLE_NATARS, age_years=str(rng.randint(18, 75)))
            raw["histology"] = rng.choice(HISTOLOGIES)
            if raw["histology"] == "SFT":
                raw["sft_risk_score"] = str(rng.randint(6, 7))
        allocated = as_of - dt.timedelta(days=rng.randrange(DAYS_BACK))
        screened = allocated - dt.timedelta(days=rng.randint(1, 21))
        sex = rng.choice(("female", "male"))
        if rng.random() < P_SCREEN_FAIL:
            name, value = rng.choice(trial.failing)
            cases.append(_Case(trial, site, screened, {**raw, name: value}, sex, False))
            failures += 1
            continue
        case = _Case(trial, site, screened, raw, sex, True, seed=rng.getrandbits(32))
        case.consent = screened + dt.timedelta(days=rng.randint(0, (allocated - screened).days))
        case.allocation_date = allocated
        if isinstance(trial.protocol.allocation, AssignedAllocation):
            case.arm = "NEOADJUVANT" if rng.random() < 0.6 else "SURGERY_ONLY"
            case.basis = "mdt_decision" if rng.random() < 0.85 else "patient_preference"
        room = (as_of - allocated).days
        if room > 14:
            r = rng.random()
            when = allocated + dt.timedelta(days=rng.randint(7, room))
            if r < P_WITHDRAW:
                case.end = ("withdrawn", when, "withdrew consent", None)
            elif r < P_WITHDRAW + P_EXCLUDE and trial.post_allocation:
                reason = "final pathology: well-differentiated liposarcoma"
                case.end = ("excluded", when, reason, trial.post_allocation)
        cases.append(case)
    # Chronological: positions, study ids and the audit log follow the order of allocation.
    cases.sort(key=lambda c: (c.day, c.site))
    _number(cases)
    return cases


def _number(cases: list[_Case]) -> None:
    """Screening numbers in screening order and study ids in enrolment order, per site and
    trial, as ``screen`` and ``enroll_in`` count them."""
    screened: Counter[tuple[str, str]] = Counter()
    for case in sorted(cases, key=lambda c: (c.screened_on, c.day)):
        key = (case.site, case.trial.id)
        screened[key] += 1
        case.screening_number = f"{case.site}-{case.trial.id}-S{screened[key]:04d}"
    enrolled: Counter[tuple[str, str]] = Counter()
    for case in cases:
        if case.eligible:
            key = (case.site, case.trial.id)
            enrolled[key] += 1
            case.study_id = f"{case.site}-{case.trial.id}-{enrolled[key]:04d}"


# -- one patient's course -----------------------------------------------------------------------


def _course(
    protocol: Protocol,
    arm: str,
    allocated: dt.date,
    calendar: SiteCalendar,
    as_of: dt.date,
    stop: dt.date,
    rng: random.Random,
) -> tuple[Plan, int]:
    """The plan once everything recorded so far is in: (plan, planner calls).

    Events are taken in date order as a coordinator records them. On time costs nothing (the
    plan does not move); a late or missed event re-plans, so later events follow it, exactly
    as ``record`` does. A late date that would break the treatment order (``record`` refuses
    it) is recorded on time instead.
    """
    actuals: dict[str, Actual] = {}
    left: set[str] = set()
    plan = plan_arm(protocol, arm, allocated, calendar)
    calls, dirty = 1, False
    while True:
        moved = None
        for e in sorted(plan.events, key=lambda e: (e.start, e.id)):
            if e.start >= stop:
                break
            if e.id in actuals or e.id in left or e.status != "planned":
                continue
            recent = (as_of - e.start).days <= 14
            if rng.random() < (P_UNRECORDED_RECENT if recent else P_UNRECORDED_OLD):
                left.add(e.id)
                continue
            dirty = True
            r = rng.random()
            if r < P_MISSED:
                moved = e.id
                actuals[e.id] = Actual("missed", reason="patient did not attend")
            elif r < P_MISSED + P_LATE:
                late = calendar.next_working_day(e.start + dt.timedelta(days=rng.randint(1, 9)))
                if late < stop:
                    moved = e.id
                    actuals[e.id] = Actual("done", late, reason=rng.choice(LATE_REASONS))
                else:
                    actuals[e.id] = Actual("done", e.start)
            else:
                actuals[e.id] = Actual("done", e.start)
            if moved:
                break
        if moved is None:
            break
        new = plan_arm(protocol, arm, allocated, calendar, actuals=actuals)
        calls += 1
        if any(v.rule == "order" and moved in v.events for v in new.violations):
            # `record` refuses this; the coordinator records the event as it happened instead.
            actuals[moved] = Actual("done", plan[moved].start)
            new = plan_arm(protocol, arm, allocated, calendar, actuals=actuals)
            calls += 1
        plan, dirty = new, False
    if dirty:
        plan = plan_arm(protocol, arm, allocated, calendar, actuals=actuals)
        calls += 1
    return plan, calls


# -- building -----------------------------------------------------------------------------------


@dataclass
class BuildStats:
    url: str
    patients: int = 0
    screen_failures: int = 0
    events: int = 0
    audit_entries: int = 0
    plans: int = 0
    withdrawn: int = 0
    excluded: int = 0
    seconds: float = 0.0
    setup: float = 0.0
    pure: float = 0.0  # planning, allocation, screening records: no database
    build_rows: float = 0.0  # creating ORM objects (store_plan included)
    sql: float = 0.0  # the ORM's INSERTs
    audit: float = 0.0  # the audit hook: snapshots, hashes, its INSERTs
    commit: float = 0.0
    allocation_checked: int = 0
    by_trial: Counter[str] = field(default_factory=Counter)
    as_of: dt.date = field(default_factory=dt.date.today)
    sites: list[str] = field(default_factory=list)
    writer: str = "bulk"

    @property
    def rate(self) -> float:
        return self.patients / self.seconds if self.seconds else 0.0


def _setup(db: Database) -> dict[str, _Trial]:
    from sarcoma_sched.services.protocols import initialize

    initialize(db, ACTOR)
    with db.read() as session:
        if session.scalar(select(func.count()).select_from(Patient)):
            raise SystemExit(f"{db.url}: already has patients; build into a fresh database")
        stored = {pid: current_protocol(session, pid) for pid in (TNT, NATARS, NATARS_R)}
    trials = {}
    for pid, s in stored.items():
        post = [c.id for c in s.protocol.criteria if c.stage == "post_allocation"]
        if pid == TNT:
            failing = (("ecog", "3"), ("age_years", "16"))
        else:
            failing = (("metastasis", "yes"), ("age_years", "15"))
        trials[pid] = _Trial(s.protocol, s.version_id, failing, (post or [None])[0])
    return trials


def _instant(day: dt.date, hour: int) -> dt.datetime:
    # Working hours in China (UTC+8): 01:00 UTC is 09:00 at the desk.
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _batches(cases: list[_Case], size: int) -> Iterator[list[_Case]]:
    batch: list[_Case] = []
    allocated = 0
    for case in cases:
        batch.append(case)
        allocated += case.eligible
        if allocated >= size:
            yield batch
            batch, allocated = [], 0
    if batch:
        yield batch


@dataclass
class _Prepared:
    case: _Case
    screening: tuple[dict, dict, bool, int | None]
    decision: Decision | None = None
    position: int = 0
    plan: Plan | None = None


def _decide(
    case: _Case, trial: _Trial, field_values: dict, minimizer: _Minimizer | None, check: int
) -> tuple[Decision, bool]:
    """(decision, checked against ``allocate``)."""
    method = trial.protocol.allocation
    arm_ids = [a.id for a in trial.protocol.arms]
    factors = {
        name: case.site if name == SITE_FACTOR else factor_level(field_values[name])
        for name in method_fields(method)
    }
    stream = trial_stream(trial.protocol, SECRET)
    if minimizer is None:  # fixed or assigned: the real allocator, history is not read
        decision = allocate(method, arm_ids, [], factors, trial.position, stream, case.arm)
        return decision, False
    decision = minimizer.decide(factors, trial.position)
    checked = trial.position <= check
    if checked:
        real = allocate(method, arm_ids, trial.prior, factors, trial.position, stream)
        if real.record() != decision.record():
            raise AssertionError(
                f"{trial.id} position {trial.position}: running-count minimization gives "
                f"{decision.record()}, allocate() gives {real.record()}"
            )
    trial.prior.append(
        PriorAllocation(trial.position, decision.arm, decision.factors, decision.stratum)
    )
    return decision, checked


def build_network(
    url: str,
    patients: int,
    *,
    sites: int = 8,
    seed: int = 20261121,
    as_of: dt.date | None = None,
    batch: int = 500,
    check_allocations: int = 300,
    exact_allocation: bool = False,
    writer: str = "bulk",
    jobs: int = 1,
    progress: Callable[[str], None] = print,
) -> BuildStats:
    """Build the network into the (empty or new) database at ``url``; returns the figures.

    ``check_allocations``: how many NATARS-R positions are also computed by ``allocate`` (full
    history) and compared; ``exact_allocation`` computes them all that way (O(n²)).
    ``writer``: ``"bulk"`` (``benchmarks.bulk``: complete rows, ``executemany``/``COPY``) or
    ``"orm"`` (the services' ORM objects and audit hook: the reference, ~10x slower).
    ``jobs``: processes planning the calendars.
    """
    as_of = as_of or dt.date.today()
    started = time.perf_counter()
    db = Database(url, check_schema=False)
    stats = BuildStats(
        db.engine.url.render_as_string(hide_password=True), as_of=as_of, writer=writer
    )
    try:
        trials = _setup(db)
        used, extra = _sites_for(trials, sites)
        if extra:
            _setup_extra_sites(db, extra, trials)
        stats.sites = used
        with db.read() as session:
            calendars = {code: site_calendar(session, code) for code in used}
        rng = random.Random(seed)
        cases = _cohort(rng, trials, used, patients, as_of)
        minimizers = {
            t.id: _Minimizer(t)
            for t in trials.values()
            if isinstance(t.protocol.allocation, MinimizationAllocation)
        }
        screenings = _Screenings()
        check = patients if exact_allocation else check_allocations
        stats.setup = time.perf_counter() - started
        progress(
            f"network: {patients} allocated patients (+{sum(not c.eligible for c in cases)} "
            f"screen failures) over {len(used)} sites, allocations "
            f"{as_of - dt.timedelta(days=DAYS_BACK)} .. {as_of}, batches of {batch}; "
            f"setup {stats.setup:.1f} s"
        )
        _CASES[:] = cases
        _CASE_INDEX.clear()
        _CASE_INDEX.update((id(case), i) for i, case in enumerate(cases))
        _CALENDARS.clear()
        _CALENDARS.update(calendars)
        _AS_OF[:] = [as_of]
        write = _write_bulk if writer == "bulk" else _write_batch
        # fork: the workers inherit the cases, calendars and protocols instead of unpickling
        # them; planning is pure, so the workers share nothing that changes.
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs) if jobs > 1 else contextlib.nullcontext() as pool:
            for number, group in enumerate(_batches(cases, batch), start=1):
                t0 = time.perf_counter()
                prepared = _prepare(group, minimizers, screenings, check, as_of, stats, pool)
                stats.pure += time.perf_counter() - t0
                write(db, prepared, stats)
                elapsed = time.perf_counter() - started
                progress(
                    f"  batch {number:>3}: {stats.patients:>7} patients {stats.events:>9} "
                    f"events  {stats.patients / elapsed:7.0f} patients/s  ("
                    + ", ".join(f"{k} {v:.1f} s" for k, v in _phases(stats).items())
                    + ")"
                )
        if writer == "bulk":
            with db.write(ACTOR, ACTION) as session:
                _bulk_writer(session.connection()).finish(session.connection())
            _WRITERS.clear()
            _INSTALLATIONS.clear()
        with db.read() as session:
            stats.audit_entries = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    finally:
        db.dispose()
    stats.seconds = time.perf_counter() - started
    return stats


def _setup_extra_sites(db: Database, extra: Sequence[str], trials: dict[str, _Trial]) -> None:
    zone = trials[NATARS].protocol.study.time_zone
    country = trials[NATARS].protocol.study.holiday_country
    with db.write(ACTOR, "site add") as session:
        for code in extra:
            if session.get(Site, code) is None:
                session.add(
                    Site(
                        code=code,
                        name=f"Network site {code[3:]}",
                        time_zone=zone,
                        holiday_country=country,
                        holiday_subdivision=None,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )


def _prepare(
    group: list[_Case],
    minimizers: dict[str, _Minimizer],
    screenings: _Screenings,
    check: int,
    as_of: dt.date,
    stats: BuildStats,
    pool: Pool | None,
) -> list[_Prepared]:
    """Screening records, allocation decisions (in order: positions are sequential) and each
    allocated patient's plan (independent of one another: in ``pool`` when there is one)."""
    prepared = []
    jobs = []
    for case in group:
        item = _Prepared(case, screenings(case.trial, case.raw))
        if case.eligible:
            trial = case.trial
            trial.position += 1
            item.position = trial.position
            item.decision, checked = _decide(
                case, trial, item.screening[0], minimizers.get(trial.id), check
            )
            stats.allocation_checked += checked
            jobs.append((_CASE_INDEX[id(case)], item.decision.arm))
        prepared.append(item)
    planned = pool.map(_plan_job, jobs, chunksize=16) if pool else map(_plan_job, jobs)
    allocated = (item for item in prepared if item.decision is not None)
    for item, (plan, calls) in zip(allocated, planned, strict=True):
        item.plan = plan
        stats.plans += calls
    return prepared


# Set before the planning pool forks, so a job names its case by index instead of pickling the
# case (and with it the protocol) for every patient.
_CASES: list[_Case] = []
_CASE_INDEX: dict[int, int] = {}
_CALENDARS: dict[str, SiteCalendar] = {}
_AS_OF: list[dt.date] = []


def _plan_job(job: tuple[int, str]) -> tuple[Plan, int]:
    index, arm = job
    case = _CASES[index]
    assert case.allocation_date is not None
    as_of = _AS_OF[0]
    stop = as_of if case.end is None else min(as_of, case.end[1])
    return _course(
        case.trial.protocol,
        arm,
        case.allocation_date,
        _CALENDARS[case.site],
        as_of,
        stop,
        random.Random(case.seed),
    )


def _write_batch(db: Database, prepared: list[_Prepared], stats: BuildStats) -> None:
    """The ORM path: the services' own row classes, ``store_plan``, ``cancel_future`` and the
    audit hook."""
    timer = _FlushTimer()
    build = 0.0
    with db.write(ACTOR, ACTION) as session:
        session.info[_TIMER_KEY] = timer
        b0 = time.perf_counter()
        rows = [Patient(**_patient_row(p)) for p in prepared]
        session.add_all(rows)
        build += time.perf_counter() - b0
        session.flush()
        b0 = time.perf_counter()
        screened = [
            Screening(**_screening_row(p, patient.id))
            for p, patient in zip(prepared, rows, strict=True)
        ]
        session.add_all(screened)
        build += time.perf_counter() - b0
        session.flush()
        b0 = time.perf_counter()
        for p, patient, screening in zip(prepared, rows, screened, strict=True):
            case, decision, plan = p.case, p.decision, p.plan
            if decision is None or plan is None:
                stats.screen_failures += 1
                continue
            session.add(Enrollment(**_enrollment_row(p, patient.id, screening.id)))
            session.add(Allocation(**_allocation_row(p, patient.id)))
            # The ORM objects of store_plan's rows, so the whole batch is one flush through
            # the audit hook (store_plan itself writes with insert_audited).
            events = [
                ScheduledEvent(**row)
                for row in event_rows(patient, plan, installation_uid(session))
            ]
            session.add_all(events)
            if case.end is not None:
                session.add(ParticipationEnd(**_end_row(case, patient.id)))
                cancel_future(session, events, _end_reason(case), case.end[1])
            _count(stats, p, len(events))
        build += time.perf_counter() - b0
        session.flush()
        c0 = time.perf_counter()
    stats.commit += time.perf_counter() - c0
    stats.build_rows += build
    stats.sql += timer.sql
    stats.audit += timer.audit


def _write_bulk(db: Database, prepared: list[_Prepared], stats: BuildStats) -> None:
    """The bulk path: the same rows as complete dicts, ``benchmarks.bulk`` chains their audit
    entries and inserts them with ``executemany``/``COPY``."""
    b0 = time.perf_counter()
    with db.write(ACTOR, ACTION) as session:
        conn = session.connection()
        writer = _bulk_writer(conn)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in bulk.ORDER}
        now = utc_now()
        for p in prepared:
            case, decision, plan = p.case, p.decision, p.plan
            patient = _patient_row(p)
            patient["id"] = writer.next_id("patients")
            rows["patients"].append(patient)
            screening = _screening_row(p, patient["id"])
            screening["id"] = writer.next_id("screenings")
            rows["screenings"].append(screening)
            if decision is None or plan is None:
                stats.screen_failures += 1
                continue
            enrollment = _enrollment_row(p, patient["id"], screening["id"])
            enrollment["id"] = writer.next_id("enrollments")
            rows["enrollments"].append(enrollment)
            allocation = _allocation_row(p, patient["id"])
            allocation["id"] = writer.next_id("allocations")
            rows["allocations"].append(allocation)
            events = _event_rows(writer, patient, plan, now)
            if case.end is not None:
                end = _end_row(case, patient["id"])
                end["id"] = writer.next_id("participation_ends")
                rows["participation_ends"].append(end)
                _cancel_future_rows(events, _end_reason(case), case.end[1], now)
            rows["scheduled_events"] += events
            _count(stats, p, len(events))
        b1 = time.perf_counter()
        stats.build_rows += b1 - b0
        writer.write(conn, rows, ACTOR, ACTION)
        stats.sql += time.perf_counter() - b1
        c0 = time.perf_counter()
    stats.commit += time.perf_counter() - c0


_WRITERS: dict[int, bulk.BulkWriter] = {}
_INSTALLATIONS: dict[int, str] = {}  # writer -> its database's installation id


def _bulk_writer(conn: Any) -> bulk.BulkWriter:
    # One per build (ids continue from batch to batch); created inside the first transaction.
    key = id(conn.engine)
    if key not in _WRITERS:
        _WRITERS[key] = bulk.BulkWriter(conn)
        # What store_plan reads for the events' UIDs (init wrote the row).
        _INSTALLATIONS[id(_WRITERS[key])] = conn.execute(select(Installation.uid)).scalar_one()
    return _WRITERS[key]


def _event_rows(
    writer: bulk.BulkWriter, patient: dict[str, Any], plan: Plan, now: dt.datetime
) -> list[dict[str, Any]]:
    """What ``store_plan`` stores, with the ids the bulk writer hands out."""
    owner = SimpleNamespace(id=patient["id"], study_id=patient["study_id"])
    installation = _INSTALLATIONS[id(writer)]
    return [
        {"id": writer.next_id("scheduled_events"), **row}
        for row in event_rows(owner, plan, installation, now)  # type: ignore[arg-type]
    ]


def _cancel_future_rows(
    rows: list[dict[str, Any]], reason: str, from_date: dt.date, now: dt.datetime
) -> None:
    """``schedules.cancel_future`` on dicts; ``test_network_builder`` compares the two."""
    for row in rows:
        if row["status"] in ("planned", "done") and row["first_day"] < from_date <= row["last_day"]:
            days = [d for d in row["days"] if dt.date.fromisoformat(d) < from_date]
            last = dt.date.fromisoformat(days[-1])
            row.update(days=days, last_day=last, span_days=(last - row["first_day"]).days)
            row.update(revision=row["revision"] + 1, updated_at=now)
            continue
        if row["status"] == "planned" and row["target"] >= from_date:
            row.update(status="cancelled", reason=reason, revision=row["revision"] + 1)
            row["updated_at"] = now


def _patient_row(p: _Prepared) -> dict[str, Any]:
    case = p.case
    return {
        "protocol_id": case.trial.id,
        "site_code": case.site,
        "screening_number": case.screening_number,
        "study_id": case.study_id,
        "sex": case.sex,
        "birth_date": None,
        "age_at_consent": p.screening[3],
        "created_at": _instant(case.screened_on, 1),
    }


def _screening_row(p: _Prepared, patient_id: int) -> dict[str, Any]:
    values, results, eligible, _age = p.screening
    return {
        "patient_id": patient_id,
        "protocol_version_id": p.case.trial.version_id,
        "screened_on": p.case.screened_on,
        "field_values": values,
        "results": results,
        "eligible": eligible,
        "recorded_at": _instant(p.case.screened_on, 1),
        "recorded_by": ACTOR,
        # A network's screenings stand: none was recorded by mistake.
        "voided_at": None,
        "voided_by": None,
        "void_reason": None,
        "void_note": None,
    }


def _enrollment_row(p: _Prepared, patient_id: int, screening_id: int) -> dict[str, Any]:
    case = p.case
    assert case.consent is not None and case.allocation_date is not None
    return {
        "patient_id": patient_id,
        "protocol_version_id": case.trial.version_id,
        "screening_id": screening_id,
        "consent_date": case.consent,
        "enrolled_at": _instant(case.allocation_date, 2),
        "enrolled_by": ACTOR,
    }


def _allocation_row(p: _Prepared, patient_id: int) -> dict[str, Any]:
    case, decision = p.case, p.decision
    assert decision is not None and case.allocation_date is not None
    return {
        "patient_id": patient_id,
        "protocol_id": case.trial.id,
        "position": p.position,
        "arm": decision.arm,
        "method": case.trial.protocol.allocation.method,
        "stratum": decision.stratum,
        "factors": dict(decision.factors),
        "detail": dict(decision.detail),
        "basis": case.basis,
        "reason": ASSIGNED_REASONS[case.basis, decision.arm] if case.basis else None,
        "allocation_date": case.allocation_date,
        "allocated_at": _instant(case.allocation_date, 2),
        "allocated_by": ACTOR,
    }


def _end_row(case: _Case, patient_id: int) -> dict[str, Any]:
    assert case.end is not None
    kind, when, reason, criterion = case.end
    return {
        "patient_id": patient_id,
        "kind": kind,
        "effective_date": when,
        "reason": reason,
        "note": None,
        "criterion_id": criterion,
        "recorded_at": _instant(when, 3),
        "recorded_by": ACTOR,
    }


def _end_reason(case: _Case) -> str:
    assert case.end is not None
    return f"{case.end[0]}: {case.end[2]}"


def _count(stats: BuildStats, p: _Prepared, events: int) -> None:
    assert p.decision is not None
    stats.patients += 1
    stats.events += events
    stats.by_trial[f"{p.case.trial.id} {p.decision.arm}"] += 1
    if p.case.end is not None:
        stats.withdrawn += p.case.end[0] == "withdrawn"
        stats.excluded += p.case.end[0] == "excluded"


# -- command line -------------------------------------------------------------------------------


def _date(text: str) -> dt.date:
    if text == "today":
        return dt.date.today()
    return dt.date.fromisoformat(text)


def _phases(stats: BuildStats) -> dict[str, float]:
    """Where a build's time went, named for what each writer does in that phase."""
    if stats.writer == "bulk":
        # The bulk writer chains the audit entries inside its write: no separate hook time.
        return {
            "pure (plans, allocation, screening)": stats.pure,
            "row dicts": stats.build_rows,
            "audit chain + executemany/COPY": stats.sql,
            "commit": stats.commit,
        }
    return {
        "pure (plans, allocation, screening)": stats.pure,
        "ORM objects (store_plan included)": stats.build_rows,
        "ORM INSERTs": stats.sql,
        "audit hook": stats.audit,
        "commit": stats.commit,
    }


def report(stats: BuildStats, out: Callable[[str], None] = print) -> None:
    out(
        f"built {stats.patients} patients ({stats.screen_failures} screen failures, "
        f"{stats.withdrawn} withdrawn, {stats.excluded} excluded), {stats.events} events, "
        f"{stats.audit_entries} audit entries, {stats.plans} planner calls in "
        f"{stats.seconds:.1f} s: {stats.rate:.0f} patients/s"
    )
    parts = {"setup (migrations, protocols)": stats.setup, **_phases(stats)}
    parts["other (bookkeeping, Python)"] = stats.seconds - sum(parts.values())
    for name, seconds in parts.items():
        share = seconds / stats.seconds if stats.seconds else 0.0
        per = seconds / stats.patients * 1e3 if stats.patients else 0.0
        out(f"  {name:<38} {seconds:7.1f} s  {share:6.1%}  {per:6.2f} ms/patient")
    out("  " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.by_trial.items())))
    out(
        f"  NATARS-R minimization: {stats.allocation_checked} positions checked against "
        f"allocate(); replay all with: SARCOMA_SCHED_SECRET={SECRET.hex()} "
        f"sarcoma-sched --db ... allocation verify NATARS-R"
    )


def verify_audit(url: str, out: Callable[[str], None] = print) -> bool:
    from sarcoma_sched.db.audit import verify

    db = Database(url)
    try:
        start = time.perf_counter()
        with db.read() as session:
            result = verify(session)
        seconds = time.perf_counter() - start
    finally:
        db.dispose()
    state = "ok" if result.ok else f"{len(result.problems)} problem(s): {result.problems[:3]}"
    out(f"audit verify: {result.entries} entries in {seconds:.1f} s: {state}")
    return result.ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.network", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--db", required=True, help="SQLite file path or postgresql:// URL")
    parser.add_argument("--patients", type=int, required=True, help="allocated patients")
    parser.add_argument("--sites", type=int, default=8, help="sites (extra ones added above 8)")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD [default: today]")
    parser.add_argument("--batch", type=int, default=500, help="patients per transaction")
    parser.add_argument(
        "--check-allocations",
        type=int,
        default=300,
        help="NATARS-R positions also computed by allocate() and compared",
    )
    parser.add_argument(
        "--exact-allocation",
        action="store_true",
        help="compute every NATARS-R position with allocate() over the full history (O(n²))",
    )
    parser.add_argument(
        "--writer",
        choices=("bulk", "orm"),
        default="bulk",
        help="bulk: complete rows by executemany/COPY; orm: the services' objects [bulk]",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="planning processes [all cores]"
    )
    parser.add_argument("--verify", action="store_true", help="run the audit verifier after")
    args = parser.parse_args(argv)
    stats = build_network(
        args.db,
        args.patients,
        sites=args.sites,
        seed=args.seed,
        as_of=args.as_of,
        batch=args.batch,
        check_allocations=args.check_allocations,
        exact_allocation=args.exact_allocation,
        writer=args.writer,
        jobs=args.jobs,
    )
    report(stats)
    if args.verify and not verify_audit(args.db):
        sys.exit(1)


if __name__ == "__main__":
    main()
