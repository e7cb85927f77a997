"""PGR, accuracy, AUROC and the bootstrap intervals against values computed by hand."""

import numpy as np
import pytest

from w2sbench.scoring import (
    accuracy,
    aggregate,
    auroc,
    bootstrap_pgr,
    decode_correct,
    difference,
    encode_correct,
    is_heldout,
    mean_pgr,
    pgr,
    pgr_from_correct,
    pooled_pgr,
    resample_counts,
    seed_draws,
    transfer,
)


def test_pgr_formula():
    assert pgr(0.6, 0.8, 0.7) == pytest.approx(0.5)
    assert pgr(0.6, 0.8, 0.9) == pytest.approx(1.5)
    assert pgr(0.6, 0.8, 0.5) == pytest.approx(-0.5)


def test_accuracy_and_auroc_by_hand():
    probs = np.array([0.9, 0.2, 0.6, 0.4])
    labels = np.array([1, 0, 0, 1])
    assert accuracy(probs, labels) == 0.5  # predicted 1,0,1,0
    # positive scores {0.9, 0.4} vs negative {0.2, 0.6}: 3 of 4 pairs ordered correctly
    assert auroc(probs, labels) == pytest.approx(0.75)
    assert auroc(probs, np.ones(4, dtype=int)) is None
    assert accuracy(np.array([0.5]), np.array([1])) == 1.0  # ties go to label 1


def _probs_from_correct(correct, labels):
    """Probabilities that are right exactly where correct == 1."""
    correct = np.atleast_2d(correct)
    return np.where(correct == 1, labels, 1 - labels).astype(float) * 0.8 + 0.1


def test_seed_bootstrap_by_hand():
    # every example behaves the same, so only the seed resampling moves the numbers:
    # weak seeds always wrong (acc 0), ceiling seeds always right (1), w2s seeds: one wrong, one right.
    labels = np.array([0, 1] * 50)
    weak = _probs_from_correct(np.zeros((2, 100)), labels)
    ceiling = _probs_from_correct(np.ones((2, 100)), labels)
    w2s = _probs_from_correct(np.stack([np.zeros(100), np.ones(100)]), labels)
    r = bootstrap_pgr(labels, weak, ceiling, w2s, n_boot=4000, seed=1)
    assert (r.weak_acc, r.ceiling_acc, r.w2s_acc) == (0.0, 1.0, 0.5)
    assert r.defined and r.pgr == pytest.approx(0.5)
    assert r.pgr_per_seed == [0.0, 1.0]
    assert r.gap_ci == (1.0, 1.0)
    # resampled w2s seed means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 95% interval is [0, 1]
    assert r.pgr_ci == (0.0, 1.0)
    draws = r.boot_pgr
    assert np.mean(draws == 0.5) == pytest.approx(0.5, abs=0.03)


def test_gap_interval_with_zero_makes_pgr_undefined():
    # two test examples, one seed each: weak right on the first only, ceiling and w2s right on both.
    # Example resamples (2,0), (1,1), (0,2) have probabilities 1/4, 1/2, 1/4 and gaps 0, 0.5, 1:
    # the gap's 95% interval is [0, 1], which includes 0.
    labels = np.array([1, 0])
    weak = _probs_from_correct(np.array([[1, 0]]), labels)
    ceiling = _probs_from_correct(np.array([[1, 1]]), labels)
    r = bootstrap_pgr(labels, weak, ceiling, ceiling, n_boot=2000)
    assert r.gap == pytest.approx(0.5)
    assert r.gap_ci == (0.0, 1.0)
    assert not r.defined and r.pgr is None and r.pgr_ci is None and r.pgr_per_seed is None
    assert "includes 0" in r.undefined_reason
    assert mean_pgr([r]) == (None, None)


def test_example_bootstrap_matches_paired_standard_error():
    # one seed each; the gap's interval width should match the paired normal approximation
    rng = np.random.default_rng(0)
    n = 2000
    labels = rng.integers(0, 2, n)
    weak_c = (rng.random(n) < 0.7).astype(int)
    ceil_c = np.where(weak_c == 1, (rng.random(n) < 0.95), (rng.random(n) < 0.6)).astype(int)
    r = bootstrap_pgr(
        labels,
        _probs_from_correct(weak_c, labels),
        _probs_from_correct(ceil_c, labels),
        _probs_from_correct(ceil_c, labels),
        n_boot=4000,
    )
    diff = ceil_c - weak_c
    se = diff.std(ddof=1) / np.sqrt(n)
    width = r.gap_ci[1] - r.gap_ci[0]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert r.gap == pytest.approx(diff.mean())


