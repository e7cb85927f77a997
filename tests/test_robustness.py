"""Rank stability (w2sbench/reports/robustness.py) against hand-computed values on small synthetic suites."""

from __future__ import annotations

import math

import numpy as np
import pytest

from w2sbench.errors import W2SError
from w2sbench.reports.robustness import (
    Suite,
    compare_runs,
    group_spans,
    kendall_tau_b,
    leaderboard_ranks,
    positions,
    robustness,
    table,
)

N = 100


def correct(acc: float, seeds: int = 1) -> np.ndarray:
    """[seeds, N] correctness with exactly acc * N examples right."""
    row = np.zeros(N)
    row[: round(acc * N)] = 1
    return np.tile(row, (seeds, 1))


def three_tasks() -> Suite:
    """Weak 0.60 and ceiling 0.80 on each task (gap 0.2). A: 0.62, 0.62, 0.80 -> pooled 0.24/0.6 = 0.400;
    B: 0.70, 0.70, 0.62 -> 0.22/0.6 = 0.367. Without t3: A 0.04/0.4 = 0.10, B 0.20/0.4 = 0.50 (flipped);
    without t1 (or t2): A 0.22/0.4 = 0.55, B 0.12/0.4 = 0.30 (kept)."""
    tasks = ("t1", "t2", "t3")
    return Suite(
        weak={t: correct(0.60) for t in tasks},
        ceiling={t: correct(0.80) for t in tasks},
        methods={
            "A": {"t1": correct(0.62), "t2": correct(0.62), "t3": correct(0.80)},
            "B": {"t1": correct(0.70), "t2": correct(0.70), "t3": correct(0.62)},
        },
    )


def test_kendall_tau_b_by_hand():
    assert kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs' sign products: +1 +1 +1, 0 (the tie in x), +1 +1 -> 5; n0 = 6, one tie in x: 5 / sqrt(5 * 6)
    assert kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_pooled_pgr_and_positions_by_hand():
    suite = three_tasks()
    assert suite.pooled("A", suite.tasks) == pytest.approx(0.4)
    assert suite.pooled("B", suite.tasks) == pytest.approx(0.22 / 0.6)
    assert suite.pooled("A", ["t1", "t2"]) == pytest.approx(0.1)
    assert positions({"A": 0.4, "B": 0.5, "C": 0.4}) == {"B": 1, "A": 2, "C": 3}
    assert group_spans({"A": 0.5, "B": 0.4, "C": 0.3}, {"A": 1, "B": 1, "C": 3}) == {
        "A": (1, 2),
        "B": (1, 2),
        "C": (3, 3),
    }


def test_leaving_out_the_task_that_decides_flips_the_order():
    report = robustness(three_tasks(), n_resamples=50)
    loto = report["perturbations"]["leave_one_task_out"]
    assert loto["draws"] == 3 and loto["tau_b"] == 1.0 and loto["tau_b_interval"] == [-1.0, 1.0]  # taus 1, 1, -1
    assert report["methods"]["A"]["leave_one_task_out"] == pytest.approx(2 / 3)
    assert report["methods"]["B"]["leave_one_task_out"] == pytest.approx(2 / 3)
    # one seed each: resampling seeds changes nothing
    assert report["perturbations"]["seeds_resampled"]["tau_b_interval"] == [1.0, 1.0]
    assert report["methods"]["A"]["seeds_resampled"] == 1.0
    assert report["methods"]["A"]["least"] == min(report["methods"]["A"][k] for k in report["perturbations"])


def test_entries_that_share_a_rank_stay_in_their_group_when_they_swap():
    report = robustness(three_tasks(), ranks={"A": 1, "B": 1}, n_resamples=50)
    assert report["reference"]["group"] == {"A": [1, 2], "B": [1, 2]}
    assert report["methods"]["A"]["leave_one_task_out"] == 1.0 and report["methods"]["B"]["tasks_resampled"] == 1.0


def test_seed_draws_are_paired_and_move_a_noisy_order():
    """Two methods equal on average whose seeds disagree: resampling seeds reorders them about half the time."""
    suite = three_tasks()
    noisy = np.stack([correct(0.75)[0], correct(0.65)[0]])
    suite.methods = {"A": {t: noisy for t in suite.tasks}, "B": {t: noisy[::-1].copy() for t in suite.tasks}}
    report = robustness(suite, n_resamples=400, seed=1)
    assert 0.3 < report["methods"]["A"]["seeds_resampled"] < 0.7


def test_one_method_is_not_an_order():
    suite = three_tasks()
    del suite.methods["B"]
    with pytest.raises(W2SError, match="at least two"):
        robustness(suite)


