"""The predictability benchmark's simulation (benchmarks/predictability.py) on a tiny trial."""

from __future__ import annotations

import pytest

from benchmarks.predictability import (
    Scenario,
    View,
    block_predictive,
    distributions_for,
    simulate_guesses,
    wilson,
)
from sarcoma_sched.protocol import find_protocol
from sarcoma_sched.protocol.allocation import BlockAllocation

PATIENTS, TRIALS = 60, 8


@pytest.fixture(scope="module")
def natars():
    protocol = find_protocol("NATARS-R").protocol
    dists, _ = distributions_for(protocol)
    return protocol, [a.id for a in protocol.arms], dists


def _views(dists):
    site = max(dists["site"], key=dists["site"].get)
    return [View("full"), View("full, site", None, site), View("own site", site, site)]


def _by(results):
    return {(r.view, r.strategy): r for r in results}


def test_wilson_interval():
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)


def test_block_posterior_exact_small_cases():
    assert block_predictive([4], [1, 1], []) == pytest.approx([0.5, 0.5])
    assert block_predictive([4], [1, 1], [0]) == pytest.approx([1 / 3, 2 / 3])
    assert block_predictive([4], [1, 1], [0, 0]) == pytest.approx([0.0, 1.0])
    assert block_predictive([4], [1, 1], [0, 1, 1, 0]) == pytest.approx([0.5, 0.5])
    assert block_predictive([4], [1, 1], [0, 0, 0]) is None  # no cut into blocks of 4
    # Sizes 2 or 4, equally likely, after one arm 0: P(size 2) and P(size 4) weigh 1/4 each.
    assert block_predictive([2, 4], [1, 1], [0]) == pytest.approx([1 / 6, 5 / 6])
    # After 0,1 the first block may have ended (size 2) or be half done (size 4).
    assert block_predictive([2, 4], [1, 1], [0, 1]) == pytest.approx([0.5, 0.5])


def test_deterministic_minimization_is_predictable_from_the_whole_database(natars):
    protocol, arms, dists = natars
    method = protocol.allocation.model_copy(update={"probability": 1.0})
    results = simulate_guesses(
        Scenario("p=1", method, method.ratio), arms, dists, _views(dists), PATIENTS, TRIALS, 3
    )
    for r in results:
        assert r.n > 0
        assert 0.0 <= r.rate <= 1.0
        assert r.decided_correct <= r.decided <= r.n
    full = _by(results)["full", "score"]
    assert full.n == PATIENTS * TRIALS
    # With p = 1 the allocator takes the preferred arm; the full-database score IS that arm, so
    # every guess without a tie is right. Ties (about a third of the positions in this design,
    # broken by the allocator's secret draw) are a coin flip for anyone.
    assert full.decided >= 0.5 * full.n
    assert full.decided_correct / full.decided >= 0.9
    assert full.rate >= 0.75
    # The own-site coordinator reads less, so guesses no better than the full reader on the
    # same patients (up to noise).
    by = _by(results)
    best_own = max(by["own site", s].rate for s in ("score", "site first", "convergence"))
    assert best_own <= by["full, site", "score"].rate + 0.05


def test_simple_randomization_is_a_coin_flip_for_every_strategy(natars):
    protocol, arms, dists = natars
    results = simulate_guesses(
        Scenario("simple", None, protocol.allocation.ratio),
        arms,
        dists,
        _views(dists),
        PATIENTS,
        TRIALS,
        5,
    )
    for r in results:
        assert abs(r.rate - 0.5) < 0.15, r  # n >= ~140 guesses: 0.15 is over 3.5 sd


def test_certain_block_guesses_are_right_when_the_whole_stratum_is_visible(natars):
    protocol, arms, dists = natars
    method = BlockAllocation(
        method="stratified_blocks",
        ratio=dict(protocol.allocation.ratio),
        strata=["histology", "site"],
        block_sizes=[4],
    )
    by = _by(
        simulate_guesses(
            Scenario("blocks", method, method.ratio), arms, dists, _views(dists), PATIENTS, 4, 7
        )
    )
    for view in ("full", "own site"):
        r = by[view, "block posterior"]
        assert r.certain > 0 and r.certain_correct == r.certain
        assert r.rate > by[view, "coin"].rate
    # Strata include the site: the coordinator sees all of them, as the full reader does.
    assert by["own site", "block posterior"].correct == by["full, site", "block posterior"].correct
