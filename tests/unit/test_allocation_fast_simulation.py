"""The vectorised simulation gives, for the same streams, the production allocator's assignments.

The exact path runs :func:`allocate` (and :func:`simple_randomization`) patient by patient from a
SimulationStream; the fast path decides every trial of a chunk at once from the same streams'
words made as arrays. Hypothesis chooses the method's parameters, the number and size of trials,
the patients and the keys; the two must agree on every arm and every deterministic count, and
so on whole reports. Each path gets streams of its own, so no cached word is shared.
"""

import bisect

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.allocation import MinimizationRule, simulate
from sarcoma_sched.allocation.exact_simulation import allocator_exact, simple_exact
from sarcoma_sched.allocation.fast_simulation import (
    blocks_fast,
    minimization_fast,
    position_words,
    randbelow_at,
    simple_fast,
)
from sarcoma_sched.allocation.simulate import _patients
from sarcoma_sched.allocation.simulation_stream import SimulationStream
from sarcoma_sched.protocol.allocation import BlockAllocation, Factor, MinimizationAllocation

KEYS = st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**63 - 1))
ARM_NAMES = ["A", "B", "C", "D"]


@st.composite
def designs(draw):
    """Arms, ratio, factors with their levels, and (trials, patients per trial)."""
    n_arms = draw(st.integers(2, 4))
    arms = ARM_NAMES[:n_arms]
    ratio = {a: draw(st.integers(1, 3)) for a in arms}
    n_factors = draw(st.integers(0, 3))
    fields = [f"f{j}" for j in range(n_factors)]
    levels = [[f"L{v}" for v in range(draw(st.integers(1, 4)))] for _ in fields]
    n_trials = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    patients = np.array(
        [
            [[draw(st.integers(0, len(lv) - 1)) for lv in levels] for _ in range(n)]
            for _ in range(n_trials)
        ],
        dtype=np.int64,
    ).reshape(n_trials, n, n_factors)
    keys = [draw(KEYS) for _ in range(n_trials)]
    return arms, ratio, fields, levels, patients, keys


def streams(keys):
    return [SimulationStream(key, index) for key, index in keys]


def assert_same(fast, exact):
    assert fast[0].tolist() == exact[0].tolist()
    assert fast[1].tolist() == exact[1].tolist()


@settings(max_examples=60, deadline=None)
@given(designs(), st.data())
def test_minimization_gives_the_allocators_arms_for_any_factors_weights_and_probability(
    design, data
):
    arms, ratio, fields, levels, patients, keys = design
    if not fields:
        fields, levels = ["f0"], [["L0"]]
        patients = np.zeros((*patients.shape[:2], 1), dtype=np.int64)
    # A factor may be left out of the rule (only the rule's factors are counted).
    used = data.draw(st.lists(st.sampled_from(range(len(fields))), min_size=1, unique=True))
    weights = data.draw(
        st.lists(st.sampled_from([1.0, 0.5, 2.0, 0.3, 1.7]), min_size=len(used), max_size=len(used))
    )
    method = MinimizationAllocation(
        method="minimization",
        ratio=ratio,
        factors=[Factor(field=fields[j], weight=w) for j, w in zip(used, weights, strict=True)],
        probability=data.draw(st.sampled_from([0.51, 0.7, 0.8, 0.95, 1.0])),
        imbalance=data.draw(st.sampled_from(["range", "variance"])),
    )
    rule = MinimizationRule(arms, ratio, weights, method.probability, method.imbalance)
    n_levels = [len(levels[j]) for j in used]
    fast = minimization_fast(rule, used, n_levels, streams(keys), patients)
    exact = allocator_exact(method, arms, fields, levels, streams(keys), patients)
    assert_same(fast, exact)


