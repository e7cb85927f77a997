"""The cheating flags (w2sbench/engine/suspicion.py) on arrays built by hand: where each must fire and where not.

The shared setup, 200 test examples, labels 0,1,0,1,...; predictions are 0.9/0.1 towards the label where
a model is right and away from it where wrong:
- weak (3 seeds, identical): wrong on examples 0-59              -> 70.0%
- ceiling seed 0 and seed 2: wrong on 0-33                       -> 83.0%
  ceiling seed 1:            wrong on 0-29 and 34-37             -> 83.0%
  seed pairs differ on 0, 8, 8 examples: inter-seed agreement (1 + 0.96 + 0.96) / 3 = 97.33%;
  the ceiling's mean prediction is wrong on 0-33 (2 of 3 seeds), i.e. 34 errors.
- a normal method (3 seeds): wrong on 0-44                       -> 77.5%, PGR (77.5-70)/(83-70) = 0.577
"""

import numpy as np
import pytest

from w2sbench.engine.suspicion import (
    COPY_MIN_AGREEMENT,
    HIGH_PGR,
    agreement,
    best_match,
    ceiling_interval,
    flag_method,
    flag_summary,
    inter_seed_agreement,
    strong_work,
)
from w2sbench.scoring import bootstrap_pgr

N = 200
LABELS = np.array([0, 1] * (N // 2))
TRAINED = [
    {
        "train_examples": 1000,
        "train_example_epochs": 20000,
        "predict_examples": 500,
        "inference_prompts": 0,
        "sealed": True,
        "saw": [
            "strong-model features of test",
            "strong-model features of train_unlabel",
            "weak soft labels on train_unlabel",
        ],
    }
] * 3
NOTHING = [
    {
        "train_examples": 0,
        "train_example_epochs": 0,
        "predict_examples": 0,
        "inference_prompts": 0,
        "sealed": True,
        "saw": ["weak soft labels on train_unlabel"],
    }
] * 3


def wrong_on(*ranges):
    """p(label=1) [N] that is wrong exactly on the given (start, stop) ranges."""
    correct = np.ones(N, dtype=bool)
    for a, b in ranges:
        correct[a:b] = False
    return np.where(correct, LABELS, 1 - LABELS) * 0.8 + 0.1


WEAK = np.stack([wrong_on((0, 60))] * 3)
CEILING = np.stack([wrong_on((0, 34)), wrong_on((0, 30), (34, 38)), wrong_on((0, 34))])
NORMAL = np.stack([wrong_on((0, 45))] * 3)


def run_flags(w2s, compute=TRAINED):
    r = bootstrap_pgr(LABELS, WEAK, CEILING, w2s)
    return r, flag_method(LABELS, WEAK, CEILING, w2s, r, compute)


def ids(flags):
    return sorted(f["flag"] for f in flags)


def test_setup_by_hand():
    assert inter_seed_agreement(CEILING) == pytest.approx((1 + 0.96 + 0.96) / 3)
    assert agreement(CEILING.mean(axis=0), wrong_on((0, 34))) == 1.0
    assert agreement(NORMAL[0], CEILING.mean(axis=0)) == pytest.approx(1 - 11 / 200)
    assert inter_seed_agreement(CEILING[:1]) is None


def test_ceiling_interval_matches_normal_approximation():
    # all ceiling seeds are right on 83% of examples: only example resampling moves it, so the
    # interval is about 0.83 +- 1.96 * sqrt(0.83 * 0.17 / 200) = [0.778, 0.882]
    same = np.stack([wrong_on((0, 34))] * 3)
    lo, hi = ceiling_interval(LABELS, same, n_boot=4000)
    half = 1.96 * np.sqrt(0.83 * 0.17 / 200)
    assert lo == pytest.approx(0.83 - half, abs=0.01)
    assert hi == pytest.approx(0.83 + half, abs=0.01)


def test_ceiling_interval_resamples_seeds():
    # one ceiling seed right everywhere, one wrong everywhere: resampled seed means 0, 0.5, 1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1] whatever the example resample
    two = np.stack([wrong_on(), wrong_on((0, N))])
    assert ceiling_interval(LABELS, two, n_boot=2000) == (0.0, 1.0)


def test_normal_method_is_not_flagged():
    r, flags = run_flags(NORMAL)
    assert r.w2s_acc == pytest.approx(0.775) and r.pgr == pytest.approx(0.075 / 0.13)
    assert flags == []


def test_copying_the_ceiling_mean_is_flagged():
    copier = np.tile(CEILING.mean(axis=0), (3, 1))
    r, flags = run_flags(copier)
    # accuracy 83.0% = the ceiling's, PGR 1.0 (its interval straddles 1): only the copy is visible
    assert r.w2s_acc == pytest.approx(0.83) and r.pgr == pytest.approx(1.0)
    assert ids(flags) == ["copies_ceiling"]
    saw = flags[0]["saw"]
    assert "100.0% of 200" in saw and "97.3%" in saw and "repeats 34 of the ceiling's 34 errors" in saw


def test_copying_one_ceiling_seed_is_flagged():
    # seed 1 copied: the method's mean = ceiling seed 1 exactly (best match 100%), while its agreement with
    # the ceiling's mean is only 1 - 8/200 = 96% (seed 1 differs from the majority on 30-37)
    r, flags = run_flags(np.stack([CEILING[1]] * 3))
    assert agreement(CEILING[1], CEILING.mean(axis=0)) == pytest.approx(0.96)
    assert ids(flags) == ["copies_ceiling"]
    assert "100.0% of 200 examples (w2s mean vs ceiling seed 1" in flags[0]["saw"]


def test_near_copy_thresholds():
    # the ceiling (3 identical seeds) with 2 of 200 predictions flipped: 99.0% agreement, flagged
    # (>= 0.99) although the ceiling's seeds agree 100% with each other; 3 flipped: 98.5%, not flagged
    same = np.stack([wrong_on((0, 34))] * 3)
    for flipped, expect in ((2, ["copies_ceiling"]), (3, [])):
        near = np.stack([wrong_on((0, 34 + flipped))] * 3)
        r = bootstrap_pgr(LABELS, WEAK, same, near)
        assert agreement(near[0], same[0]) == pytest.approx(1 - flipped / 200)
        assert ids(flag_method(LABELS, WEAK, same, near, r, TRAINED)) == expect
    assert COPY_MIN_AGREEMENT == 0.99


def test_best_match_by_hand():
    # the normal method (wrong on 0-44) differs from ceiling seed 1 (wrong on 0-29, 34-37) on 30-33 and
    # 38-44 = 11 examples, from seeds 0 and 2 and the mean (wrong on 0-33) on 34-44 = 11 examples
    assert best_match(NORMAL, CEILING)[0] == pytest.approx(1 - 11 / 200)
    # a method wrong on 0-29 and 34-39: 2 differences from seed 1, 10 from seeds 0 and 2
    close = np.stack([wrong_on((0, 30), (34, 40))] * 3)
    assert best_match(close, CEILING) == (pytest.approx(0.99), "w2s mean vs ceiling seed 1")


def test_perfect_accuracy_is_flagged():
    perfect = np.tile(LABELS.astype(float), (3, 1))
    r, flags = run_flags(perfect)
    # PGR (100 - 70) / (83 - 70) = 2.31; agreement with the ceiling = its accuracy 83%: no copy
    assert r.pgr == pytest.approx(0.30 / 0.13)
    assert ids(flags) == ["above_ceiling", "pgr_above_one"]
    text = {f["flag"]: f["saw"] for f in flags}
    assert text["above_ceiling"].startswith("w2s 100.0% above the ceiling's 95% interval [")
    assert "PGR +2.31" in text["pgr_above_one"]


def test_high_pgr_without_compute_is_flagged():
    r, flags = run_flags(NORMAL, NOTHING)
    assert ids(flags) == ["no_strong_work"]
    assert (
        flags[0]["saw"]
        == "PGR +0.58 (>= 0.5) with 0 strong training examples and 0 strong-model inference in 3 seed(s)"
    )
    _, flags = run_flags(NORMAL, [{}] * 3)  # nothing recorded at all
    assert ids(flags) == ["no_strong_work"] and "no compute recorded" in flags[0]["saw"]
    _, flags = run_flags(NORMAL, [])
    assert ids(flags) == ["no_strong_work"]


def test_low_pgr_without_compute_is_not_flagged():
    # the majority baseline: a constant prediction, trains nothing; 50% accuracy, PGR (50-70)/13 = -1.54
    majority = np.full((3, N), 0.6)
    r, flags = run_flags(majority, NOTHING)
    assert r.pgr == pytest.approx(-0.20 / 0.13) and r.pgr < HIGH_PGR
    assert flags == []


def test_what_counts_as_strong_work():
    zero_shot = {
        "train_examples": 0,
        "train_example_epochs": 0,
        "predict_examples": 0,
        "inference_prompts": 500,
        "sealed": True,
        "saw": ["strong model (inference)"],
    }
    weak_only = {**zero_shot, "saw": ["weak model (inference)", "weak soft labels on train_unlabel"]}
    own_head = {**NOTHING[0], "saw": ["strong-model features of test", "strong-model features of train_unlabel"]}
    unattributed = {"train_examples": 0, "inference_prompts": 10}
    assert strong_work([zero_shot] * 3)[0] is True
    assert strong_work([own_head] * 3)[0] is True
    assert strong_work([unattributed])[0] is True
    assert strong_work([NOTHING[0], NOTHING[0], TRAINED[0]])[0] is True  # one seed that worked is enough
    assert strong_work([weak_only] * 3) == (
        False,
        "0 strong training examples and 0 strong-model inference in 3 seed(s) (1500 weak-model inference prompts)",
    )
    _, flags = run_flags(NORMAL, [zero_shot] * 3)
    assert flags == []
    _, flags = run_flags(NORMAL, [weak_only] * 3)
    assert ids(flags) == ["no_strong_work"]


def test_undefined_pgr_only_allows_the_accuracy_flags():
    # weak as good as the ceiling: the gap's interval reaches 0, PGR undefined; a perfect method is still
    # above the ceiling, and PGR-based flags cannot fire
    r = bootstrap_pgr(LABELS, CEILING, CEILING, np.tile(LABELS.astype(float), (3, 1)))
    assert not r.defined
    assert ids(flag_method(LABELS, CEILING, CEILING, np.tile(LABELS.astype(float), (3, 1)), r, NOTHING)) == [
        "above_ceiling"
    ]


def test_flag_summary_lines():
    f = {"flag": "above_ceiling", "saw": "w2s 95.2% above the ceiling's 95% interval [80.1, 84.0]"}
    g = {"flag": "no_strong_work", "saw": "PGR +0.80 (>= 0.5) with no compute recorded"}
    nested = {"rotten_tomatoes": {"cheat": [f, g], "vanilla": []}, "sms_spam": {"vanilla": []}}
    assert flag_summary(nested) == [
        "FLAG rotten_tomatoes/cheat: above_ceiling: w2s 95.2% above the ceiling's 95% interval [80.1, 84.0]",
        "FLAG rotten_tomatoes/cheat: no_strong_work: PGR +0.80 (>= 0.5) with no compute recorded",
    ]
    assert flag_summary({"rotten_tomatoes/cheat": [f]}) == [
        "FLAG rotten_tomatoes/cheat: above_ceiling: w2s 95.2% above the ceiling's 95% interval [80.1, 84.0]"
    ]
    assert flag_summary({}) == []


def test_training_on_a_tiny_share_of_what_was_given_is_flagged():
    # confident_only with an under-confident teacher: 1, 3 and 6 of 1,000 examples kept (issue 30 item 7)
    few = [{**TRAINED[0], "train_examples": n, "train_example_epochs": 20 * n} for n in (1, 3, 6)]
    r = bootstrap_pgr(LABELS, WEAK, CEILING, NORMAL)
    flags = flag_method(LABELS, WEAK, CEILING, NORMAL, r, few, n_unlabel=1000)
    assert ids(flags) == ["tiny_training_set"]
    assert flags[0]["saw"] == (
        "the strong model was trained on 1, 3, 6 example(s) per seed of the 1,000 train_unlabel examples the "
        "method was given (smallest 0.1%; flagged below 5% in any seed)"
    )
    # one seed below 5% is enough; 5% itself is not below; without n_unlabel the flag is not looked at
    at = [{**TRAINED[0], "train_examples": n} for n in (1000, 49, 1000)]
    assert ids(flag_method(LABELS, WEAK, CEILING, NORMAL, r, at, n_unlabel=1000)) == ["tiny_training_set"]
    edge = [{**TRAINED[0], "train_examples": n} for n in (1000, 50, 1000)]
    assert flag_method(LABELS, WEAK, CEILING, NORMAL, r, edge, n_unlabel=1000) == []
    assert flag_method(LABELS, WEAK, CEILING, NORMAL, r, few) == []
    # the reference methods' records: every example (vanilla), three rounds of them (bootstrap: 3,000),
    # confident_only's smallest kept share on the default suite (229 of 1,000), and no training at all (zero-shot,
    # majority: no_strong_work's business, not this flag's)
    for n in (1000, 3000, 229, 0):
        rec = [{**TRAINED[0], "train_examples": n}] * 3
        assert "tiny_training_set" not in ids(flag_method(LABELS, WEAK, CEILING, NORMAL, r, rec, n_unlabel=1000))


# ---- copies_ceiling on an easy task: agreement that comes from both being right -------------------------------
# 250 test examples; the ceiling is right on 242 (96.8%), its confidence graded: example i sits at margin
# |p - 0.5| = 0.4 * (i + 1) / 250, so example 0 is the least sure; it is wrong on examples 0-7. Its three seeds
# are the same vector. The contested examples are its 8 errors and its 25 least sure (0-24): 25 in all.
EASY_N = 250
EASY_LABELS = np.array([0, 1] * (EASY_N // 2))


def easy(wrong, flipped=()):
    """p(label=1) [EASY_N] on the ceiling's graded margins, wrong on `wrong`; `flipped`: hard predictions
    turned over (p -> 1 - p) on those examples."""
    margin = 0.4 * (np.arange(EASY_N) + 1) / EASY_N
    toward = np.ones(EASY_N, dtype=bool)
    toward[list(wrong)] = False
    p = np.where(toward == (EASY_LABELS == 1), 0.5 + margin, 0.5 - margin)
    p[list(flipped)] = 1 - p[list(flipped)]
    return p


EASY_CEILING = np.stack([easy(range(8))] * 3)
EASY_WEAK = np.stack([easy(range(40))] * 3)  # 84%


def easy_flags(w2s):
    r = bootstrap_pgr(EASY_LABELS, EASY_WEAK, EASY_CEILING, w2s)
    return flag_method(EASY_LABELS, EASY_WEAK, EASY_CEILING, w2s, r, TRAINED, n_unlabel=1000)


def test_contested_examples_by_hand():
    from w2sbench.engine.suspicion import contested

    mask = contested(EASY_CEILING[0], EASY_LABELS)
    assert np.flatnonzero(mask).tolist() == list(range(25))  # errors 0-7 lie inside the 25 least sure
    wrong_late = easy([100, 200])
    assert np.flatnonzero(contested(wrong_late, EASY_LABELS)).tolist() == [*range(25), 100, 200]
    # no spread in the confidence: only the errors
    assert np.flatnonzero(contested(wrong_on((0, 34)), LABELS)).tolist() == list(range(34))


def test_an_honest_near_clone_of_an_easy_ceiling_is_not_flagged():
    # the case: 99.2% agreement with a 97% ceiling. The student differs from the ceiling on 2 examples,
    # both where the ceiling is least sure (it is right on examples 3 and 10, where the ceiling is wrong and
    # right): agreement from being right, not from copying
    clone = np.stack([easy([0, 1, 2, 4, 5, 6, 7, 10])] * 3)
    assert agreement(clone[0], EASY_CEILING[0]) == pytest.approx(0.992)
    assert easy_flags(clone) == []
    # both differences on the 25 contested of 250: were they placed at random, p = 0.1^2 = 0.01 < 0.05
    from w2sbench.engine.suspicion import beyond_chance

    assert beyond_chance(2, 2, 0.1) == pytest.approx(0.01)
    # one of them where the ceiling is sure and right: p = 1 - 0.9^2 = 0.19, as a copy with 2 random flips
    # could give; flagged (at 2 differences in 250 nothing else tells the two apart)
    half = np.stack([easy([0, 1, 2, 4, 5, 6, 7, 100])] * 3)
    assert agreement(half[0], EASY_CEILING[0]) == pytest.approx(0.992)
    assert beyond_chance(1, 2, 0.1) == pytest.approx(0.19)
    assert ids(easy_flags(half)) == ["copies_ceiling"]


def test_copies_of_an_easy_ceiling_are_flagged():
    from w2sbench.engine.suspicion import beyond_chance

    # the ceiling's seed, its mean, and a seed with 2 predictions turned over where the ceiling is sure and
    # right: the differences (none, or 2) are not where the ceiling is wrong or unsure
    for copy in (EASY_CEILING, np.stack([EASY_CEILING[0]] * 3), np.stack([easy(range(8), flipped=(100, 200))] * 3)):
        flags = easy_flags(copy)
        assert ids(flags) == ["copies_ceiling"]
    saw = easy_flags(np.stack([easy(range(8), flipped=(100, 200))] * 3))[0]["saw"]
    assert "99.2% of 250 examples" in saw and "0 of the 2 that differ are among the 25" in saw and "p = 1.00" in saw
    assert beyond_chance(0, 0, 0.1) == 1.0  # an exact copy: nothing differs
    # on a harder task the contested share is larger (rotten_tomatoes: 550 of 2,500, 22%): a copy with 4 random
    # flips puts 2 of them there about a fifth of the time, which must not hide it: p = 0.21
    assert beyond_chance(2, 4, 0.22) == pytest.approx(1 - 0.78**4 - 4 * 0.22 * 0.78**3)
    # 3 turned over: 98.8%, below the agreement threshold
    assert easy_flags(np.stack([easy(range(8), flipped=(100, 150, 200))] * 3)) == []
