"""PGR, accuracy, AUROC and the bootstrap intervals against values computed by hand."""

import numpy as np
import pytest

from w2sbench.scoring import accuracy, auroc, bootstrap_pgr, mean_pgr, pgr


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