def separated(order: tuple[str, str, str]) -> Suite:
    """Weak 0.60, ceiling 0.80 on three tasks; the methods in `order` at 0.65, 0.70, 0.75 on each (pooled PGR
    0.25, 0.50, 0.75). Correct examples are nested prefixes, so a resample of examples keeps the order."""
    tasks = ("t1", "t2", "t3")
    return Suite(
        weak={t: correct(0.60) for t in tasks},
        ceiling={t: correct(0.80) for t in tasks},
        methods={m: {t: correct(acc) for t in tasks} for m, acc in zip(order, (0.65, 0.70, 0.75))},
    )


def test_a_perturbed_run_in_the_same_order_agrees_and_a_reversed_one_disagrees():
    reference = separated(("A", "B", "C"))
    report = robustness(
        reference, n_resamples=200, others={"same": separated(("A", "B", "C")), "reversed": separated(("C", "B", "A"))}
    )
    same, rev = report["perturbations"]["same"], report["perturbations"]["reversed"]
    assert same["tau_b"] == 1.0 and same["tau_b_interval"][0] >= 0.9 and same["run"]
    assert rev["tau_b"] == -1.0 and rev["tau_b_interval"][1] <= -0.9
    assert report["methods"]["C"]["same"] >= 0.95  # first, and stays first
    assert report["methods"]["A"]["reversed"] <= 0.05 and report["methods"]["B"]["reversed"] >= 0.95  # B stays middle
    assert report["methods"]["A"]["least"] == report["methods"]["A"]["reversed"]
    text = table(report)  # a run's own order is one tau-b, not a median over draws
    assert "| same | +1.00 (its run) |" in text and "| reversed | -1.00 (its run) |" in text
    assert "| seeds_resampled | +1.00 (median) |" in text


def test_a_perturbed_run_without_a_reference_method_is_refused():
    other = separated(("A", "B", "C"))
    del other.methods["B"]
    with pytest.raises(W2SError, match="perturbed run 'lr x0.5': method 'B' of the reference is not in it"):
        robustness(separated(("A", "B", "C")), n_resamples=10, others={"lr x0.5": other})


def test_another_pair_is_compared_on_the_methods_both_hold():
    """Reference A < B < C < D (D only here); the other pair holds A, B, C with B and C swapped: of the
    shared three, pairs (A,B), (A,C) agree and (B,C) disagrees, tau-b = (2 - 1) / 3. Examples are nested
    prefixes, so every resample keeps both orders: A stays last (1.0), B and C leave their places (0.0)."""
    reference = separated(("A", "B", "C"))
    reference.methods["D"] = {t: correct(0.78) for t in reference.tasks}
    report = compare_runs(reference, separated(("A", "C", "B")), "model_pair_x", n_resamples=50)
    assert report["perturbation"]["tau_b"] == pytest.approx(1 / 3)
    assert report["perturbation"]["tau_b_interval"] == pytest.approx([1 / 3, 1 / 3])
    assert report["methods"] == {"A": 1.0, "B": 0.0, "C": 0.0}
    # B and C share a rank group on the leaderboard (D's rank is ignored: not in the other run): they stay
    grouped = compare_runs(
        reference, separated(("A", "C", "B")), "model_pair_x", {"A": 3, "B": 1, "C": 1, "D": 1}, n_resamples=50
    )
    assert grouped["methods"] == {"A": 1.0, "B": 1.0, "C": 1.0}
    with pytest.raises(W2SError, match="model_pair_x: the two runs share fewer than two methods"):
        compare_runs(reference, Suite(reference.weak, reference.ceiling, {"A": reference.methods["A"]}), "model_pair_x")


def test_ranks_come_from_the_leaderboard_of_the_results_setting():
    board = {"settings": {"tiny": {"entries": [{"method": "A", "rank": 1}, {"method": "B", "rank": 1}]}}}
    docs = [("r.json", {"setting": {"name": "tiny"}})]
    ranks = leaderboard_ranks(board, "lb.json", docs, ["A", "B"])
    assert ranks == {"A": 1, "B": 1}
    # A and B share rank 1: the leave-out that flips them keeps both in their group (positions 1-2)
    report = robustness(three_tasks(), ranks, n_resamples=10)
    assert report["methods"]["B"]["leave_one_task_out"] == 1.0 and report["reference"]["group"]["B"] == [1, 2]
    with pytest.raises(W2SError, match=r"lb.json: method 'C' has no rank in setting 'tiny'"):
        leaderboard_ranks(board, "lb.json", docs, ["A", "C"])
    with pytest.raises(W2SError, match=r"lb.json: field 'settings.big.entries'"):
        leaderboard_ranks(board, "lb.json", [("r.json", {"setting": {"name": "big"}})], ["A"])
