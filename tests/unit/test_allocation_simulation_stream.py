"""The simulation's stream: Philox words at documented counters, exact draws, the allocator's API.

Production allocation keeps the HMAC DrawStream (tests/unit/test_allocation_stream.py); these
pin the seeded stream a simulation reads instead, one draw at a time and as arrays.
"""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.allocation import DrawStream, allocate
from sarcoma_sched.allocation.random_stream import RandomStream
from sarcoma_sched.allocation.simulation_stream import (
    WORDS,
    SimulationStream,
    randbelow_words,
    uniforms,
)
from sarcoma_sched.protocol.allocation import BlockAllocation, Factor, MinimizationAllocation

KEY = st.integers(0, 2**128 - 1)
INDEX = st.integers(0, 2**63 - 1)
TWO_64 = 2**64


def philox(key, counter, n):
    return np.random.Philox(key=key, counter=counter).random_raw(n).tolist()


def draws_words(stream, n):
    # uniform() reveals a word's top 53 bits; randbelow(2**64) the whole word.
    return [stream.randbelow(TWO_64) for _ in range(n)]


@given(KEY, INDEX, st.integers(1, 40))
def test_a_stream_reads_its_own_counters_then_its_overflow_region(key, index, n):
    first = philox(key, 2 * index, WORDS)
    rest = philox(key, 2**192 | index << 64, 40)
    assert draws_words(SimulationStream(key, index), n) == (first + rest)[:n]


@given(KEY, st.integers(0, 3000), st.integers(0, 20), st.integers(0, 30))
def test_a_familys_streams_and_bulk_words_are_the_single_streams_draws(key, index, before, n):
    parent = SimulationStream(key)
    member = parent.family("minimization").stream(index)
    alone = parent.derive("minimization", index)
    assert draws_words(member, before) == draws_words(alone, before)
    bulk = member.words(n).tolist()
    assert bulk == draws_words(alone, n)
    # And the next single draw continues where the bulk words stopped.
    assert member.uniform() == alone.uniform()
    leading = parent.family("minimization").leading(range(index, index + 3), before + n)
    for r in range(3):
        fresh = SimulationStream(key).derive("minimization", index + r)
        assert leading[r].tolist() == fresh.words(before + n).tolist()
    rows = parent.family("minimization").words(index + 1)
    assert rows[index].tolist() == philox(parent.family("minimization").key, 2 * index, WORDS)


def test_derived_streams_are_apart_by_labels_index_and_parent():
    root = SimulationStream.from_seed(7)
    firsts = [
        root.derive("a").uniform(),
        root.derive("a", 0).uniform(),
        root.derive("a", 1).uniform(),
        root.derive("b", 0).uniform(),
        root.derive("a", 0, 0).uniform(),
        root.derive("a", "0").uniform(),
        root.derive("a", 1).derive("c", 0).uniform(),
        root.derive("a", 2).derive("c", 0).uniform(),
        SimulationStream.from_seed(8).derive("a", 0).uniform(),
        root.derive("a", 2**63).uniform(),  # too large to be an index: hashed with the labels
    ]
    assert len(set(firsts)) == len(firsts)
    assert root.derive("a", 1).uniform() == SimulationStream.from_seed(7).derive("a", 1).uniform()
    with pytest.raises(TypeError):
        root.derive("a", True)


@given(KEY, INDEX, st.integers(2, 2**70))
def test_randbelow_is_in_range_and_the_vector_form_is_its_first_try(key, index, n):
    stream = SimulationStream(key, index)
    word = SimulationStream(key, index).randbelow(TWO_64)
    value = stream.randbelow(n)
    assert 0 <= value < n
    if n <= 2**63:
        values, rejected = randbelow_words(np.array([word], dtype=np.uint64), n)
        if not rejected[0]:
            assert values[0] == value == word % n


def test_randbelow_rejects_exactly_the_words_that_would_bias_it():
    n = 3
    limit = TWO_64 - TWO_64 % n
    words = np.array([0, limit - 1, limit, TWO_64 - 1], dtype=np.uint64)
    values, rejected = randbelow_words(words, n)
    assert rejected.tolist() == [False, False, True, True]
    assert values[:2].tolist() == [0, (limit - 1) % n]
    assert not randbelow_words(words, 4)[1].any()  # a power of two divides 2**64


def test_randbelow_is_uniform_over_a_small_range():
    stream = SimulationStream.from_seed(1).derive("uniformity")
    counts = Counter(stream.randbelow(3) for _ in range(30_000))
    chi2 = sum((counts[v] - 10_000) ** 2 / 10_000 for v in range(3))
    assert chi2 < 13.8  # the 0.999 quantile of chi-square with 2 degrees of freedom


@given(st.lists(st.integers(0, TWO_64 - 1), max_size=20))
def test_the_vector_uniforms_are_the_streams_uniforms(words):
    array = np.array(words, dtype=np.uint64)
    assert uniforms(array).tolist() == [(w >> 11) / 2**53 for w in words]


def test_randbelow_one_draws_nothing_and_bad_bounds_are_refused():
    stream = SimulationStream.from_seed(3)
    assert stream.randbelow(1) == 0
    assert stream.uniform() == SimulationStream.from_seed(3).uniform()
    with pytest.raises(ValueError):
        stream.randbelow(0)
    with pytest.raises(ValueError):
        SimulationStream(2**128)


@pytest.mark.parametrize(
    "method",
    [
        MinimizationAllocation(
            method="minimization",
            ratio={"A": 1, "B": 1},
            factors=[Factor(field="site", weight=1.0)],
            probability=0.8,
        ),
        BlockAllocation(
            method="stratified_blocks", ratio={"A": 1, "B": 1}, strata=["site"], block_sizes=[4]
        ),
    ],
)
def test_the_production_allocator_takes_either_stream(method):
    for stream in (DrawStream(b"k" * 32), SimulationStream.from_seed(5)):
        assert isinstance(stream, RandomStream)
        decision = allocate(method, ["A", "B"], [], {"site": "X"}, 1, stream)
        assert decision.arm in {"A", "B"}
