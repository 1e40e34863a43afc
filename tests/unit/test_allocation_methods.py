"""The allocation methods: balance guarantees, determinism under the secret, replay, refusals."""

from collections import Counter, defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.allocation import (
    DrawStream,
    PriorAllocation,
    allocate,
    factor_level,
    replay,
    replay_decisions,
    stratum_key,
    trial_key,
)
from sarcoma_sched.errors import AllocationError
from sarcoma_sched.protocol.allocation import (
    AssignedAllocation,
    BlockAllocation,
    Factor,
    FixedAllocation,
    MinimizationAllocation,
)

SECRETS = st.binary(min_size=16, max_size=32)
RATIOS = st.sampled_from([(1, 1), (2, 1), (1, 2), (1, 1, 1), (2, 1, 1)])
ARMS = ["A", "B", "C"]


def stream_for(secret: bytes, trial: str = "TRIAL") -> DrawStream:
    return DrawStream(trial_key(secret, trial))


def run(method, arms, patients, stream):
    """Allocate ``patients`` (factor dicts) one after another; the decisions and the history."""
    history: list[PriorAllocation] = []
    decisions = []
    for position, factors in enumerate(patients, 1):
        d = allocate(method, arms, history, factors, position, stream)
        decisions.append(d)
        history.append(PriorAllocation(position, d.arm, d.factors, d.stratum))
    return decisions, history


@st.composite
def block_designs(draw):
    ratio = draw(RATIOS)
    arms = ARMS[: len(ratio)]
    total = sum(ratio)
    sizes = draw(st.lists(st.integers(1, 3).map(lambda k: k * total), min_size=1, max_size=3))
    n_factors = draw(st.integers(0, 2))
    levels = {f"f{i}": [f"L{j}" for j in range(draw(st.integers(1, 3)))] for i in range(n_factors)}
    method = BlockAllocation(
        method="stratified_blocks",
        ratio=dict(zip(arms, ratio, strict=True)),
        strata=list(levels),
        block_sizes=sizes,
    )
    patient = st.fixed_dictionaries({f: st.sampled_from(v) for f, v in levels.items()})
    patients = draw(st.lists(patient, min_size=1, max_size=40))
    return method, arms, patients


@settings(max_examples=100)
@given(block_designs(), SECRETS)
def test_permuted_blocks_stay_within_half_a_block_and_complete_blocks_balance(design, secret):
    method, arms, patients = design
    decisions, _ = run(method, arms, patients, stream_for(secret))
    ratio = method.ratio
    total = sum(ratio.values())
    largest = max(method.block_sizes)
    counts: dict[str, Counter] = defaultdict(Counter)
    blocks: dict[tuple, list] = defaultdict(list)
    for d in decisions:
        counts[d.stratum][d.arm] += 1
        # Imbalance relative to the ratio: the spread of count/share over arms. Completed blocks
        # are balanced, so only the open block contributes, and within it an arm is at most
        # (block size / ratio sum) shares ahead: half the block for two arms 1:1.
        scaled = [Fraction(counts[d.stratum][a], ratio[a]) for a in arms]
        assert max(scaled) - min(scaled) <= Fraction(largest, total)
        if ratio == {"A": 1, "B": 1}:
            assert abs(counts[d.stratum]["A"] - counts[d.stratum]["B"]) <= largest // 2
        blocks[d.stratum, d.concealed["block"]].append(d)
    for members in blocks.values():
        size = members[0].concealed["block_size"]
        assert size in method.block_sizes
        assert [m.concealed["slot"] for m in members] == list(range(len(members)))
        if len(members) == size:
            got = Counter(m.arm for m in members)
            assert got == {a: size * ratio[a] // total for a in arms}


@given(block_designs(), SECRETS)
def test_a_block_allocation_is_deterministic_exactly_when_the_rest_of_its_block_is_one_arm(
    design, secret
):
    method, arms, patients = design
    decisions, _ = run(method, arms, patients, stream_for(secret))
    by_block: dict[tuple, list] = defaultdict(list)
    for d in decisions:
        by_block[d.stratum, d.concealed["block"]].append(d)
    for members in by_block.values():
        if len(members) == members[0].concealed["block_size"]:
            arms_in_block = [m.arm for m in members]
            for i, m in enumerate(members):
                assert m.deterministic == (len(set(arms_in_block[i:])) == 1)


def test_block_details_that_would_reveal_the_next_arm_are_kept_out_of_the_record():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[4, 6])
    d = allocate(method, ["A", "B"], [], {}, 1, stream_for(b"s" * 32))
    assert set(d.concealed) == {"block", "block_size", "slot"}
    record = d.record()
    assert set(record) == {"arm", "stratum", "factors", "detail"}
    assert not {"block", "block_size", "slot"} & set(record["detail"])
    assert d.stratum == "all"


