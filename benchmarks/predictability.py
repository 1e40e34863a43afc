"""Predictability of the next arm from what one role can read (issue 19, item 7).

    python -m benchmarks.predictability [--quick] [--trials 200] [--patients 150] [--seed 1]
                                        [--protocol NATARS-R] [--site CODE ...] [--all]
                                        [--json FILE]

Multi-centre trials are simulated with the engine's production allocator
(``sarcoma_sched.allocation.allocate`` with ``DrawStream(trial_key(secret, trial_id))``, the
history as ``PriorAllocation`` records). Before each patient is allocated, adversaries guess the
arm; the guess is scored against the arm the allocator then gives. Each adversary knows the
protocol (method, ratio, factors, p, block sizes) and the new patient's factor values, and reads
one *view* of the past allocations, in allocation order, with their arms and factor values:

* ``full database, all patients``: every site's allocations (what the red-team's read-only copy
  of the database gave), guessing every patient;
* ``full database, X patients``: the same reader, scored on site X's patients only, so that it
  compares like for like with
* ``own site X``: site X's allocations only, what a coordinator of X reads under PostgreSQL
  row-level security, guessing X's patients. Other sites' patients, and the trial-wide position
  of X's own, are not assumed visible.

By default X is the largest and the smallest recruiting site (``--site`` to choose).

Designs (trial t has the same patients, the same secret and the same tie-break draws in every
design, so the differences between designs are not noise in the patients):

* ``minimization p=…``: the protocol's Pocock–Simon minimization (NATARS-R: histology and site,
  weights 1, range imbalance, 1:1) at p in {1.0, 0.9, 0.8, 0.7}, the protocol's own p marked;
  and at the protocol's p without its site factor;
* ``blocks histology×site […]``: permuted blocks stratified by histology and site, so a site's
  coordinator sees the whole of each of its strata; sizes fixed [4] or random [4, 6], [2, 4, 6];
* ``blocks histology […]``: permuted blocks stratified by histology only, so a block is shared
  between sites and a coordinator sees only part of it;
* ``simple randomization``: the engine's ``simple_randomization``, the unrestricted reference.

Adversary strategies (all printed with ``--all`` and written to ``--json``; the table marks the
best of each (design, view), chosen after the fact, so it is biased upwards by a fraction of the
interval's width):

* ``score``: (minimization) the arm the protocol's minimization rule prefers, with the counts of
  the visible history only (Berger–Exner: "the arm that restores balance"). Over the full
  database this is the allocator's own preferred arm; over one site the site factor's counts are
  exact, the other factors' counts are the site's share of them;
* ``site first``: (minimization with a site factor) the arm behind at the patient's site when the
  site is unbalanced, else ``score``;
* ``block posterior``: (blocks) the most probable next arm of the patient's stratum given the
  visible stratum sequence and the known block sizes: exact Bayes over every way of cutting the
  sequence into blocks (each size drawn with equal chance per listed entry, as the allocator
  draws it; each block a uniform permutation). Where the visible sequence cannot be cut into
  blocks (a partial view) it falls back to the arm behind in the visible stratum;
* ``convergence``: the arm with the fewest visible allocations (ratio-adjusted), Blackwell–Hodges;
  over one site: the arm behind at the site;
* baselines: ``constant``, always the arm of the largest ratio share (the first arm at 1:1), and
  ``coin``, an arm drawn at the ratio.

A tie is broken by a uniform draw per (trial, position, strategy), the same for every view.
``certain (right)``: the share of guesses the block posterior called certain (the rest of the
block is one arm), and how many of those were right: 100 % whenever the view holds the whole
stratum, less when it does not (the model is then wrong about what it sees). Rates carry 95 %
Wilson intervals over the guesses; guesses within a trial are not independent, so the intervals
are somewhat narrower than they should be.

Factor distributions: the protocol's ``[allocation.simulation]`` weights where it declares them;
otherwise the assumptions in ``ASSUMED``, restricted to the levels an eligible patient can
have: a retroperitoneal-sarcoma histology mix without WDLPS (DDLPS most common, then LMS) and
unequal recruitment across the seven sites (the lead site 30 %, the smallest 5 %).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sarcoma_sched.allocation import (
    DrawStream,
    MinimizationRule,
    PriorAllocation,
    allocate,
    default_distributions,
    eligible_levels,
    reduced_ratio,
    simple_randomization,
    stratum_key,
    trial_key,
)
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    BlockAllocation,
    MinimizationAllocation,
)

__all__ = [
    "ASSUMED",
    "Result",
    "Scenario",
    "View",
    "block_predictive",
    "main",
    "scenarios_for",
    "simulate_guesses",
    "wilson",
]

# Relative weights used where the protocol declares no simulation weights ([assumption]).
ASSUMED: dict[str, dict[str, float]] = {
    # Primary retroperitoneal sarcoma series, well-differentiated liposarcoma left out (NATARS-R
    # admits DDLPS, LMS, UPS, SFT): DDLPS about half, LMS about a third, SFT and UPS the rest.
    "histology": {"DDLPS": 55, "LMS": 30, "SFT": 8, "UPS": 7, "OTHER": 5},
    # Unequal recruitment: the lead site largest, the smallest site a handful of patients.
    "site": {
        "PKUIH": 30,
        "SHCH": 20,
        "SHZS": 15,
        "BJFH": 12,
        "PKUFH": 10,
        "XJTU1": 8,
        "QDUAH": 5,
    },
}

FACTOR_FIELDS = ("histology", SITE_FACTOR)
MIN_PROBABILITIES = (1.0, 0.9, 0.8, 0.7)
BLOCK_SIZES = ((4,), (4, 6), (2, 4, 6))
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Scenario:
    name: str
    # None: simple randomization at ``ratio``.
    method: MinimizationAllocation | BlockAllocation | None
    ratio: Mapping[str, int]
    note: str = ""


@dataclass(frozen=True)
class View:
    """One adversary: the allocations it reads (one site's, or every site's when ``reads`` is
    None) and the patients it guesses (one site's, or everyone's when ``guesses`` is None)."""

    name: str
    reads: str | None = None
    guesses: str | None = None

    def sees(self, factors: Mapping[str, str]) -> bool:
        return self.reads is None or factors[SITE_FACTOR] == self.reads

    def tries(self, factors: Mapping[str, str]) -> bool:
        return self.guesses is None or factors[SITE_FACTOR] == self.guesses


# How sure a guess was: a coin among tied arms, one best arm, or certain under the adversary's
# model of the design (block posterior only: the rest of the block is one arm).
COIN, DECIDED, CERTAIN = 0, 1, 2


@dataclass(frozen=True)
class Result:
    scenario: str
    view: str
    strategy: str
    correct: int
    n: int
    # Guesses with one best arm (no coin), and how many of them were right.
    decided: int = 0
    decided_correct: int = 0
    # Guesses the adversary's model called certain, and how many were right (equal when the
    # model is right about what it sees: a complete stratum under known block sizes).
    certain: int = 0
    certain_correct: int = 0

    @property
    def rate(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        out = asdict(self)
        out.update(rate=self.rate, ci_low=low, ci_high=high)
        out["decided_rate"] = self.decided_correct / self.decided if self.decided else None
        return out


# ---------------------------------------------------------------------------------------------
# Adversary strategies: observe() each visible allocation in order, guess() before the next.
# A tie is broken with ``u``, a uniform draw per (trial, position, strategy) shared by every
# view, so two views that face the same tie break it alike.
# ---------------------------------------------------------------------------------------------


class _Strategy:
    name: str

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        """(the guessed arm's index, COIN, DECIDED or CERTAIN)."""
        raise NotImplementedError

    def observe(self, arm: int, factors: Mapping[str, str]) -> None:
        """Nothing to remember by default."""


def _pick(candidates: Sequence[int], u: float) -> tuple[int, int]:
    if len(candidates) == 1:
        return candidates[0], DECIDED
    return candidates[int(u * len(candidates))], COIN


def _behind(counts: Sequence[int], multipliers: Sequence[int], u: float) -> tuple[int, int]:
    """The arm with the fewest allocations, counts scaled to the ratio (1:1: the raw counts)."""
    scaled = [c * m for c, m in zip(counts, multipliers, strict=True)]
    low = min(scaled)
    return _pick([a for a, x in enumerate(scaled) if x == low], u)


class _Constant(_Strategy):
    name = "constant"

    def __init__(self, weights: Sequence[int]) -> None:
        self.arm = max(range(len(weights)), key=lambda a: (weights[a], -a))

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        return self.arm, DECIDED


class _Coin(_Strategy):
    name = "coin"

    def __init__(self, weights: Sequence[int]) -> None:
        # The arm whose share of the ratio contains u.
        self.table = [a for a, w in enumerate(weights) for _ in range(w)]

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        return self.table[int(u * len(self.table))], COIN


class _Convergence(_Strategy):
    """The arm behind (ratio-adjusted) among every visible allocation."""

    name = "convergence"

    def __init__(self, weights: Sequence[int]) -> None:
        lcm = math.lcm(*weights)
        self.multipliers = [lcm // w for w in weights]
        self.counts = [0] * len(weights)

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        return _behind(self.counts, self.multipliers, u)

    def observe(self, arm: int, factors: Mapping[str, str]) -> None:
        self.counts[arm] += 1


class _Score(_Strategy):
    """The minimization rule's preferred arm over the visible counts; optionally the arm behind
    at the patient's site first (that factor's counts are exact in an own-site view)."""

    def __init__(
        self, method: MinimizationAllocation, arms: Sequence[str], *, site_first: bool
    ) -> None:
        self.name = "site first" if site_first else "score"
        self.fields = [f.field for f in method.factors]
        # The production rule (p does not change which arm it prefers).
        self.rule = MinimizationRule(
            arms, method.ratio, [f.weight for f in method.factors], 1.0, method.imbalance
        )
        self.site_rule = MinimizationRule(arms, method.ratio, [1.0], 1.0, method.imbalance)
        self.site_first = site_first
        self.n_arms = len(arms)
        self.counts: list[dict[str, list[int]]] = [{} for _ in self.fields]

    def _level(self, f: int, level: str) -> list[int]:
        return self.counts[f].get(level) or [0] * self.n_arms

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        if self.site_first:
            s = self.fields.index(SITE_FACTOR)
            at_site = self.site_rule.preferred(
                self.site_rule.totals([self._level(s, factors[SITE_FACTOR])])
            )
            if len(at_site) == 1:
                return at_site[0], DECIDED
        level_counts = [self._level(f, factors[name]) for f, name in enumerate(self.fields)]
        return _pick(self.rule.preferred(self.rule.totals(level_counts)), u)

    def observe(self, arm: int, factors: Mapping[str, str]) -> None:
        for f, name in enumerate(self.fields):
            self.counts[f].setdefault(factors[name], [0] * self.n_arms)[arm] += 1


class _BlockState:
    """One visible stratum sequence, with the forward probabilities of block boundaries."""

    __slots__ = ("boundary", "prefix")

    def __init__(self, n_arms: int) -> None:
        self.prefix: list[tuple[int, ...]] = [(0,) * n_arms]  # counts per arm before index j
        self.boundary: list[float] = [1.0]  # P(sequence[:j] is whole blocks), unnormalised


class _BlockDesign:
    """Block sizes and compositions of a design, with the permutation counts the posterior uses."""

    def __init__(self, sizes: Sequence[int], weights: Sequence[int]) -> None:
        total = sum(weights)
        self.prior = {s: sizes.count(s) / len(sizes) for s in set(sizes)}
        self.need = {}
        for s in self.prior:
            if s % total:
                raise ValueError(f"block size {s} is not a multiple of the ratio's sum ({total})")
            self.need[s] = tuple(w * s // total for w in weights)
        self.longest = max(self.prior)

    @staticmethod
    def arrangements(counts: Sequence[int]) -> int:
        """Distinct orders of a multiset with these counts (a multinomial coefficient)."""
        out = math.factorial(sum(counts))
        for c in counts:
            out //= math.factorial(c)
        return out

    def append(self, state: _BlockState, arm: int) -> None:
        last = state.prefix[-1]
        state.prefix.append(tuple(c + (a == arm) for a, c in enumerate(last)))
        n = len(state.prefix) - 1
        f = 0.0
        for s, p in self.prior.items():
            j = n - s
            if j < 0 or state.boundary[j] == 0.0:
                continue
            seg = tuple(x - y for x, y in zip(state.prefix[n], state.prefix[j], strict=True))
            if seg == self.need[s]:
                f += state.boundary[j] * p / self.arrangements(seg)
        state.boundary.append(f)
        if f > 1e250 or 0.0 < f < 1e-250:  # rescale every weight alike: ratios are what count
            top = max(state.boundary[-self.longest :])
            if top > 0.0:
                state.boundary[-self.longest :] = [b / top for b in state.boundary[-self.longest :]]

    def predictive(self, state: _BlockState) -> list[float] | None:
        """P(next arm = a | the sequence), or None when no cut into blocks explains it."""
        n = len(state.prefix) - 1
        n_arms = len(state.prefix[0])
        out = [0.0] * n_arms
        mass = 0.0
        for j in range(max(0, n - self.longest + 1), n + 1):
            fj = state.boundary[j]
            if fj == 0.0:
                continue
            m = n - j
            part = [x - y for x, y in zip(state.prefix[n], state.prefix[j], strict=True)]
            for s, p in self.prior.items():
                if s <= m:
                    continue
                need = self.need[s]
                rest = [k - c for k, c in zip(need, part, strict=True)]
                if min(rest) < 0:
                    continue
                w = fj * p * self.arrangements(rest) / self.arrangements(need)
                mass += w
                for a in range(n_arms):
                    out[a] += w * rest[a] / (s - m)
        if mass == 0.0:
            return None
        return [x / mass for x in out]


def block_predictive(
    sizes: Sequence[int], weights: Sequence[int], sequence: Sequence[int]
) -> list[float] | None:
    """P(next arm) of one stratum after ``sequence`` (arm indices), known ``sizes``, ratio
    ``weights`` (in lowest terms); None if the sequence cannot be cut into such blocks."""
    design = _BlockDesign(sizes, weights)
    state = _BlockState(len(weights))
    for arm in sequence:
        design.append(state, arm)
    return design.predictive(state)


class _BlockPosterior(_Strategy):
    name = "block posterior"

    def __init__(self, method: BlockAllocation, weights: Sequence[int]) -> None:
        self.design = _BlockDesign(method.block_sizes, weights)
        self.strata = list(method.strata)
        self.n_arms = len(weights)
        lcm = math.lcm(*weights)
        self.multipliers = [lcm // w for w in weights]
        self.states: dict[str, _BlockState] = {}

    def _state(self, factors: Mapping[str, str]) -> _BlockState:
        key = stratum_key(self.strata, factors)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = _BlockState(self.n_arms)
        return state

    def guess(self, factors: Mapping[str, str], u: float) -> tuple[int, int]:
        state = self._state(factors)
        probs = self.design.predictive(state)
        if probs is None:  # a partial view: the arm behind in the visible stratum
            return _behind(state.prefix[-1], self.multipliers, u)
        best = max(probs)
        arm, sure = _pick([a for a, p in enumerate(probs) if p >= best - 1e-12], u)
        return arm, CERTAIN if best > 1 - 1e-9 else sure

    def observe(self, arm: int, factors: Mapping[str, str]) -> None:
        self.design.append(self._state(factors), arm)


def _strategies(scenario: Scenario, arms: Sequence[str]) -> list[_Strategy]:
    weights = reduced_ratio(arms, scenario.ratio)
    out: list[_Strategy] = []
    method = scenario.method
    if isinstance(method, MinimizationAllocation):
        out.append(_Score(method, arms, site_first=False))
        if SITE_FACTOR in [f.field for f in method.factors]:
            out.append(_Score(method, arms, site_first=True))
    elif isinstance(method, BlockAllocation):
        out.append(_BlockPosterior(method, weights))
    out += [_Convergence(weights), _Constant(weights), _Coin(weights)]
    return out


# ---------------------------------------------------------------------------------------------
# The simulation.
# ---------------------------------------------------------------------------------------------


def simulate_guesses(
    scenario: Scenario,
    arms: Sequence[str],
    distributions: Mapping[str, Mapping[str, float]],
    views: Sequence[View],
    n_patients: int,
    n_trials: int,
    seed: int,
    trial_id: str = "NATARS-R",
) -> list[Result]:
    """Every (view, strategy)'s guesses over ``n_trials`` trials of ``n_patients``.

    ``distributions[field][level]``: relative weights of ``histology`` and ``site`` (patients
    always carry both, whatever the design reads). Trial t's patients, secret and tie-break
    draws depend only on (seed, t), so every scenario of one run sees the same patients under
    the same keys: the differences between scenarios are not noise in the patients.
    """
    arms = list(arms)
    fields = list(distributions)
    levels = {f: list(distributions[f]) for f in fields}
    cum = {f: _accumulate(distributions[f].values()) for f in fields}
    names = [s.name for s in _strategies(scenario, arms)]
    # tallies[view][strategy]: correct, n, decided, decided correct, certain, certain correct
    tallies = [[[0] * 6 for _ in names] for _ in views]
    for t in range(n_trials):
        rng = random.Random(f"benchmarks.predictability/{seed}/patients/{t}")
        patients = [
            {f: rng.choices(levels[f], cum_weights=cum[f])[0] for f in fields}
            for _ in range(n_patients)
        ]
        secret = hashlib.sha256(f"benchmarks.predictability/{seed}/secret/{t}".encode()).digest()
        stream = DrawStream(trial_key(secret, trial_id))
        coins = random.Random(f"benchmarks.predictability/{seed}/adversary/{t}")
        players = [_strategies(scenario, arms) for _ in views]
        history: list[PriorAllocation] = []
        for position, factors in enumerate(patients, start=1):
            u = [coins.random() for _ in names]
            guesses = [
                [s.guess(factors, ui) for s, ui in zip(strategies, u, strict=True)]
                if view.tries(factors)
                else None
                for view, strategies in zip(views, players, strict=True)
            ]
            if scenario.method is None:
                arm = simple_randomization(arms, scenario.ratio, stream.derive("simple", position))
            else:
                arm = allocate(scenario.method, arms, history, factors, position, stream).arm
            history.append(PriorAllocation(position, arm, factors))
            a = arms.index(arm)
            for view, strategies, guessed, tally in zip(
                views, players, guesses, tallies, strict=True
            ):
                if guessed is not None:
                    for (g, sure), counts in zip(guessed, tally, strict=True):
                        right = g == a
                        counts[0] += right
                        counts[1] += 1
                        if sure >= DECIDED:
                            counts[2] += 1
                            counts[3] += right
                        if sure == CERTAIN:
                            counts[4] += 1
                            counts[5] += right
                if view.sees(factors):
                    for s in strategies:
                        s.observe(a, factors)
    return [
        Result(scenario.name, view.name, name, *counts)
        for view, tally in zip(views, tallies, strict=True)
        for name, counts in zip(names, tally, strict=True)
    ]


def _accumulate(values: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def scenarios_for(method: MinimizationAllocation) -> list[Scenario]:
    """The designs compared: the protocol's minimization at several p, blocks, simple."""
    ratio = dict(method.ratio)
    out = []
    for p in MIN_PROBABILITIES:
        mark = " (protocol)" if p == method.probability else ""
        out.append(
            Scenario(
                f"minimization p={p:g}{mark}",
                method.model_copy(update={"probability": p}),
                ratio,
                f"Pocock-Simon over {', '.join(f.field for f in method.factors)}",
            )
        )
    others = [f for f in method.factors if f.field != SITE_FACTOR]
    if others and len(others) < len(method.factors):
        out.append(
            Scenario(
                f"minimization p={method.probability:g} without site",
                method.model_copy(update={"factors": others}),
                ratio,
                f"the protocol's minimization with the site factor dropped "
                f"({', '.join(f.field for f in others)} only)",
            )
        )
    for strata in (["histology", SITE_FACTOR], ["histology"]):
        for sizes in BLOCK_SIZES:
            label = "fixed" if len(sizes) == 1 else "random"
            out.append(
                Scenario(
                    f"blocks {'×'.join(strata)} {list(sizes)} {label}",
                    BlockAllocation(
                        method="stratified_blocks",
                        ratio=ratio,
                        strata=strata,
                        block_sizes=list(sizes),
                    ),
                    ratio,
                )
            )
    out.append(Scenario("simple randomization", None, ratio, "the unrestricted reference"))
    return out


def distributions_for(protocol: Any) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """(weights of histology and site, where each came from) for ``protocol``."""
    declared = getattr(protocol.allocation, "simulation", None) or {}
    uniform = default_distributions(protocol)
    out, source = {}, {}
    for name in FACTOR_FIELDS:
        eligible = uniform.get(name) or dict.fromkeys(eligible_levels(protocol, name), 1.0)
        if name in declared:
            out[name], source[name] = dict(declared[name]), "protocol [allocation.simulation]"
        elif name in ASSUMED and set(eligible) & set(ASSUMED[name]):
            out[name] = {lv: ASSUMED[name][lv] for lv in eligible if lv in ASSUMED[name]}
            source[name] = "assumed (benchmarks.predictability.ASSUMED), eligible levels only"
        else:
            out[name], source[name] = dict(eligible), "uniform over eligible levels"
        total = math.fsum(out[name].values())
        out[name] = {lv: w / total for lv, w in out[name].items()}
    return out, source


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.predictability", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--protocol", default="NATARS-R", help="a minimization protocol")
    parser.add_argument("--patients", type=int, default=150, help="per simulated trial [150]")
    parser.add_argument("--trials", type=int, default=None, help="simulated trials [200]")
    parser.add_argument("--quick", action="store_true", help="20 trials")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--site",
        action="append",
        help="an adversary's site (repeatable) [the largest and the smallest recruiter]",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--all", action="store_true", help="print every strategy, not the best")
    args = parser.parse_args(argv)
    n_trials = args.trials or (20 if args.quick else 200)
    if args.patients < 1 or n_trials < 1:
        parser.error("--patients and --trials: at least 1")

    from sarcoma_sched.protocol import find_protocol

    loaded = find_protocol(args.protocol)
    protocol = loaded.protocol
    method = protocol.allocation
    if not isinstance(method, MinimizationAllocation):
        raise SystemExit(f"error: {protocol.id} does not allocate by minimization")
    arms = [a.id for a in protocol.arms]
    dists, sources = distributions_for(protocol)
    by_size = sorted(dists[SITE_FACTOR], key=lambda s: -dists[SITE_FACTOR][s])
    sites = args.site or [by_size[0], by_size[-1]]
    unknown = [s for s in sites if s not in dists[SITE_FACTOR]]
    if unknown:
        parser.error(f"unknown site(s) {', '.join(unknown)}; sites: {', '.join(by_size)}")
    views = [View("full database, all patients")]
    for s in sites:
        views.append(View(f"full database, {s} patients", None, s))
        views.append(View(f"own site {s} ({dists[SITE_FACTOR][s]:.0%})", s, s))
    scenarios = scenarios_for(method)
    print(
        f"predictability: {n_trials} trials x {args.patients} patients, seed {args.seed}; "
        f"{protocol.id} ({loaded.path.name if loaded.path else protocol.id}), arms "
        f"{' vs '.join(arms)} {':'.join(str(method.ratio[a]) for a in arms)}"
    )
    for name in FACTOR_FIELDS:
        weights = ", ".join(f"{lv} {w:.2f}" for lv, w in dists[name].items())
        print(f"  {name}: {weights}  [{sources[name]}]")

    results: list[Result] = []
    started = time.perf_counter()
    for scenario in scenarios:
        t0 = time.perf_counter()
        results += simulate_guesses(
            scenario, arms, dists, views, args.patients, n_trials, args.seed, protocol.id
        )
        print(f"  simulated {scenario.name}: {time.perf_counter() - t0:.1f} s", flush=True)
    best = _best(results)
    print()
    _print_table([r for r in results if args.all or id(r) in best], best)
    print(
        "\n* = the best strategy of its (scenario, view), picked after the fact"
        + ("" if args.all else " (--all prints every strategy, baselines included)")
        + f"; {time.perf_counter() - started:.0f} s in all"
    )
    if args.json:
        payload = {
            "benchmark": "predictability",
            "command": "python -m benchmarks.predictability "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "protocol": protocol.id,
            "arms": arms,
            "ratio": dict(method.ratio),
            "n_trials": n_trials,
            "n_patients": args.patients,
            "seed": args.seed,
            "distributions": dists,
            "distribution_sources": sources,
            "views": [asdict(v) for v in views],
            "scenarios": [
                {
                    "name": s.name,
                    "method": None if s.method is None else s.method.model_dump(),
                    "note": s.note,
                }
                for s in scenarios
            ],
            "results": [dict(r.to_dict(), best=id(r) in best) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")


def _best(results: Sequence[Result]) -> set[int]:
    top: dict[tuple[str, str], Result] = {}
    for r in results:
        key = (r.scenario, r.view)
        if key not in top or r.rate > top[key].rate:
            top[key] = r
    return {id(r) for r in top.values()}


def _print_table(results: Sequence[Result], best: set[int]) -> None:
    print(
        f"{'scenario':<37} {'adversary view':<29} {'strategy':<16} {'rate':>6}  {'95% CI':<13}"
        f" {'n':>6}  certain (right)"
    )
    last = None
    for r in results:
        if last is not None and r.scenario != last:
            print()
        last = r.scenario
        low, high = r.interval()
        mark = "*" if id(r) in best else " "
        certain = (
            f"{r.certain / r.n:6.1%} ({r.certain_correct / r.certain:.0%})" if r.certain else ""
        )
        print(
            f"{r.scenario:<37} {r.view:<29} {mark}{r.strategy:<15} {r.rate:6.1%}  "
            f"{low:5.1%}-{high:5.1%}  {r.n:>6}  {certain}"
        )


if __name__ == "__main__":
    main()