def test_mean_pgr_averages_tasks():
    labels = np.array([0, 1] * 50)
    ones, zeros = np.ones((1, 100)), np.zeros((1, 100))
    half = np.concatenate([np.ones((1, 50)), np.zeros((1, 50))], axis=1)
    a = bootstrap_pgr(
        labels, _probs_from_correct(zeros, labels), _probs_from_correct(ones, labels), _probs_from_correct(ones, labels)
    )
    b = bootstrap_pgr(
        labels, _probs_from_correct(zeros, labels), _probs_from_correct(ones, labels), _probs_from_correct(half, labels)
    )
    value, ci = mean_pgr([a, b])
    assert a.pgr == pytest.approx(1.0) and b.pgr == pytest.approx(0.5)
    assert value == pytest.approx(0.75)
    assert ci[0] < 0.75 < ci[1]


# ---- per-example correctness, the resampling plan, aggregates over tasks --------------------------------------
def test_correctness_vectors_pack_by_hand():
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1], [0] * 9])
    # 10110000 10000000 -> b'\xb0\x80' -> "sIA="; the padding bits of the last byte are 0
    assert encode_correct(bits) == ["sIA=", "AAA="]
    assert (decode_correct(["sIA=", "AAA="], 9) == bits).all()
    with pytest.raises(ValueError, match="2 bytes, but 17 examples take 3"):
        decode_correct(["sIA="], 17)
    with pytest.raises(ValueError, match="padding bits beyond example 9 are set"):
        decode_correct(["sIE="], 9)  # b'\xb0\x81': a tenth bit
    with pytest.raises(ValueError, match="not base64"):
        decode_correct(["s!A="], 9)


def _constant(correct_per_seed, n):
    """[seeds, n] correctness where every example behaves the same within a seed."""
    return np.repeat(np.array(correct_per_seed, dtype=float)[:, None], n, axis=1)


def _pattern(right, n_repeat):
    """[1, n] correctness: the pattern `right` (per example) repeated."""
    return np.tile(np.array(right, dtype=float), n_repeat)[None, :]


def test_pooled_and_mean_pgr_by_hand():
    # task a: weak always wrong, ceiling always right (gap 1); w2s seed 0 always wrong, seed 1 always right:
    # PGR 0.5, and only the method-seed resampling moves it (draws 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4).
    a = pgr_from_correct(_constant([0, 0], 40), _constant([1, 1], 40), _constant([0, 1], 40), task="a")
    # task b: weak right on 2 of 4 examples, ceiling and w2s on 3 of 4 (the same ones): gap 0.25, PGR exactly 1.
    b = pgr_from_correct(_pattern([1, 1, 0, 0], 10), _pattern([1, 1, 1, 0], 10), _pattern([1, 1, 1, 0], 10), task="b")
    assert (a.pgr, a.gap, b.pgr, b.gap) == (0.5, 1.0, 1.0, 0.25)
    agg = aggregate([a, b])
    assert agg.mean_pgr == pytest.approx(0.75)  # (0.5 + 1) / 2
    assert agg.pooled_pgr == pytest.approx(0.6)  # (0.5 * 1 + 1 * 0.25) / (1 + 0.25): gap-weighted
    assert agg.pooled_gap == pytest.approx(1.25) and agg.pooled_undefined_reason is None
    assert agg.mean_w2s_accuracy == pytest.approx((0.5 + 0.75) / 2)
    # b's PGR draws are all 1, so the mean's draws are (a's draw + 1) / 2: 0.5, 0.75, 1 -> interval [0.5, 1]
    assert agg.mean_pgr_ci == (0.5, 1.0)
    # pooled draws (a's w2s draw + g) / (1 + g), g b's gap draw: 1 whenever a's draw is 1 (a quarter of them)
    assert agg.pooled_pgr_ci[1] == pytest.approx(1.0) and 0.1 < agg.pooled_pgr_ci[0] < 0.3


