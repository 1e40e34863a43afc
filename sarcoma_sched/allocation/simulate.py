"""Operating characteristics of an allocation method, simulated before the trial starts.

Synthetic patients are drawn from declared factor distributions; every simulated trial runs the
protocol's method and two comparators on the *same* patients (common random numbers, so the
differences between methods are not sampling noise in the patients):

* simple randomization at the same ratio — the unrestricted benchmark for balance and for
  predictability (a guesser can do no better than chance);
* permuted blocks of size 2 × the ratio's sum, stratified by the same factors — the usual
  restricted alternative.

The methods run through the allocator's own code (:func:`block_arms`, :class:`MinimizationRule`,
draws from a :class:`DrawStream`), only the counts are kept incrementally instead of being
rebuilt from the history at every step, and the per-patient draws are the DrawStream's HMACs
computed directly (``stream.first_uniform`` and its neighbours): the same numbers, without an
object per draw.

Imbalance is measured on counts divided by the arms' ratio shares (in lowest terms), as the
range over arms: |N_A − N_B| for two arms 1:1, max − min of the counts for equal ratios, and for
unequal ratios the range of N/ratio (2:1 with 6 and 3 patients is balanced).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from sarcoma_sched.allocation.blocks import block_arms, forced_from
from sarcoma_sched.allocation.methods import method_fields
from sarcoma_sched.allocation.minimization import MinimizationRule, reduced_ratio
from sarcoma_sched.allocation.records import stratum_key
from sarcoma_sched.allocation.stream import (
    FIRST_BLOCK,
    DrawStream,
    derive_messages,
    derived_key,
    first_uniform,
    randbelow_after,
)
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
) -> SimulationReport:
    """Simulate ``n_trials`` trials of ``n_patients`` under ``method`` and the comparators.

    ``factor_distributions[field][level]`` are relative weights for every factor the method
    reads (see :func:`default_distributions`). ``progress`` is called with 1 after each trial.
    ``comparators=False`` simulates the protocol's method alone (its figures are the same as
    with the comparators). The same seed gives the same report.
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
    simulators: list[_Simulator] = [
        _simulator_for(method, arms, fields, levels, "protocol: "),
        _Simple(arms, method.ratio),
    ]
    if not (
        isinstance(method, BlockAllocation)
        and method.strata == fields
        and set(method.block_sizes) == {2 * total}
    ):
        simulators.append(_simulator_for(comparator, arms, fields, levels, ""))

    if not comparators:
        simulators = simulators[:1]

    root = hashlib.sha256(f"sarcoma-sched/simulation/{seed}".encode()).digest()
    cum = [_cumulative(dists[f].values()) for f in fields]
    tallies = [_Tally(arms, method.ratio, levels) for _ in simulators]
    for t in range(n_trials):
        # Seeded by text: random.Random hashes str seeds with SHA-512, stable across runs.
        rng = random.Random(f"sarcoma-sched/simulation/{seed}/patients/{t}")
        columns = [
            rng.choices(range(len(lv)), cum_weights=cw, k=n_patients)
            for lv, cw in zip(levels, cum, strict=True)
        ]
        patients = list(zip(*columns, strict=True)) if columns else [()] * n_patients
        for sim, tally in zip(simulators, tallies, strict=True):
            # The key of DrawStream(root).derive(sim.name, t): each method and trial its own.
            arms_given, deterministic = sim.run(derived_key(root, sim.name, t), patients)
            tally.run(sim, patients, arms_given, deterministic)
        if progress is not None:
            progress(1)

    return SimulationReport(
        arms=arms,
        ratio={a: method.ratio[a] for a in arms},
        n_patients=n_patients,
        n_trials=n_trials,
        seed=seed,
        distributions=dists,
        methods=[tally.report(sim, fields) for sim, tally in zip(simulators, tallies, strict=True)],
    )


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
# Simulators: one per method, state reset per trial, driven by the shared allocation code.
# ---------------------------------------------------------------------------------------------


class _Simulator:
    name: str
    description: str
    # Whether the convergence guesser looks at the patient's stratum (blocks) or the whole trial.
    guess_in_stratum: bool = False

    def run(self, key: bytes, patients: Sequence[tuple[int, ...]]) -> tuple[list[int], int]:
        """(arm index per patient, how many were deterministic) for one trial whose draws come
        from the stream keyed ``key``; ``patients`` are level indices, position = index + 1."""
        raise NotImplementedError


def _simulator_for(
    method: Allocation, arms: list[str], fields: list[str], levels: list[list[str]], prefix: str
) -> _Simulator:
    if isinstance(method, MinimizationAllocation):
        return _Minimizer(method, arms, fields, levels, prefix)
    assert isinstance(method, BlockAllocation)
    return _Blocks(method, arms, fields, levels, prefix)


