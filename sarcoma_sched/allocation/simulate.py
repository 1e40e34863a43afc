"""Operating characteristics of an allocation method, simulated before the trial starts.

Synthetic patients are drawn from declared factor distributions; every simulated trial runs the
protocol's method and two comparators on the *same* patients (common random numbers, so the
differences between methods are not sampling noise in the patients):

* simple randomization at the same ratio — the unrestricted benchmark for balance and for
  predictability (a guesser can do no better than chance);
* permuted blocks of size 2 × the ratio's sum, stratified by the same factors — the usual
  restricted alternative.

Randomness: a simulation draws from its own seeded stream (:mod:`simulation_stream`, NumPy's
counter-based Philox), not the trial secret's HMAC stream: nothing about a simulated trial is
secret, and the operating characteristics are those of the rule, whichever uniform generator
feeds it. The patients' factors come from the same seed (``derive("patients", t)``), shared by
every method of a trial.

Two paths allocate the simulated patients, from the same streams (each method and trial its own
stream, each decision the stream the allocator derives for it) and with the same assignments:

* the fast path (:mod:`fast_simulation`), NumPy across trials: the allocator's arithmetic for a
  chunk of trials at once, position by position, with each trial's draws for every position
  made in one call;
* the exact path (:mod:`exact_simulation`, ``allocation simulate --exact``): the production
  :func:`allocate` itself, patient by patient over the growing history.

Both feed the same tally (:mod:`tally`), so a seed gives the same report on either.

Imbalance is measured on counts divided by the arms' ratio shares (in lowest terms), as the
range over arms: |N_A − N_B| for two arms 1:1, max − min of the counts for equal ratios, and for
unequal ratios the range of N/ratio (2:1 with 6 and 3 patients is balanced).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sarcoma_sched.allocation.methods import method_fields
from sarcoma_sched.allocation.minimization import MinimizationRule
from sarcoma_sched.errors import AllocationError
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    Allocation,
    BlockAllocation,
    ConcealedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.checks import factor_levels
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.screening import (
    AllRule,
    BooleanField,
    FactRule,
    InRule,
    NotInRule,
    Rule,
)
from sarcoma_sched.vocabulary import CriterionStage

if TYPE_CHECKING:
    # NumPy and the modules built on it load when a simulation runs, not with the package.
    import numpy as np
    from numpy.typing import NDArray

    from sarcoma_sched.allocation.simulation_stream import SimulationStream
    from sarcoma_sched.allocation.tally import Tally

    Ints = NDArray[np.int64]

__all__ = [
    "LevelImbalance",
    "MethodReport",
    "SimulationReport",
    "Stats",
    "default_distributions",
    "eligible_levels",
    "simulate",
]


@dataclass(frozen=True)
class Stats:
    """Over simulated trials: mean, standard deviation, 95th percentile (nearest rank), max."""

    mean: float
    sd: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        n = len(values)
        mean = math.fsum(values) / n
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        ordered = sorted(values)
        return cls(mean, sd, ordered[math.ceil(0.95 * n) - 1], ordered[-1])


@dataclass(frozen=True)
class LevelImbalance:
    """Final imbalance among the patients with one level of one factor."""

    factor: str
    level: str
    final: Stats


@dataclass(frozen=True)
class MethodReport:
    name: str
    description: str
    final_imbalance: Stats
    # The largest imbalance reached at any point of the trial: what an interim analysis or an
    # early stop could meet, not only the final count.
    max_imbalance: Stats
    # Sum over every level of every factor of that level's final imbalance.
    marginal_total: Stats
    marginal: list[LevelImbalance]
    # Strata are the cross of all factors: the sum and the largest final imbalance over strata.
    strata_total: Stats
    strata_max: Stats
    # Proportion of assignments a convergence guesser (Blackwell–Hodges) gets right.
    predictability: Stats
    deterministic_share: Stats
    # Mean final share of patients per arm (the achieved allocation ratio).
    arm_share: dict[str, float]


@dataclass(frozen=True)
class SimulationReport:
    arms: list[str]
    ratio: dict[str, int]
    n_patients: int
    n_trials: int
    seed: int
    distributions: dict[str, dict[str, float]]
    methods: list[MethodReport]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def rows(self) -> list[dict[str, Any]]:
        """One row per method, the same columns in every row (rounded for reading)."""
        out = []
        for m in self.methods:
            row: dict[str, Any] = {
                "method": m.name,
                "final_mean": _r(m.final_imbalance.mean),
                "final_p95": _r(m.final_imbalance.p95),
                "final_max": _r(m.final_imbalance.max),
                "max_mean": _r(m.max_imbalance.mean),
                "max_p95": _r(m.max_imbalance.p95),
                "max_max": _r(m.max_imbalance.max),
                "marginal_mean": _r(m.marginal_total.mean),
                "strata_mean": _r(m.strata_total.mean),
                "strata_max_mean": _r(m.strata_max.mean),
                "predictability": _r(m.predictability.mean),
                "deterministic": _r(m.deterministic_share.mean),
            }
            for arm in self.arms:
                row[f"share_{arm}"] = _r(m.arm_share[arm])
            out.append(row)
        return out

    def marginal_rows(self) -> list[dict[str, Any]]:
        """One row per method, factor and level: final imbalance within the level."""
        return [
            {
                "method": m.name,
                "factor": lv.factor,
                "level": lv.level,
                "mean": _r(lv.final.mean),
                "p95": _r(lv.final.p95),
                "max": _r(lv.final.max),
            }
            for m in self.methods
            for lv in m.marginal
        ]

    def to_text(self) -> str:
        ratio = ":".join(f"{a}={self.ratio[a]}" for a in self.arms)
        lines = [
            f"{self.n_trials} simulated trials of {self.n_patients} patients, seed {self.seed}, "
            f"ratio {ratio}",
            "imbalance = range over arms of count/ratio (|A−B| for 1:1); "
            "final and maximum over the trial; mean, 95th percentile, max over trials",
            "",
            *_table(self.rows()),
        ]
        if self.distributions:
            lines += ["", "Marginal imbalance per factor level (final):", ""]
            lines += _table(self.marginal_rows())
        lines += ["", "Methods:"] + [f"  {m.name}: {m.description}" for m in self.methods]
        return "\n".join(lines)


def simulate(
    method: Allocation,
    arm_ids: Sequence[str],
    factor_distributions: Mapping[str, Mapping[str, float]],
    n_patients: int,
    n_trials: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    *,
    comparators: bool = True,
    exact: bool = False,
) -> SimulationReport:
    """Simulate ``n_trials`` trials of ``n_patients`` under ``method`` and the comparators.

    ``factor_distributions[field][level]`` are relative weights for every factor the method
    reads (see :func:`default_distributions`). ``progress`` is called with 1 after each trial.
    ``comparators=False`` simulates the protocol's method alone (its figures are the same as
    with the comparators). The same seed gives the same report.

    The trials are allocated by the vectorised path (:mod:`fast_simulation`) unless ``exact``,
    which runs the production allocator itself, patient by patient; both draw from the same
    streams and give the same assignments, hence the same report.
    """
    if isinstance(method, ConcealedAllocation):
        raise AllocationError(
            "this trial's allocation parameters are concealed from your role; a statistician "
            "simulates it"
        )
    if not isinstance(method, BlockAllocation | MinimizationAllocation):
        raise AllocationError(
            f"only randomized methods can be simulated; this trial uses {method.method!r}"
        )
    if n_patients < 1 or n_trials < 1:
        raise AllocationError("simulate at least one trial of at least one patient")
    arms = list(arm_ids)
    if set(method.ratio) != set(arms):
        raise AllocationError(
            f"the allocation ratio names {', '.join(method.ratio)} but the arms are "
            f"{', '.join(arms)}"
        )
    # NumPy is imported here, not with the package: every allocation command loads this module.
    from sarcoma_sched.allocation.tally import Tally

    fields = method_fields(method)
    dists = _normalise(fields, factor_distributions)
    levels = [list(dists[f]) for f in fields]
    total = sum(method.ratio.values())
    comparator = BlockAllocation(
        method="stratified_blocks",
        ratio=dict(method.ratio),
        strata=fields,
        block_sizes=[2 * total],
    )
    designs = [_design_for(method, arms, fields, levels, "protocol: "), _simple(arms, method.ratio)]
    if not (
        isinstance(method, BlockAllocation)
        and method.strata == fields
        and set(method.block_sizes) == {2 * total}
    ):
        designs.append(_design_for(comparator, arms, fields, levels, ""))

    if not comparators:
        designs = designs[:1]

    from sarcoma_sched.allocation.simulation_stream import SimulationStream

    root = SimulationStream.from_seed(seed)
    cum = [_cumulative(dists[f].values()) for f in fields]
    tallies = [Tally(arms, method.ratio, [len(lv) for lv in levels]) for _ in designs]
    # The exact path allocates one trial at a time; the fast one a chunk of trials together,
    # large enough for NumPy to pay off and small enough to keep its arrays in memory.
    chunk = 1 if exact else max(1, min(n_trials, _CHUNK_ASSIGNMENTS // n_patients))
    for start in range(0, n_trials, chunk):
        trials = range(start, min(n_trials, start + chunk))
        patients = _patients(root, trials, cum, n_patients)
        for design, tally in zip(designs, tallies, strict=True):
            # root.derive(design.name, t): each method and trial its own stream.
            family = root.family(design.name)
            streams = [family.stream(t) for t in trials]
            run = design.exact if exact else design.fast
            given, deterministic = run(streams, patients)
            tally.add(patients, given, deterministic, design.guess_in_stratum)
        if progress is not None:
            for _ in trials:
                progress(1)

    return SimulationReport(
        arms=arms,
        ratio={a: method.ratio[a] for a in arms},
        n_patients=n_patients,
        n_trials=n_trials,
        seed=seed,
        distributions=dists,
        methods=[
            _report(design, tally, fields, levels, arms)
            for design, tally in zip(designs, tallies, strict=True)
        ],
    )


# Assignments simulated together by the fast path: 2**18 keeps its arrays to tens of MB.
_CHUNK_ASSIGNMENTS = 1 << 18


def _patients(root: SimulationStream, trials: range, cum: list[list[float]], n: int) -> Ints:
    """``patients[t, i, f]``: the level index of factor f of trial t's patient i + 1.

    Trial t's patients read the stream ``root.derive("patients", t)``: one ``uniform()`` per
    patient and factor, patient after patient, each mapped to the level whose cumulative
    weight first exceeds it (``random.choices``' rule: bisect_right of u × total over the
    cumulative weights but the last). A trial's first patients do not depend on how many follow.
    """
    import numpy as np

    from sarcoma_sched.allocation.simulation_stream import uniforms

    n_factors = len(cum)
    out = np.empty((len(trials), n, n_factors), dtype=np.int64)
    if not n_factors:
        return out
    words = root.family("patients").leading(trials, n * n_factors)
    u = uniforms(words).reshape(len(trials), n, n_factors)
    for f, weights in enumerate(cum):
        drawn = u[:, :, f] * (weights[-1] + 0.0)
        if len(weights) > 16:
            out[:, :, f] = np.searchsorted(np.array(weights[:-1]), drawn, side="right")
            continue
        # bisect_right counts the edges at or below the draw; with few levels, count directly.
        level = np.zeros(drawn.shape, dtype=np.int64)
        for edge in weights[:-1]:
            level += drawn >= edge
        out[:, :, f] = level
    return out


def default_distributions(protocol: Protocol) -> dict[str, dict[str, float]]:
    """Factor distributions for :func:`simulate`: declared in the protocol, else uniform.

    ``[allocation.simulation]`` in the protocol file wins; otherwise a category or boolean
    factor is uniform over the levels an eligible patient can have (:func:`eligible_levels`)
    and the site is uniform over the protocol's sites.
    """
    method = protocol.allocation
    declared = getattr(method, "simulation", None) or {}
    out: dict[str, dict[str, float]] = {}
    for name in method_fields(method):
        if name in declared:
            weights = dict(declared[name])
        else:
            weights = dict.fromkeys(eligible_levels(protocol, name), 1.0)
        total = math.fsum(weights.values())
        out[name] = {level: w / total for level, w in weights.items()}
    return out


def eligible_levels(protocol: Protocol, name: str) -> list[str]:
    """The levels of a factor that screening does not rule out for every patient.

    Reads only what every patient must satisfy: screening-stage criteria whose rule is, or is an
    "all" of, an in / not_in / fact rule on the field (NATARS-R's INC-01 admits four of six
    histologies; simulating WDLPS patients would describe a trial that cannot happen).
    Conditional and alternative rules are ignored, so the answer errs towards more levels.
    """
    levels = factor_levels(protocol, name)
    if levels is None:
        raise AllocationError(f"{name!r} is not a category, boolean or site factor")
    if name == SITE_FACTOR:
        return levels
    allowed = set(levels)
    field = next(f for f in protocol.fields if f.id == name)
    for criterion in protocol.criteria:
        if criterion.stage == CriterionStage.SCREENING:
            allowed = _narrow(criterion.rule, name, allowed, isinstance(field, BooleanField))
    kept = [lv for lv in levels if lv in allowed]
    # Contradictory criteria leave no level: simulate all rather than nothing.
    return kept or levels


def _narrow(rule: Rule, name: str, allowed: set[str], boolean: bool) -> set[str]:
    if isinstance(rule, AllRule):
        for sub in rule.rules:
            allowed = _narrow(sub, name, allowed, boolean)
        return allowed
    if isinstance(rule, InRule) and rule.field == name:
        return allowed & set(rule.values)
    if isinstance(rule, NotInRule) and rule.field == name:
        return allowed - set(rule.values)
    if isinstance(rule, FactRule) and rule.field == name and boolean:
        return allowed & {"true" if rule.expected else "false"}
    return allowed


# ---------------------------------------------------------------------------------------------
# Designs: one per simulated method, with its fast (vectorised) and exact (allocator) runs.
# ---------------------------------------------------------------------------------------------

# (trial streams, patients[t, i, f]) -> (arm index per trial and position, deterministic per
# trial)
_Run = Callable[[list["SimulationStream"], "Ints"], tuple["Ints", "Ints"]]


@dataclass(frozen=True)
class _Design:
    name: str
    description: str
    fast: _Run
    exact: _Run
    # Whether the convergence guesser looks at the patient's stratum (blocks) or the whole trial.
    guess_in_stratum: bool = False


def _design_for(
    method: BlockAllocation | MinimizationAllocation,
    arms: list[str],
    fields: list[str],
    levels: list[list[str]],
    prefix: str,
) -> _Design:
    from sarcoma_sched.allocation.exact_simulation import allocator_exact
    from sarcoma_sched.allocation.fast_simulation import blocks_fast, minimization_fast

    exact = partial(allocator_exact, method, arms, fields, levels)
    if isinstance(method, MinimizationAllocation):
        factors = ", ".join(f"{f.field}×{f.weight:g}" for f in method.factors)
        rule = MinimizationRule(
            arms,
            method.ratio,
            [f.weight for f in method.factors],
            method.probability,
            method.imbalance,
        )
        picks = [fields.index(f.field) for f in method.factors]
        return _Design(
            name=f"{prefix}minimization (p={method.probability:g}, {method.imbalance})",
            description=(
                f"Pocock–Simon minimization over {factors}, {method.imbalance} imbalance, "
                f"minimizing arm with probability {method.probability:g}"
            ),
            fast=partial(minimization_fast, rule, picks, [len(levels[i]) for i in picks]),
            exact=exact,
        )
    sizes = ", ".join(str(s) for s in method.block_sizes)
    strata = " × ".join(method.strata) or "none"
    return _Design(
        name=f"{prefix}permuted blocks ({sizes})",
        description=f"stratified permuted blocks of {sizes}, strata: {strata}",
        fast=partial(blocks_fast, method, arms, [fields.index(f) for f in method.strata], levels),
        exact=exact,
        guess_in_stratum=True,
    )


def _simple(arms: list[str], ratio: Mapping[str, int]) -> _Design:
    from sarcoma_sched.allocation.exact_simulation import simple_exact
    from sarcoma_sched.allocation.fast_simulation import simple_fast

    def fast(streams: list[SimulationStream], patients: Ints) -> tuple[Ints, Ints]:
        return simple_fast(arms, ratio, streams, patients.shape[1])

    def exact(streams: list[SimulationStream], patients: Ints) -> tuple[Ints, Ints]:
        return simple_exact(arms, ratio, streams, patients.shape[1])

    return _Design(
        name="simple randomization",
        description="each arm independently with probability ratio/sum",
        fast=fast,
        exact=exact,
    )


def _report(
    design: _Design, tally: Tally, fields: list[str], levels: list[list[str]], arms: list[str]
) -> MethodReport:
    trials = len(tally.final)
    return MethodReport(
        name=design.name,
        description=design.description,
        final_imbalance=Stats.of(tally.final),
        max_imbalance=Stats.of(tally.maximum),
        marginal_total=Stats.of(tally.marginal_total),
        marginal=[
            LevelImbalance(field, level, Stats.of(tally.marginal[f][lv]))
            for f, field in enumerate(fields)
            for lv, level in enumerate(levels[f])
        ],
        strata_total=Stats.of(tally.strata_total),
        strata_max=Stats.of(tally.strata_max),
        predictability=Stats.of(tally.predict),
        deterministic_share=Stats.of(tally.determ),
        arm_share={a: tally.share[i] / trials for i, a in enumerate(arms)},
    )


def _normalise(
    fields: list[str], given: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise AllocationError(
            f"distributions given for {', '.join(unknown)}, which the method does not use "
            f"(factors: {', '.join(fields) or 'none'})"
        )
    out = {}
    for name in fields:
        weights = given.get(name)
        if not weights:
            raise AllocationError(f"no simulated distribution for allocation factor {name!r}")
        bad = [lv for lv, w in weights.items() if not (w >= 0 and math.isfinite(w))]
        if bad:
            raise AllocationError(f"{name}: weights must be finite and non-negative ({bad[0]})")
        kept = {lv: float(w) for lv, w in weights.items() if w > 0}
        total = math.fsum(kept.values())
        if not kept:
            raise AllocationError(f"{name}: give at least one level a positive weight")
        out[name] = {lv: w / total for lv, w in kept.items()}
    return out


def _cumulative(weights: Any) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _r(x: float) -> float:
    return round(x, 3)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    cols = list(rows[0])
    cells = [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    first = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    return [first, rule, *body]
