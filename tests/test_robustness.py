"""Rank stability (w2sbench/reports/robustness.py) against hand-computed values on small synthetic suites."""

from __future__ import annotations

import json
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


def four_tasks_three_families() -> Suite:
    """Weak 0.60 and ceiling 0.80 on four tasks (gap 0.2 each); families sentiment = {t1, t2}, spam = {t3},
    topic = {t4}. Gains over weak per task: A 0.10, 0.10, 0.02, 0.02 (pooled 0.24/0.8 = 0.300); B 0.02, 0.02,
    0.05, 0.05 (0.14/0.8 = 0.175); C 0.01 each (0.050). Reference A > B > C.
    Without sentiment: A 0.04/0.4 = 0.10, B 0.10/0.4 = 0.25, C 0.05: B > A > C, tau-b (2 - 1) / 3 = 1/3.
    Without spam (or topic): A 0.22/0.6, B 0.09/0.6, C 0.03/0.6: the reference order, tau-b 1.
    Without t1 alone (or t2): A 0.14/0.6 = 0.233 > B 0.12/0.6 = 0.200 > C: the order holds, so the family
    leave-out finds what no single task's does."""
    tasks = ("t1", "t2", "t3", "t4")

    def method(*accs: float) -> dict[str, np.ndarray]:
        return {t: correct(a) for t, a in zip(tasks, accs)}

    return Suite(
        weak={t: correct(0.60) for t in tasks},
        ceiling={t: correct(0.80) for t in tasks},
        methods={"A": method(0.70, 0.70, 0.62, 0.62), "B": method(0.62, 0.62, 0.65, 0.65), "C": method(*[0.61] * 4)},
        families={"t1": "sentiment", "t2": "sentiment", "t3": "spam", "t4": "topic"},
    )


def test_leaving_out_a_whole_family_flips_what_no_single_task_does():
    suite = four_tasks_three_families()
    assert suite.pooled("A", suite.tasks) == pytest.approx(0.3)
    assert suite.pooled("B", suite.tasks) == pytest.approx(0.175)
    assert suite.pooled("B", ["t3", "t4"]) == pytest.approx(0.25)
    report = robustness(suite, n_resamples=50)
    fam, loto = report["perturbations"]["leave_one_family_out"], report["perturbations"]["leave_one_task_out"]
    assert fam["draws"] == 3 and fam["families"] == {"sentiment": ["t1", "t2"], "spam": ["t3"], "topic": ["t4"]}
    assert fam["by_left_out"] == pytest.approx({"sentiment": 1 / 3, "spam": 1.0, "topic": 1.0})
    assert fam["tau_b"] == 1.0 and fam["tau_b_interval"] == pytest.approx([1 / 3, 1.0])  # median of 1/3, 1, 1
    assert loto["tau_b_interval"] == [1.0, 1.0] and loto["by_left_out"] == {t: 1.0 for t in suite.tasks}
    # A and B swap places 1 and 2 without sentiment (one of three families); C stays last throughout
    assert report["methods"]["A"]["leave_one_family_out"] == pytest.approx(2 / 3)
    assert report["methods"]["B"]["leave_one_family_out"] == pytest.approx(2 / 3)
    assert report["methods"]["C"]["leave_one_family_out"] == 1.0
    assert report["methods"]["A"]["leave_one_task_out"] == 1.0
    assert report["methods"]["A"]["least"] == pytest.approx(min(2 / 3, report["methods"]["A"]["tasks_resampled"]))
    # A and B in one rank group: the swap keeps both in it
    grouped = robustness(suite, ranks={"A": 1, "B": 1, "C": 3}, n_resamples=50)
    assert grouped["methods"]["A"]["leave_one_family_out"] == 1.0
    text = table(report)
    assert "| leave_one_family_out | +1.00 (median) | [+0.33, +1.00] | 3 |" in text
    assert "leave_one_family_out, tau-b without each: sentiment (2 tasks) +0.33, spam +1.00, topic +1.00" in text


def test_a_suite_without_families_or_of_one_has_no_family_column_and_the_draws_are_unchanged():
    with_families = robustness(four_tasks_three_families(), n_resamples=60, seed=3)
    suite = four_tasks_three_families()
    suite.families = {}
    without = robustness(suite, n_resamples=60, seed=3)
    assert "leave_one_family_out" not in without["perturbations"]
    assert "leave_one_family_out" not in without["methods"]["A"]
    assert "leave_one_family_out" not in table(without)
    # leaving a family out draws nothing at random: the resampled changes' draws are the same with or without
    for kind in ("tasks_resampled", "seeds_resampled"):
        assert with_families["perturbations"][kind] == without["perturbations"][kind]
    suite.families = {t: "sentiment" for t in suite.tasks}  # one family: leaving it out leaves no task
    assert "leave_one_family_out" not in robustness(suite, n_resamples=10)["perturbations"]
    suite.families = {"t1": "sentiment", "t2": "sentiment", "t3": "spam"}
    with pytest.raises(W2SError, match="task 't4' has no family"):
        robustness(suite, n_resamples=10)


def test_the_command_finds_the_families_in_the_suite_of_the_results_tasks(tmp_path, monkeypatch):
    """`w2sbench robustness` on results of three tasks: a suite with exactly those tasks (on
    $W2SBENCH_TASKS_PATH) names two families, so its table has the family column; --suite naming a suite of
    other tasks is one line."""
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    sys.path.insert(0, str(Path(__file__).parent))
    from support.leaderboard import make_results

    from w2sbench.cli import cli
    from w2sbench.schema_io import write_json

    folder = tmp_path / "extra" / "suites"
    folder.mkdir(parents=True)
    (folder / "fam.yaml").write_text(
        "suite: fam\nversion: 1\ndescription: three tasks, two families\n"
        "development: [rotten_tomatoes, vader_amazon]\nheldout: [sms_spam]\n"
        "families:\n  sentiment: [rotten_tomatoes, vader_amazon]\n  spam: [sms_spam]\n"
    )
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", str(tmp_path / "extra"))
    results = tmp_path / "r.json"
    tasks = ("rotten_tomatoes", "vader_amazon", "sms_spam")
    write_json(make_results({"a": 0.84, "b": 0.78}, tasks=tasks, n_boot=50), results)
    got = CliRunner().invoke(cli, ["robustness", str(results), "--resamples", "20", "-o", str(tmp_path / "o.json")])
    assert got.exit_code == 0, got.output
    assert "| leave_one_family_out |" in got.output and "sentiment (2 tasks)" in got.output
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["perturbations"]["leave_one_family_out"]["families"]["spam"] == ["sms_spam"]
    got = CliRunner().invoke(cli, ["robustness", str(results), "--resamples", "20", "--suite", "v1"])
    assert got.exit_code != 0 and "--suite v1: its tasks" in str(got.exception)