@st.composite
def one_factor_minimization(draw):
    levels = [f"L{i}" for i in range(draw(st.integers(1, 4)))]
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1},
        factors=[Factor(field="histology", weight=draw(st.floats(0.01, 10)))],
        probability=1.0,
        imbalance=draw(st.sampled_from(["range", "variance"])),
    )
    patients = draw(st.lists(st.sampled_from(levels).map(lambda v: {"histology": v}), max_size=40))
    return method, patients


@settings(max_examples=100)
@given(one_factor_minimization(), SECRETS)
def test_minimization_with_certainty_and_one_factor_keeps_every_level_within_one(design, secret):
    # With one factor, two arms 1:1 and p = 1: if a level's difference d is not 0, joining the
    # lagging arm gives |d| - 1 and the other |d| + 1, so the lagging arm is the unique
    # minimizer and is taken; if d = 0 both arms give 1 and the tie is random. By induction
    # |d| is always 0 or 1, and every allocation made at |d| = 1 is deterministic.
    method, patients = design
    decisions, _ = run(method, ["A", "B"], patients, stream_for(secret))
    diff: Counter = Counter()
    for d in decisions:
        level = d.factors["histology"]
        assert d.deterministic == (diff[level] != 0)
        diff[level] += 1 if d.arm == "A" else -1
        assert abs(diff[level]) <= 1


def test_minimization_scores_counts_relative_to_an_unequal_ratio():
    # 2:1 and nobody allocated: joining A gives shares (1/2, 0), range 1/2; joining B gives
    # (0, 1), range 1. A is preferred.
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 2, "B": 1},
        factors=[Factor(field="site")],
        probability=0.8,
    )
    d = allocate(method, ["A", "B"], [], {"site": "X"}, 1, stream_for(b"k" * 32))
    assert d.detail["scores"] == {"A": 0.5, "B": 1.0}
    assert d.detail["preferred"] == ["A"]
    assert d.stratum == "site=X"


def test_minimization_with_three_arms_gives_the_others_an_equal_share_of_one_minus_p():
    # History: two X patients in B and C each, none in A, so A is the unique minimizer. Each
    # position draws from its own derived stream, so 3000 positions are 3000 independent draws.
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1, "C": 1},
        factors=[Factor(field="site")],
        probability=0.7,
    )
    history = [PriorAllocation(i, arm, {"site": "X"}) for i, arm in enumerate("BBCC", 1)]
    stream = stream_for(b"q" * 32)
    n = 3000
    got = Counter(
        allocate(method, ARMS, history, {"site": "X"}, 4 + i, stream).arm for i in range(1, n + 1)
    )
    expected = {"A": 0.7, "B": 0.15, "C": 0.15}
    for arm, p in expected.items():
        se = (p * (1 - p) / n) ** 0.5
        assert abs(got[arm] / n - p) < 4.5 * se


def test_a_minimization_tie_between_all_arms_is_broken_uniformly():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1, "C": 1},
        factors=[Factor(field="site")],
        probability=0.9,
    )
    stream = stream_for(b"t" * 32)
    n = 3000
    got = Counter(allocate(method, ARMS, [], {"site": "X"}, i, stream).arm for i in range(1, n + 1))
    se = (1 / 3 * 2 / 3 / n) ** 0.5
    assert all(abs(got[a] / n - 1 / 3) < 4.5 * se for a in ARMS)


@given(st.lists(st.sampled_from(["ONLY", "OTHER"]), max_size=10), st.text(max_size=5))
def test_fixed_allocation_assigns_the_one_arm(prior_arms, site):
    method = FixedAllocation(method="fixed", arm="ONLY")
    arms = ["ONLY", "OTHER"]
    history = [PriorAllocation(i, a, {}) for i, a in enumerate(prior_arms, 1)]
    d = allocate(method, arms, history, {"site": site}, len(history) + 1, stream_for(b"f" * 32))
    assert d.arm == "ONLY"
    assert d.deterministic


def test_assigned_allocation_requires_the_arm_and_records_it():
    method = AssignedAllocation(method="assigned")
    arms = ["SURGERY_ONLY", "NEOADJUVANT"]
    stream = stream_for(b"a" * 32)
    with pytest.raises(AllocationError, match="name the arm"):
        allocate(method, arms, [], {}, 1, stream)
    with pytest.raises(AllocationError, match="unknown arm 'RADIOTHERAPY'"):
        allocate(method, arms, [], {}, 1, stream, assigned_arm="RADIOTHERAPY")
    d = allocate(method, arms, [], {}, 1, stream, assigned_arm="NEOADJUVANT")
    assert d.arm == "NEOADJUVANT"
    assert d.record()["arm"] == "NEOADJUVANT"


def test_a_randomized_trial_refuses_an_assigned_arm():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[2])
    with pytest.raises(AllocationError, match="randomized"):
        allocate(method, ["A", "B"], [], {}, 1, stream_for(b"r" * 32), assigned_arm="A")


def test_a_missing_factor_is_named():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1},
        factors=[Factor(field="histology"), Factor(field="site")],
        probability=0.8,
    )
    with pytest.raises(AllocationError, match="'site'"):
        allocate(method, ["A", "B"], [], {"histology": "LMS"}, 1, stream_for(b"m" * 32))