def test_pooled_is_defined_where_the_summed_gap_is_clear():
    # a task whose gap's interval includes 0 makes the mean undefined, not the pooled PGR
    weak, ceiling = _pattern([1, 0], 1), _pattern([1, 1], 1)  # gap 0.5 on 2 examples: its interval is [0, 1]
    noisy = pgr_from_correct(weak, ceiling, ceiling, task="noisy")
    clear = pgr_from_correct(_pattern([1, 0], 500), _pattern([1, 1], 500), _pattern([1, 0, 1, 1], 250), task="c")
    assert not noisy.defined and clear.defined
    agg = aggregate([noisy, clear])
    assert agg.mean_pgr is None and agg.mean_pgr_ci is None
    assert agg.pooled_pgr == pytest.approx((0.5 + 0.25) / (0.5 + 0.5))
    flat = pgr_from_correct(_pattern([1, 0], 500), _pattern([1, 0], 500), _pattern([1, 0], 500), task="flat")
    undefined = aggregate([flat])
    assert undefined.pooled_pgr is None and "summed ceiling-weak gap" in undefined.pooled_undefined_reason


def _task(rng, n, weak_acc, gap, recovered):
    """Independent per-example correctness, 3 seeds per group: weak, ceiling = weak + gap, w2s = weak +
    recovered * gap (in expectation)."""
    weak = (rng.random((3, n)) < weak_acc).astype(float)
    up = lambda frac: np.maximum(weak, (rng.random((3, n)) < frac / (1 - weak_acc)).astype(float))  # noqa: E731
    return weak, up(gap), up(recovered * gap)


def test_a_small_gap_dominates_the_mean_not_the_pooled_pgr():
    rng = np.random.default_rng(3)
    tasks = {"big1": 0.15, "big2": 0.15, "small": 0.03}  # gap per task
    scores = [pgr_from_correct(*_task(rng, 2000, 0.7, g, 0.5), task=t) for t, g in tasks.items()]
    assert all(s.defined for s in scores)
    agg = aggregate(scores)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(agg.mean_pgr_ci) > 2 * width(agg.pooled_pgr_ci)
    # the small-gap task alone spans most of the mean's interval
    assert width(scores[2].pgr_ci) / 3 > 0.6 * width(agg.mean_pgr_ci)


def test_resamples_depend_on_the_task_only():
    c1 = resample_counts(0, "t1", 50, 100)
    assert (c1 == resample_counts(0, "t1", 50, 100)).all() and not (c1 == resample_counts(0, "t2", 50, 100)).all()
    assert (c1.sum(axis=1) == 50).all()
    d = seed_draws(0, "t1", "method", 3, 100)
    assert (d == seed_draws(0, "t1", "method", 3, 100)).all() and not (d == seed_draws(0, "t1", "weak", 3, 100)).all()
    # one method's PGR draws do not depend on another method having been scored before it on the task
    rng = np.random.default_rng(1)
    weak, ceiling, w2s = _task(rng, 300, 0.7, 0.15, 0.5)
    first = pgr_from_correct(weak, ceiling, w2s, n_boot=500, task="t1")
    pgr_from_correct(weak, ceiling, 1 - w2s, n_boot=500, task="t1")
    again = pgr_from_correct(weak, ceiling, w2s, n_boot=500, task="t1")
    assert (first.boot_pgr == again.boot_pgr).all() and first.pgr_ci == again.pgr_ci


def test_difference_of_aggregates_is_paired():
    """Two methods whose predictions differ on a few examples: their paired difference's interval is far
    narrower than either method's own interval."""
    rng = np.random.default_rng(2)
    scores_a, scores_b = [], []
    for t in ("x", "y"):
        weak, ceiling, w2s = _task(rng, 1000, 0.7, 0.15, 0.5)
        better = w2s.copy()
        better[:, :20] = 1  # right on 20 more examples at most
        scores_a.append(pgr_from_correct(weak, ceiling, better, task=t))
        scores_b.append(pgr_from_correct(weak, ceiling, w2s, task=t))
    a, b = aggregate(scores_a), aggregate(scores_b)
    d = difference(a, b)
    assert d["pooled_pgr"] == pytest.approx(a.pooled_pgr - b.pooled_pgr) and d["pooled_pgr"] > 0
    assert d["pooled_pgr_ci"][0] >= 0 and d["pooled_pgr_ci"][0] <= d["pooled_pgr"] <= d["pooled_pgr_ci"][1]
    assert d["pooled_pgr_ci"][1] - d["pooled_pgr_ci"][0] < 0.25 * (a.pooled_pgr_ci[1] - a.pooled_pgr_ci[0])
    assert a.pooled_pgr_ci[0] < b.pooled_pgr_ci[1]  # the marginal intervals overlap