@settings(max_examples=60, deadline=None)
@given(designs(), st.data())
def test_permuted_blocks_give_the_allocators_arms_stratified_or_not(design, data):
    arms, ratio, fields, levels, patients, keys = design
    unit = sum(ratio.values())
    sizes = data.draw(st.lists(st.sampled_from([unit, 2 * unit, 3 * unit]), min_size=1))
    strata = data.draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    method = BlockAllocation(
        method="stratified_blocks", ratio=ratio, strata=strata, block_sizes=sizes
    )
    # The allocator reads only the strata fields, in the order the method declares them.
    picks = [fields.index(f) for f in strata]
    sub = patients[:, :, picks]
    sub_levels = [levels[j] for j in picks]
    fast = blocks_fast(method, arms, list(range(len(strata))), sub_levels, streams(keys), sub)
    exact = allocator_exact(method, arms, strata, sub_levels, streams(keys), sub)
    assert_same(fast, exact)


@settings(max_examples=40, deadline=None)
@given(designs())
def test_simple_randomization_gives_the_comparators_arms(design):
    arms, ratio, _, _, patients, keys = design
    n = patients.shape[1]
    fast = simple_fast(arms, ratio, streams(keys), n)
    assert_same(fast, simple_exact(arms, ratio, streams(keys), n))


MINIMIZATION = MinimizationAllocation(
    method="minimization",
    ratio={"A": 2, "B": 1, "C": 1},
    factors=[Factor(field="site", weight=1.0), Factor(field="histology", weight=0.5)],
    probability=0.8,
)
BLOCKS = BlockAllocation(
    method="stratified_blocks", ratio={"A": 1, "B": 1}, strata=["site"], block_sizes=[2, 4]
)


@settings(max_examples=10, deadline=None)
@given(
    st.sampled_from([MINIMIZATION, BLOCKS]),
    st.integers(1, 12),
    st.integers(1, 30),
    st.integers(0, 10**9),
)
def test_a_seeds_report_is_the_same_on_the_fast_and_the_exact_path(method, trials, n, seed):
    arms = sorted(method.ratio)
    dist = {"site": {"X": 1, "Y": 2, "Z": 1}, "histology": {"LMS": 3, "UPS": 1}}
    if isinstance(method, BlockAllocation):
        dist = {"site": dist["site"]}
    fast = simulate(method, arms, dist, n, trials, seed)
    exact = simulate(method, arms, dist, n, trials, seed, exact=True)
    assert fast.to_json() == exact.to_json()


@given(KEYS, st.integers(1, 30), st.data())
def test_the_words_made_in_bulk_are_each_derived_streams_draws(key, n, data):
    label = data.draw(st.sampled_from(["minimization", "simple"]))
    (one,) = streams([key])
    words = position_words([one], label, n)
    # Below and above a power of two, and beyond one word's 2**64 for the rejection branch.
    m = data.draw(st.sampled_from([2, 3, 5, 7, 129, 2**32 + 1, 2**63 + 5]))
    values = randbelow_at([one], label, words, 1, m)
    for i in range(n):
        stream = SimulationStream(*key).derive(label, i + 1)
        assert words[0, i, 0] >> 11 == int(stream.uniform() * 2**53)
        assert values[0, i] == stream.randbelow(m)


@given(
    st.lists(st.lists(st.integers(1, 9), min_size=1, max_size=5), max_size=3),
    st.integers(1, 50),
    st.integers(0, 10**6),
)
def test_synthetic_patients_are_choices_from_the_seeds_patient_streams(weights, n, seed):
    cum = [(np.cumsum(np.array(w, dtype=float)) / sum(w)).tolist() for w in weights]
    patients = _patients(SimulationStream.from_seed(seed), range(3, 5), cum, n)
    for row, t in enumerate(range(3, 5)):
        stream = SimulationStream.from_seed(seed).derive("patients", t)
        for i in range(n):
            for f, cw in enumerate(cum):
                # random.choices' rule: bisect_right of u × total over the inner edges.
                expected = bisect.bisect_right(cw[:-1], stream.uniform() * cw[-1])
                assert patients[row, i, f] == expected
    # A trial's first patients are the same in a longer trial.
    longer = _patients(SimulationStream.from_seed(seed), range(3, 5), cum, n + 7)
    assert (longer[:, :n] == patients).all()