class _Simple(_Simulator):
    def __init__(self, arms: list[str], ratio: Mapping[str, int]) -> None:
        self.name = "simple randomization"
        self.description = "each arm independently with probability ratio/sum"
        weights = reduced_ratio(arms, ratio)
        # simple_randomization's mapping of its draw r to an arm, as a table: r -> arm index.
        self.table = [a for a, w in enumerate(weights) for _ in range(w)]
        self.messages: list[bytes] = []

    def run(self, key: bytes, patients: Sequence[tuple[int, ...]]) -> tuple[list[int], int]:
        n = len(patients)
        if len(self.messages) <= n:
            self.messages = derive_messages("simple", n)
        messages, table, m = self.messages, self.table, len(self.table)
        digest = hmac.digest
        out = []
        for position in range(1, n + 1):
            # simple_randomization(arms, ratio, stream.derive("simple", position))
            derived = digest(key, messages[position], "sha256")
            block = digest(derived, FIRST_BLOCK, "sha256")
            out.append(table[randbelow_after(derived, block, 0, m)])
        return out, 0


class _Blocks(_Simulator):
    guess_in_stratum = True

    def __init__(
        self,
        method: BlockAllocation,
        arms: list[str],
        fields: list[str],
        levels: list[list[str]],
        prefix: str,
    ) -> None:
        sizes = ", ".join(str(s) for s in method.block_sizes)
        strata = " × ".join(method.strata) or "none"
        self.name = f"{prefix}permuted blocks ({sizes})"
        self.description = f"stratified permuted blocks of {sizes}, strata: {strata}"
        self.method = method
        self.arms = arms
        self.index = {a: i for i, a in enumerate(arms)}
        self.fields = fields
        self.picks = [fields.index(f) for f in method.strata]
        self.keys: dict[tuple[int, ...], str] = {}
        self.level_names = levels

    def run(self, key: bytes, patients: Sequence[tuple[int, ...]]) -> tuple[list[int], int]:
        # A block is derived once per ~size patients: the allocator's own block_arms, unchanged.
        stream = DrawStream(key)
        # stratum -> [block index, arm indices, next slot, first forced slot]
        state: dict[tuple[int, ...], list[Any]] = {}
        picks = self.picks
        out = []
        forced = 0
        for patient in patients:
            sub = tuple(patient[i] for i in picks)
            st = state.get(sub)
            if st is None or st[2] == len(st[1]):
                k = 0 if st is None else st[0] + 1
                block = block_arms(
                    stream,
                    self._key(sub),
                    k,
                    self.arms,
                    self.method.ratio,
                    self.method.block_sizes,
                )
                st = state[sub] = [k, [self.index[a] for a in block], 0, forced_from(block)]
            slot = st[2]
            st[2] = slot + 1
            out.append(st[1][slot])
            forced += slot >= st[3]
        return out, forced

    def _key(self, sub: tuple[int, ...]) -> str:
        key = self.keys.get(sub)
        if key is None:
            values = {
                name: self.level_names[self.fields.index(name)][lv]
                for name, lv in zip(self.method.strata, sub, strict=True)
            }
            key = self.keys[sub] = stratum_key(self.method.strata, values)
        return key


class _Minimizer(_Simulator):
    def __init__(
        self,
        method: MinimizationAllocation,
        arms: list[str],
        fields: list[str],
        levels: list[list[str]],
        prefix: str,
    ) -> None:
        factors = ", ".join(f"{f.field}×{f.weight:g}" for f in method.factors)
        self.name = f"{prefix}minimization (p={method.probability:g}, {method.imbalance})"
        self.description = (
            f"Pocock–Simon minimization over {factors}, {method.imbalance} imbalance, "
            f"minimizing arm with probability {method.probability:g}"
        )
        self.rule = MinimizationRule(
            arms,
            method.ratio,
            [f.weight for f in method.factors],
            method.probability,
            method.imbalance,
        )
        self.picks = [fields.index(f.field) for f in method.factors]
        self.n_levels = [len(levels[i]) for i in self.picks]
        self.n_arms = len(arms)
        self.messages: list[bytes] = []

    def run(self, key: bytes, patients: Sequence[tuple[int, ...]]) -> tuple[list[int], int]:
        n = len(patients)
        if len(self.messages) <= n:
            self.messages = derive_messages("minimization", n)
        messages, rule, picks = self.messages, self.rule, self.picks
        totals_of, pick, deterministic = rule.totals, rule.pick, rule.deterministic
        digest = hmac.digest
        # counts[f][level][arm]: patients so far with that level of factor f, per arm.
        counts = [[[0] * self.n_arms for _ in range(n_levels)] for n_levels in self.n_levels]
        out = []
        forced = 0
        for position, patient in enumerate(patients, 1):
            rows = [by_level[patient[i]] for by_level, i in zip(counts, picks, strict=True)]
            totals = totals_of(rows)
            # rule.choose(totals, stream.derive("minimization", position)), draw for draw.
            derived = digest(key, messages[position], "sha256")
            block = digest(derived, FIRST_BLOCK, "sha256")
            then = partial(randbelow_after, derived, block, 7)
            arm, preferred = pick(totals, first_uniform(block), then)
            for row in rows:
                row[arm] += 1
            out.append(arm)
            forced += deterministic(preferred)
        return out, forced