def test_transfer_by_hand():
    a = pgr_from_correct(_constant([0, 0], 40), _constant([1, 1], 40), _constant([0, 1], 40), task="a")
    b = pgr_from_correct(_pattern([1, 1, 0, 0], 10), _pattern([1, 1, 1, 0], 10), _pattern([1, 1, 1, 0], 10), task="b")
    out = transfer({"a": {"m": a}, "b": {"m": b}}, heldout=["b"])
    assert out["development"] == ["a"] and out["heldout"] == ["b"]
    m = out["methods"]["m"]
    assert m["development"]["pooled_pgr"] == pytest.approx(0.5) and m["heldout"]["pooled_pgr"] == pytest.approx(1.0)
    assert m["difference"]["pooled_pgr"] == pytest.approx(0.5)  # held-out minus development
    # b's draws are all 1, a's 0, 0.5, 1: the difference's draws are 1, 0.5, 0 -> interval [0, 1]
    assert m["difference"]["pooled_pgr_ci"] == pytest.approx([0.0, 1.0])
    assert m["difference"]["mean_pgr"] == pytest.approx(0.5)
    assert transfer({"a": {"m": a}}, heldout=[]) is None
    assert is_heldout(["default", "default-heldout"]) and is_heldout(["aar-heldout"]) and is_heldout(["heldout"])
    assert not is_heldout(["default", "default-dev"]) and not is_heldout(["aar-indist"])


# ---- AUROC beside accuracy ------------------------------------------------------------------------------------
def test_weighted_auroc_by_hand_with_ties():
    from w2sbench.scoring import weighted_auroc

    scores = np.array([0.1, 0.4, 0.4, 0.8])
    labels = np.array([0, 0, 1, 1])
    # positives {0.4, 0.8} against negatives {0.1, 0.4}: 1 + 1/2 (the tie) + 1 + 1 of 4 pairs
    assert weighted_auroc(scores, labels, np.ones((1, 4), dtype=int))[0] == pytest.approx(3.5 / 4)
    assert auroc(scores, labels) == pytest.approx(3.5 / 4)  # sklearn counts the tie half too
    # weights 2, 1, 1, 0: the positive 0.4 (weight 1) against negatives 0.1 (weight 2) and 0.4 (weight 1):
    # (2 * 1 + 1 * 1/2) / (1 * 3)
    counts = np.array([[2, 1, 1, 0], [0, 0, 2, 2], [1, 1, 1, 1]])
    got = weighted_auroc(scores, labels, counts)
    assert got[0] == pytest.approx(2.5 / 3)
    assert np.isnan(got[1])  # no negative drawn: no AUROC
    assert got[2] == pytest.approx(3.5 / 4)
    # every score tied: one half
    assert weighted_auroc(np.full(4, 0.7), labels, np.ones((1, 4), dtype=int))[0] == pytest.approx(0.5)


def test_weighted_auroc_is_the_auroc_of_the_resampled_set():
    from w2sbench.scoring import weighted_auroc

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # many ties
    counts = resample_counts(0, "t", 60, 5).astype(int)
    got = weighted_auroc(scores, labels, counts)
    for row, value in zip(counts, got):
        drawn = np.repeat(np.arange(60), row)
        assert value == pytest.approx(auroc(scores[drawn], labels[drawn]), abs=1e-12)