def test_a_position_not_after_the_history_is_refused():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[2])
    history = [PriorAllocation(1, "A", {}), PriorAllocation(2, "B", {})]
    with pytest.raises(AllocationError, match="position 2"):
        allocate(method, ["A", "B"], history, {}, 2, stream_for(b"p" * 32))


def test_booleans_and_separators_make_distinct_stratum_keys():
    assert factor_level(True) == "true"
    assert factor_level(False) == "false"
    assert stratum_key([], {}) == "all"
    assert stratum_key(["a", "b"], {"a": "x", "b": "y"}) == "a=x|b=y"
    assert stratum_key(["a", "b"], {"a": "x|b=y", "b": "z"}) != stratum_key(
        ["a", "b"], {"a": "x", "b": "y|b=z"}
    )


def randomized_designs():
    blocks = block_designs().map(lambda d: d)
    minim = st.builds(
        lambda p, ratio, measure, patients: (
            MinimizationAllocation(
                method="minimization",
                ratio=dict(zip(ARMS, ratio, strict=False)),
                factors=[Factor(field="histology"), Factor(field="site", weight=0.5)],
                probability=p,
                imbalance=measure,
            ),
            ARMS[: len(ratio)],
            patients,
        ),
        st.floats(0.51, 1.0),
        RATIOS,
        st.sampled_from(["range", "variance"]),
        st.lists(
            st.fixed_dictionaries(
                {"histology": st.sampled_from(["LMS", "DDLPS"]), "site": st.sampled_from("XYZ")}
            ),
            min_size=1,
            max_size=30,
        ),
    )
    return blocks | minim


@settings(max_examples=40)
@given(randomized_designs(), SECRETS)
def test_the_same_secret_and_patients_give_the_same_decisions(design, secret):
    method, arms, patients = design
    first, _ = run(method, arms, patients, stream_for(secret))
    again, _ = run(method, arms, patients, stream_for(secret))
    assert first == again


def test_a_different_secret_gives_a_different_sequence():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[4])
    patients = [{}] * 64
    # 16 blocks of 6 possible orders: two secrets agree by chance with probability 6**-16.
    sequences = {
        tuple(d.arm for d in run(method, ["A", "B"], patients, stream_for(s))[0])
        for s in (b"1" * 32, b"2" * 32, b"3" * 32)
    }
    assert len(sequences) == 3


def test_a_different_trial_under_the_same_secret_gives_a_different_sequence():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[4])
    patients = [{}] * 64
    one = [d.arm for d in run(method, ["A", "B"], patients, stream_for(b"s" * 32, "T1"))[0]]
    two = [d.arm for d in run(method, ["A", "B"], patients, stream_for(b"s" * 32, "T2"))[0]]
    assert one != two


@settings(max_examples=40)
@given(randomized_designs(), SECRETS, st.data())
def test_replay_confirms_every_allocation_and_flags_a_tampered_one(design, secret, data):
    method, arms, patients = design
    decisions, history = run(method, arms, patients, stream_for(secret))
    # An authorized reveal recomputes the concealed block details too.
    assert replay_decisions(method, arms, history, stream_for(secret)) == decisions
    rows = replay(method, arms, history, stream_for(secret))
    assert [r.position for r in rows] == [p.position for p in history]
    assert all(r.match for r in rows)
    assert [r.expected_arm for r in rows] == [p.arm for p in history]

    i = data.draw(st.integers(0, len(history) - 1))
    victim = history[i]
    forged = next(a for a in arms if a != victim.arm)
    tampered = [
        *history[:i],
        PriorAllocation(victim.position, forged, victim.factors),
        *history[i + 1 :],
    ]
    rows = replay(method, arms, tampered, stream_for(secret))
    assert all(r.match for r in rows[:i])
    assert rows[i] == (victim.position, victim.arm, forged, False)


def test_replay_with_the_wrong_secret_does_not_confirm_the_sequence():
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[4])
    _, history = run(method, ["A", "B"], [{}] * 40, stream_for(b"right" * 4))
    rows = replay(method, ["A", "B"], history, stream_for(b"wrong" * 4))
    assert not all(r.match for r in rows)


def test_replay_of_a_fixed_trial_confirms_the_one_arm_and_flags_any_other():
    method = FixedAllocation(method="fixed", arm="ONLY")
    history = [PriorAllocation(1, "ONLY", {}), PriorAllocation(2, "OTHER", {})]
    rows = replay(method, ["ONLY", "OTHER"], history, stream_for(b"x" * 32))
    assert [r.match for r in rows] == [True, False]


def test_replay_refuses_a_history_naming_an_unknown_arm():
    method = FixedAllocation(method="fixed", arm="ONLY")
    with pytest.raises(AllocationError, match="unknown arm 'GHOST'"):
        replay(method, ["ONLY"], [PriorAllocation(1, "GHOST", {})], stream_for(b"x" * 32))
