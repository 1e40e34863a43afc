"""Simulated operating characteristics agree with theory derived here, not in the code."""

import itertools
import json
import math
from pathlib import Path

import pytest

from sarcoma_sched.allocation import (
    default_distributions,
    eligible_levels,
    simulate,
)
from sarcoma_sched.errors import AllocationError, ProtocolError
from sarcoma_sched.protocol import find_protocol, parse_protocol
from sarcoma_sched.protocol.allocation import (
    BlockAllocation,
    Factor,
    FixedAllocation,
    MinimizationAllocation,
)

PROTOCOLS = Path(__file__).parents[2] / "protocols"
UNSTRATIFIED_PAIRS = BlockAllocation(
    method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[2]
)


def by_name(report, prefix):
    return next(m for m in report.methods if m.name.startswith(prefix))


def test_simple_randomization_imbalance_matches_the_binomial_expectation():
    # N_A ~ Binomial(n, 1/2) and |N_A - N_B| = |2 N_A - n|, so
    #   E|D| = sum_k |2k - n| C(n, k) / 2^n   and   E[D^2] = Var(2 N_A) = n.
    n, trials = 25, 1500
    mean = sum(abs(2 * k - n) * math.comb(n, k) for k in range(n + 1)) / 2**n
    se = math.sqrt((n - mean**2) / trials)
    report = simulate(UNSTRATIFIED_PAIRS, ["A", "B"], {}, n, trials, seed=11)
    simple = by_name(report, "simple randomization")
    assert abs(simple.final_imbalance.mean - mean) < 4 * se
    # Every trial has odd n, so the final imbalance is odd and at most n.
    assert simple.final_imbalance.max <= n
    # No guesser beats chance against independent fair coins: E(correct) = 1/2 per patient.
    assert abs(simple.predictability.mean - 0.5) < 4 * math.sqrt(0.25 / (n * trials))


def convergence_guessing(m):
    """Exact mean and a conservative variance of correct guesses in one block of 2m (1:1).

    Enumerates the C(2m, m) equally likely block orders; the guesser names the arm with fewer
    patients so far and, on a tie, either arm (scoring 1/2 on average, 1/4 variance each).
    """
    scores, tie_var = [], []
    for a_slots in itertools.combinations(range(2 * m), m):
        arms = ["A" if i in a_slots else "B" for i in range(2 * m)]
        n_a = n_b = 0
        score, ties = 0.0, 0
        for arm in arms:
            if n_a == n_b:
                score += 0.5
                ties += 1
            elif (n_a < n_b) == (arm == "A"):
                score += 1
            n_a += arm == "A"
            n_b += arm == "B"
        scores.append(score)
        tie_var.append(ties / 4)
    count = len(scores)
    mean = sum(scores) / count
    var = sum((s - mean) ** 2 for s in scores) / count + sum(tie_var) / count
    return mean, var


def final_run_length(m):
    """Mean length of the last run of one arm in a random block of 2m: the forced slots."""
    runs = []
    for a_slots in itertools.combinations(range(2 * m), m):
        arms = ["A" if i in a_slots else "B" for i in range(2 * m)]
        run = 1
        while run < 2 * m and arms[-run - 1] == arms[-1]:
            run += 1
        runs.append(run)
    return sum(runs) / len(runs)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_fixed_blocks_are_guessed_as_often_as_the_convergence_strategy_predicts(m):
    blocks_per_trial, trials = 6, 800
    n = 2 * m * blocks_per_trial
    method = BlockAllocation(
        method="stratified_blocks", ratio={"A": 1, "B": 1}, block_sizes=[2 * m]
    )
    report = simulate(method, ["A", "B"], {}, n, trials, seed=m)
    protocol = report.methods[0]
    # Blocks are independent, so a trial's proportion of correct guesses has variance
    # blocks * Var(X) / n^2.
    mean, var = convergence_guessing(m)
    se = math.sqrt(blocks_per_trial * var / n**2 / trials)
    assert abs(protocol.predictability.mean - mean / (2 * m)) < 4 * se
    assert protocol.deterministic_share.mean == pytest.approx(
        final_run_length(m) / (2 * m), abs=0.03
    )
    # Blocks complete at every multiple of 2m, so the final imbalance is zero in every trial.
    assert protocol.final_imbalance.max == 0
    assert protocol.max_imbalance.max <= m


def test_known_block_predictabilities_are_reproduced_by_the_derivation():
    # Cross-check of the enumeration itself against the closed form for one block of 2m under
    # the convergence strategy (Blackwell and Hodges 1957; Matts and Lachin 1988):
    # E(correct) = m + 2^(2m-1) / C(2m, m) - 1/2, ties scored 1/2.
    for m in (1, 2, 3, 4, 5):
        mean, _ = convergence_guessing(m)
        assert mean == pytest.approx(m + 2 ** (2 * m - 1) / math.comb(2 * m, m) - 0.5)


