"""The simulation's fast draws are DrawStream's draws, so a seed's report never changes."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.allocation import DrawStream, MinimizationRule, simulate
from sarcoma_sched.allocation.stream import (
    FIRST_BLOCK,
    derive_messages,
    derived_key,
    first_uniform,
    randbelow_after,
)
from sarcoma_sched.protocol.allocation import BlockAllocation, Factor, MinimizationAllocation

KEYS = st.binary(min_size=16, max_size=40)


@given(KEYS, st.text(max_size=12), st.integers(0, 10**6))
def test_a_derived_key_is_the_key_of_the_derived_stream(key, label, position):
    hmac_key = derived_key(key, label, position)
    assert DrawStream(hmac_key).uniform() == DrawStream(key).derive(label, position).uniform()


@given(KEYS, st.integers(1, 500))
def test_the_prepared_derive_messages_derive_each_position(key, n):
    messages = derive_messages("minimization", n)
    assert len(messages) == n + 1
    for position in (1, (n + 1) // 2, n):
        derived = hmac.digest(key, messages[position], "sha256")
        expected = DrawStream(key).derive("minimization", position)
        assert DrawStream(derived).bits(64) == expected.bits(64)


@given(KEYS, st.integers(0, 31), st.integers(1, 300))
def test_uniform_then_randbelow_from_the_first_block_equal_the_stream(key, used, m):
    block = hmac.digest(key, FIRST_BLOCK, "sha256")
    stream = DrawStream(key)
    assert first_uniform(block) == DrawStream(key).uniform()
    # After `used` bytes (7 for a uniform draw) the next randbelow, rejection and fallback
    # past the first block included.
    if used:
        stream.bits(8 * used)
    assert randbelow_after(key, block, used, m) == stream.randbelow(m)


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=4),
    st.sampled_from([(1, 1), (2, 1), (1, 3), (2, 2)]),
)
def test_the_two_arm_range_totals_equal_the_general_loop(counts, ratio):
    weights = [1.0, 0.5, 0.3, 2.0][: len(counts)]
    rule = MinimizationRule(["A", "B"], {"A": ratio[0], "B": ratio[1]}, weights, 0.8)
    general = [0.0, 0.0]
    m = rule.multipliers
    for (c0, c1), w in zip(counts, weights, strict=True):
        for a in (0, 1):
            x = [c0 * m[0], c1 * m[1]]
            x[a] += m[a]
            general[a] += w * (max(x) - min(x))
    assert rule.totals(counts) == general  # bit for bit, not approximately


# Digests of reports computed before the simulation's draws were optimised (HEAD cb9900d).
CASES = {
    "pairs_p08": (
        MinimizationAllocation(
            method="minimization",
            ratio={"A": 1, "B": 1},
            factors=[Factor(field="histology", weight=1.0), Factor(field="site", weight=1.0)],
            probability=0.8,
        ),
        ["A", "B"],
        {"histology": {"DDLPS": 3, "LMS": 2, "UPS": 1}, "site": {"X": 1, "Y": 1, "Z": 2}},
        41,
        25,
        3,
        "892ba36bfbbca4214dfdddff76ee0622eb845bf09c9dbd7ea3f0153afe7b693f",
    ),
    "three_arms": (
        MinimizationAllocation(
            method="minimization",
            ratio={"A": 2, "B": 1, "C": 1},
            factors=[Factor(field="site", weight=1.0), Factor(field="histology", weight=0.5)],
            probability=0.7,
        ),
        ["A", "B", "C"],
        {"site": {"X": 1, "Y": 2, "Z": 1}, "histology": {"a": 1, "b": 1}},
        30,
        20,
        5,
        "7dc3f1062edd49ddb4b2c30b8d41657a1521ef2326ad240b92dfcb6475f950cc",
    ),
    "variance": (
        MinimizationAllocation(
            method="minimization",
            ratio={"A": 1, "B": 1, "C": 1},
            factors=[Factor(field="site", weight=1.0)],
            probability=0.9,
            imbalance="variance",
        ),
        ["A", "B", "C"],
        {"site": {"X": 1, "Y": 1}},
        30,
        20,
        2,
        "bf6ef4a8541892f4a41bfe68f43a19f961da2e52319544f9ed9dc3689aa16d57",
    ),
    "blocks": (
        BlockAllocation(
            method="stratified_blocks", ratio={"A": 1, "B": 2}, strata=["site"], block_sizes=[3, 6]
        ),
        ["A", "B"],
        {"site": {"X": 1, "Y": 1}},
        30,
        20,
        4,
        "ee3c1b7f1837599d84e56ae3cf8f4828186601ba0848e698bfbc4935fcdbbc98",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_a_seed_gives_the_same_report_as_before_the_fast_draws(name):
    method, arms, dist, n, trials, seed, digest = CASES[name]
    report = simulate(method, arms, dist, n, trials, seed)
    assert hashlib.sha256(report.to_json().encode()).hexdigest() == digest


def test_the_method_alone_has_the_figures_it_has_beside_the_comparators():
    method, arms, dist, n, trials, seed, _ = CASES["pairs_p08"]
    full = simulate(method, arms, dist, n, trials, seed)
    alone = simulate(method, arms, dist, n, trials, seed, comparators=False)
    assert [m.name for m in alone.methods] == [full.methods[0].name]
    assert alone.methods[0] == full.methods[0]