def test_auroc_seed_bootstrap_by_hand():
    # one seed ranks perfectly (AUROC 1), the other exactly backwards (0): every example resample keeps those
    # values, so only the seed draw moves them: 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4.
    from w2sbench.scoring import boot_auroc

    labels = np.array([0, 1] * 50)
    probs = np.stack([labels * 0.8 + 0.1, (1 - labels) * 0.8 + 0.1])
    draws = boot_auroc(probs, labels, "t", "method", n_boot=4000, seed=1)
    assert set(np.round(draws, 12)) <= {0.0, 0.5, 1.0}
    assert np.mean(draws == 0.5) == pytest.approx(0.5, abs=0.03)
    # the seed indices are those of accuracy's draws for the same group: paired with accuracy's interval
    acc_draws = (seed_draws(1, "t", "method", 2, 4000) == 0).mean(axis=1)  # accuracy 1 for seed 0, 0 for seed 1
    assert np.array_equal(draws, acc_draws)


def test_pgr_on_auroc_by_hand():
    from w2sbench.scoring import bootstrap_auroc_pgr

    labels = np.array([0, 0, 1, 1] * 50)
    weak = np.array([[0.1, 0.6, 0.4, 0.9] * 50])  # one positive below one negative: AUROC 3/4
    ceiling = np.array([[0.1, 0.2, 0.8, 0.9] * 50])  # perfect ranking: AUROC 1
    w2s = np.array([[0.1, 0.6, 0.6, 0.9] * 50])  # the middle pair tied: 7/8
    r = bootstrap_auroc_pgr(labels, weak, ceiling, w2s, n_boot=500, task="t")
    assert (r.weak_acc, r.ceiling_acc, r.w2s_acc) == pytest.approx((0.75, 1.0, 0.875))
    assert r.defined and r.pgr == pytest.approx(0.5) and r.pgr_per_seed == pytest.approx([0.5])
    assert r.gap_ci[0] > 0 and r.pgr_ci[0] <= 0.5 <= r.pgr_ci[1]
    # a student that ranks perfectly but thresholds badly (every p above 0.5): AUROC 1 (PGR 1) at the
    # weak model's 50% accuracy (PGR 0 on accuracy)
    shifted = np.array([[0.55, 0.6, 0.7, 0.9] * 50])
    assert bootstrap_auroc_pgr(labels, weak, ceiling, shifted, n_boot=500, task="t").pgr == pytest.approx(1.0)
    assert bootstrap_pgr(labels, weak, ceiling, shifted, n_boot=500, task="t").pgr == pytest.approx(0.0)
    # the undefined rule is accuracy's: a ceiling no better than the weak model leaves PGR undefined
    same = bootstrap_auroc_pgr(labels, weak, weak, w2s, n_boot=500, task="t")
    assert not same.defined and same.pgr is None and "includes 0" in same.undefined_reason
    # one class in the test labels: no AUROC, no figure
    assert bootstrap_auroc_pgr(np.ones(8, dtype=int), weak[:, :8], ceiling[:, :8], w2s[:, :8], n_boot=50) is None


def test_the_accuracy_figures_do_not_move_when_auroc_is_scored():
    from w2sbench.scoring import bootstrap_auroc_pgr

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    groups = [np.clip(labels * 0.2 + rng.random((3, 300)) * (0.6 + 0.2 * i), 0, 1) for i in range(3)]
    before = bootstrap_pgr(labels, *groups, n_boot=400, task="t")
    bootstrap_auroc_pgr(labels, *groups, n_boot=400, task="t")
    after = bootstrap_pgr(labels, *groups, n_boot=400, task="t")
    assert before.to_dict() == after.to_dict()
    assert np.array_equal(before.boot_pgr, after.boot_pgr)


def test_pooled_pgr_by_hand():
    # two tasks: recovered (0.70-0.60) + (0.85-0.80) = 0.15 of gaps (0.80-0.60) + (0.90-0.80) = 0.30
    pgr, recovered, gap = pooled_pgr([0.6, 0.8], [0.8, 0.9], [0.7, 0.85])
    assert recovered == pytest.approx(0.15) and gap == pytest.approx(0.30) and pgr == pytest.approx(0.5)
    assert pooled_pgr([0.6], [0.6], [0.7])[0] is None  # no gap: undefined
    assert pooled_pgr([0.6, 0.7], [0.5, 0.75], [0.6, 0.7])[0] is None  # summed gap -0.05
    with pytest.raises(ValueError):
        pooled_pgr([0.6], [0.8, 0.9], [0.7])