def test_minimization_with_certainty_and_one_factor_never_leaves_a_level_more_than_one_apart():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1},
        factors=[Factor(field="histology")],
        probability=1.0,
    )
    dist = {"histology": {"DDLPS": 0.5, "LMS": 0.3, "UPS": 0.2}}
    report = simulate(method, ["A", "B"], dist, 101, 200, seed=5)
    protocol = report.methods[0]
    assert [lv.level for lv in protocol.marginal] == ["DDLPS", "LMS", "UPS"]
    assert all(lv.final.max <= 1 for lv in protocol.marginal)
    assert protocol.final_imbalance.max <= 3
    # The comparators have no such guarantee, and the report shows it.
    assert by_name(report, "simple").marginal_total.mean > protocol.marginal_total.mean


def test_the_same_seed_gives_the_same_report_and_progress_counts_trials():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 2, "B": 1},
        factors=[Factor(field="histology"), Factor(field="site", weight=0.5)],
        probability=0.8,
    )
    dist = {"histology": {"LMS": 1, "DDLPS": 3}, "site": {"X": 1, "Y": 1}}
    ticks = []
    one = simulate(method, ["A", "B"], dist, 30, 20, seed=3, progress=ticks.append)
    two = simulate(method, ["A", "B"], dist, 30, 20, seed=3)
    assert one.to_json() == two.to_json()
    assert ticks == [1] * 20
    assert one.to_json() != simulate(method, ["A", "B"], dist, 30, 20, seed=4).to_json()
    assert one.distributions["histology"] == {"LMS": 0.25, "DDLPS": 0.75}


def test_the_report_compares_the_method_with_simple_randomization_and_permuted_blocks():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 2, "B": 1},
        factors=[Factor(field="site")],
        probability=0.8,
    )
    report = simulate(method, ["A", "B"], {"site": {"X": 1, "Y": 1}}, 60, 100, seed=9)
    names = [m.name for m in report.methods]
    assert names[0].startswith("protocol: minimization")
    assert names[1:] == ["simple randomization", "permuted blocks (6)"]
    rows = report.rows()
    assert len({tuple(r) for r in rows}) == 1  # the same columns in every row
    assert {"predictability", "deterministic", "share_A", "share_B"} <= set(rows[0])
    # 2:1 is achieved on average (simple randomization: E share = 2/3 exactly).
    simple = by_name(report, "simple")
    assert simple.arm_share["A"] == pytest.approx(2 / 3, abs=4 * math.sqrt(2 / 9 / 6000))
    data = json.loads(report.to_json())
    assert data["methods"][0]["final_imbalance"]["mean"] == report.methods[0].final_imbalance.mean
    text = report.to_text()
    assert "simple randomization" in text and "permuted blocks" in text
    assert {r["factor"] for r in report.marginal_rows()} == {"site"}


def test_only_randomized_methods_are_simulated():
    with pytest.raises(AllocationError, match="randomized"):
        simulate(FixedAllocation(method="fixed", arm="A"), ["A"], {}, 10, 10, seed=1)


def test_a_missing_or_unused_factor_distribution_is_an_error():
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1},
        factors=[Factor(field="site")],
        probability=0.8,
    )
    with pytest.raises(AllocationError, match="'site'"):
        simulate(method, ["A", "B"], {}, 10, 10, seed=1)
    with pytest.raises(AllocationError, match="histology"):
        simulate(method, ["A", "B"], {"site": {"X": 1}, "histology": {"LMS": 1}}, 10, 10, seed=1)


def test_natars_randomized_is_simulated_over_eligible_histologies_and_every_site():
    protocol = find_protocol("NATARS-R", PROTOCOLS).protocol
    dist = default_distributions(protocol)
    # INC-01 admits DDLPS, LMS, UPS and SFT only: WDLPS and OTHER patients cannot be allocated.
    assert dist["histology"] == dict.fromkeys(["DDLPS", "LMS", "UPS", "SFT"], 0.25)
    assert dist["site"] == dict.fromkeys([s.code for s in protocol.sites], 1 / 7)
    assert eligible_levels(protocol, "site") == [s.code for s in protocol.sites]
    report = simulate(protocol.allocation, [a.id for a in protocol.arms], dist, 40, 5, seed=1)
    assert report.methods[0].name == "protocol: minimization (p=0.8, range)"


NATARS_R = (PROTOCOLS / "natars-randomized.toml").read_text(encoding="utf-8")


def test_a_protocol_can_declare_the_expected_mix_of_patients():
    text = (
        NATARS_R
        + "\n[allocation.simulation]\nhistology = { DDLPS = 9, LMS = 6, UPS = 3, SFT = 2 }\n"
    )
    protocol = parse_protocol(text, "natars-r-with-mix.toml")
    dist = default_distributions(protocol)
    assert dist["histology"] == {"DDLPS": 0.45, "LMS": 0.3, "UPS": 0.15, "SFT": 0.1}
    assert len(dist["site"]) == 7  # not declared: uniform


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ("histology = { DDLPS = 1, GIST = 1 }", "allocation.simulation.histology.GIST"),
        ("age_years = { DDLPS = 1 }", "allocation.simulation.age_years"),
        ("histology = { DDLPS = 0 }", "allocation.simulation.histology.DDLPS"),
        ("site = {}", "allocation.simulation.site"),
    ],
)
def test_a_declared_mix_with_unknown_levels_factors_or_weights_is_refused(table, path):
    with pytest.raises(ProtocolError) as e:
        parse_protocol(NATARS_R + f"\n[allocation.simulation]\n{table}\n", "bad.toml")
    assert path in str(e.value)