# ---------------------------------------------------------------------------------------------
# Tallies: the operating characteristics, accumulated over trials.
# ---------------------------------------------------------------------------------------------


class _Tally:
    def __init__(self, arms: list[str], ratio: Mapping[str, int], levels: list[list[str]]) -> None:
        r = reduced_ratio(arms, ratio)
        self.arms = arms
        self.lcm = math.lcm(*r)
        # Counts are kept multiplied by lcm/ratio so that comparing arms is integer arithmetic.
        self.mult = [self.lcm // x for x in r]
        self.levels = levels
        self.final: list[float] = []
        self.maximum: list[float] = []
        self.marginal_total: list[float] = []
        self.marginal: list[list[list[float]]] = [[[] for _ in lv] for lv in levels]
        self.strata_total: list[float] = []
        self.strata_max: list[float] = []
        self.predict: list[float] = []
        self.determ: list[float] = []
        self.share = [0.0] * len(arms)

    def run(
        self,
        sim: _Simulator,
        patients: Sequence[tuple[int, ...]],
        arms: Sequence[int],
        deterministic: int,
    ) -> None:
        """One trial: ``arms[i]`` is the arm given to ``patients[i]``."""
        k = len(self.arms)
        mult = self.mult
        overall = [0] * k
        marginal = [[[0] * k for _ in lv] for lv in self.levels]
        strata: dict[tuple[int, ...], list[int]] = {}
        worst = 0
        correct = 0.0
        in_stratum = sim.guess_in_stratum
        for patient, arm in zip(patients, arms, strict=True):
            cell = strata.get(patient)
            if cell is None:
                cell = strata[patient] = [0] * k
            # Convergence guess (Blackwell–Hodges): the arm furthest behind its ratio share so
            # far; a tie among m arms is a random guess, credited 1/m (its expected score).
            seen = cell if in_stratum else overall
            low = min(seen)
            if seen[arm] == low:
                correct += 1.0 / seen.count(low)
            step = mult[arm]
            overall[arm] += step
            cell[arm] += step
            for f, lv in enumerate(patient):
                marginal[f][lv][arm] += step
            spread = max(overall) - min(overall)
            if spread > worst:
                worst = spread
        n = len(patients)
        lcm = self.lcm
        self.final.append((max(overall) - min(overall)) / lcm)
        self.maximum.append(worst / lcm)
        total = 0.0
        for f, by_level in enumerate(marginal):
            for lv, counts in enumerate(by_level):
                d = (max(counts) - min(counts)) / lcm
                self.marginal[f][lv].append(d)
                total += d
        self.marginal_total.append(total)
        spreads = [(max(c) - min(c)) / lcm for c in strata.values()]
        self.strata_total.append(math.fsum(spreads))
        self.strata_max.append(max(spreads))
        self.predict.append(correct / n)
        self.determ.append(deterministic / n)
        for a in range(k):
            self.share[a] += overall[a] / mult[a] / n

    def report(self, sim: _Simulator, fields: list[str]) -> MethodReport:
        trials = len(self.final)
        return MethodReport(
            name=sim.name,
            description=sim.description,
            final_imbalance=Stats.of(self.final),
            max_imbalance=Stats.of(self.maximum),
            marginal_total=Stats.of(self.marginal_total),
            marginal=[
                LevelImbalance(field, level, Stats.of(self.marginal[f][lv]))
                for f, field in enumerate(fields)
                for lv, level in enumerate(self.levels[f])
            ],
            strata_total=Stats.of(self.strata_total),
            strata_max=Stats.of(self.strata_max),
            predictability=Stats.of(self.predict),
            deterministic_share=Stats.of(self.determ),
            arm_share={a: self.share[i] / trials for i, a in enumerate(self.arms)},
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
