"""Flags that make a suspicious result visible: a benchmark that takes submissions must show cheating,
never hide it, and never silently drop a result either. A flag does not reject anything; it names what it
saw, with the numbers, in the results JSON, the printed table and the leaderboard.

Five flags, each computed per task from the sealed test labels and the test predictions (probs are
p(label=1), [seeds, n_test]; hard prediction = p >= 0.5, as in scoring.accuracy):

- `above_ceiling`: the method's test accuracy (mean over its seeds) is above the upper end of the
  ceiling's 95% interval. The interval resamples test examples and ceiling seeds the way the PGR interval
  does (scoring._boot_acc; the PGR's n_boot, bootstrap seed 0). The ceiling is the strong
  model trained on ground truth; a student of the weak labels that beats it by more than the ceiling's own
  sampling noise either found something remarkable or saw labels, and either way a reader must look.
  Threshold: the interval's upper end (strictly above), no extra margin, as the issue states it.

- `copies_ceiling`: the method's test predictions are nearly identical to the ceiling's, in a way that being
  right does not explain. Two conditions, on one pair of prediction vectors (each of the method's seeds and
  their mean against each of the ceiling's seeds and their mean; a copier returns one ceiling seed or the
  mean, and either is then matched exactly):
  (1) the pair's hard predictions agree on >= 99% of test examples (at 2,500 test examples: at most 25
      differ). Why 0.99: the reference methods, students of the weak labels, agree with the ceiling on at
      most 92.3% on the default suite, while the ceiling's seeds (retrains on the same ground truth) agree
      with each other on 98.9-99.7% (benchmarks/flags_calibration.py);
  (2) the predictions that differ are not concentrated on the ceiling vector's contested examples (its
      errors and the 10% of test examples where it is least sure, `contested`) beyond chance: with D
      predictions differing, D_c of them contested, and the contested examples a share c of the test set,
      P(Binomial(D, c) >= D_c) >= 0.05 (`beyond_chance`). An exact copy differs nowhere (p = 1); a copy
      with a few predictions turned over differs wherever the flips fell, on the contested examples at
      chance (ceiling seed 0 with 0.8% turned over: 0-7 of 8-20 differences contested on the default
      suite, p 0.13-1.00).
  Why (2): on an easy task (both the ceiling and a good student right on 97-99% of examples) agreement of
  99% comes from both being right, and (1) alone flagged honest students (issue 30: 99.2% agreement with a
  97% ceiling on 240-368 test examples). Two linear heads on the same features that agree that closely
  differ near the ceiling's decision boundary, i.e. where it is least sure, or where it is wrong; a copy's
  differences are wherever the copier put them. Measured (benchmarks/flags_calibration.py): the ceiling's
  last seed judged against its other seeds, a model that copied nothing and agrees with them on
  99.0-99.8%, has every one of its 2-24 differences on the contested examples on all five default tasks
  (p 2.5e-14 to 0.029): (1) alone flags it on all five, (1) and (2) on none. On sms_spam (an easy task:
  ceiling 97.4%, 300 test examples), four reference students agree with the ceiling on 99.0-99.3%, the
  issue's case; each has all its 2-3 differences on the 32 contested examples (p 0.0012-0.011), so (1)
  alone flags all four and (1) and (2) none. Why a binomial test rather
  than a share: the contested share c runs from 10% on an easy task to 22% on rotten_tomatoes (an 84%
  ceiling's errors), and at a handful of differences only a test says what chance allows. Why 0.05: at 2
  differences on an easy task (c = 10%) both must be contested to clear it (p = 0.01; one of two: 0.19).
  What it gives away: at so few differences an honest student with one of two differences where the
  ceiling is sure is flagged; so is one that makes exactly the ceiling's hard predictions on every test
  example (on sms_spam two of the ceiling's own seeds do), which nothing in the predictions tells from a
  copy; and a copier that turns over exactly the ceiling's least sure predictions is not flagged.
  Why (2) is not agreement on the ceiling's errors alone: an honest student repeats many of an easy
  task's ceiling errors (mislabelled or ambiguous examples), so a copier and a student look alike there.
  Where the ceiling's confidence has no spread (hard 0/1 predictions), the contested examples are its
  errors only. The ceiling's inter-seed agreement is reported, not a condition (the issue suggested
  requiring agreement above it): it is 98.9-99.7% on the default suite, so the condition would let a near
  copy through. The message says the agreement, where the differences are and their p-value, the ceiling's
  own agreement, and how many of the ceiling's errors the method's mean repeats.

- `pgr_above_one`: PGR's 95% interval lies entirely above 1 (lower end > 1): the method beats the
  ceiling by more than the noise of the PGR estimate. Threshold 1 is the ceiling itself; using the
  interval rather than the point keeps a method whose PGR is 1.05 +- 0.3 (noise) unflagged.
  Never fires where PGR is undefined (scoring.bootstrap_pgr: the gap's interval reaches 0).

- `no_strong_work`: PGR >= 0.5 while no seed recorded any strong-model work. Strong-model work, from the
  method's compute record (w2sbench/methods/base.py MethodContext.compute and its `saw` list): training
  through the fixed trainer (train_examples > 0), strong-model inference (inference_prompts > 0 with
  "strong model (inference)" in `saw`, or inference_prompts > 0 with no `saw` to attribute it), or reading
  the strong model's cached features ("strong-model features of ..." in `saw`: they are the strong model's
  forward passes, and a method may fit its own head on them). Inference by the weak model only does not
  count. An empty record counts as no work recorded (the issue: "no strong-model training or inference
  recorded").
  Why 0.5: without the strong model a method has the weak labels and the weak model only; returning the
  weak model's own predictions scores PGR 0 (exactly, when its seeds are the weak seeds; its 95% interval
  reaches at most +0.14 on the default suite) and the teacher-free majority baseline scores -1.9 to -6.6.
  Half of the gap is three times that noise, and below what the best reference W2S method reaches on four
  of the five tasks (0.56-0.85, all with strong-model training), so a result that closes half the gap
  without touching the strong model is not a W2S result and must be looked at.

- `tiny_training_set`: the method trained the strong model on fewer than 5% of the train_unlabel examples
  it was given, in some seed (its compute record's `train_examples` against the split's size; a method
  that trains nothing at all is `no_strong_work`'s business, not this flag's). Issue 30 item 7:
  confident_only's fixed [0.25, 0.75] cutoffs kept 1 to 6 of 1,000 examples of an under-confident teacher
  (a weak model trained on 60 labels), and its result then says more about those few examples than about
  the method. Why 5%: the reference methods that select examples keep far more (confident_only keeps
  22.9-60.2% on the default suite, the others train on all of them, bootstrap three times over), while
  the degenerate case keeps 0.1-0.6%; at 1,000 examples 5% is 50 examples, under two minibatches of the
  fixed trainer. `train_examples` adds up every call to the trainer, so a method that trains ten times
  on the same 40 examples records 400: the flag reads what the record can say.

The thresholds were checked on the eleven reference methods on the default suite
(benchmarks/flags_calibration.py): none is flagged, and a method returning the ceiling's test
predictions or the true labels is flagged on every task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..scoring import PGRResult, _boot_acc, _correct

COPY_MIN_AGREEMENT = 0.99  # copies_ceiling: best-match hard-prediction agreement with the ceiling
COPY_CHANCE_LEVEL = 0.05  # copies_ceiling: ... and the differences are not on the contested ones beyond chance
CONTESTED_FRACTION = 0.10  # contested: the ceiling's errors and its least confident 10% of the test examples
MIN_TRAIN_FRACTION = 0.05  # tiny_training_set: strong training on fewer train_unlabel examples than this share
HIGH_PGR = 0.5  # no_strong_work: the PGR above which a method must have used the strong model
PGR_LIMIT = 1.0  # pgr_above_one: the lower end of PGR's interval must exceed this
CONFIDENCE = 0.95  # the ceiling's interval (the same confidence as the PGR interval)

FLAG_IDS = ("above_ceiling", "copies_ceiling", "pgr_above_one", "no_strong_work", "tiny_training_set")


# ---- statistics -----------------------------------------------------------------------------------------
def _hard(probs: np.ndarray) -> np.ndarray:
    return (np.asarray(probs, dtype=np.float64) >= 0.5).astype(int)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples where the hard predictions (p >= 0.5) of two [n] probability vectors agree."""
    return float(np.mean(_hard(a) == _hard(b)))


def _vectors(p: np.ndarray, who: str) -> list[tuple[str, np.ndarray]]:
    p = np.atleast_2d(p)
    return [(f"{who} mean", p.mean(axis=0))] + [(f"{who} seed {i}", row) for i, row in enumerate(p)]


def best_match(probs: np.ndarray, ceiling_probs: np.ndarray) -> tuple[float, str]:
    """The largest hard-prediction agreement between any of the method's vectors (each seed, the seed
    mean) and any of the ceiling's, and which pair reached it."""
    best = max(
        (
            (agreement(a, b), f"{na} vs {nb}")
            for na, a in _vectors(probs, "w2s")
            for nb, b in _vectors(ceiling_probs, "ceiling")
        ),
        key=lambda x: x[0],
    )
    return best


def contested(ceiling: np.ndarray, labels: np.ndarray, fraction: float = CONTESTED_FRACTION) -> np.ndarray:
    """The test examples where a ceiling vector [n] (p(label=1)) is wrong or least sure: its errors, and the
    k = ceil(fraction * n) with the smallest margin |p - 0.5| (where examples tie across that cut, the tied
    ones are left out, so a ceiling whose confidence has no spread, e.g. hard 0/1 predictions, contributes its
    errors only). A boolean mask [n]."""
    ceiling = np.asarray(ceiling, dtype=np.float64)
    mask = _hard(ceiling) != np.asarray(labels).astype(int)
    k = int(np.ceil(fraction * len(ceiling)))
    if 0 < k < len(ceiling):
        margin = np.abs(ceiling - 0.5)
        mask |= margin < np.sort(margin)[k]
    elif k >= len(ceiling):
        mask[:] = True
    return mask


def beyond_chance(hits: int, draws: int, rate: float) -> float:
    """One-sided binomial p-value: the probability of at least `hits` of `draws` landing on a set that holds
    a share `rate` of the examples, were they placed at random. 1.0 for no draws."""
    if draws == 0 or hits <= 0:
        return 1.0
    from scipy.stats import binom  # here, not at import: only a near copy needs it

    return float(binom.sf(hits - 1, draws, rate))


def copy_match(probs: np.ndarray, ceiling_probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The pair of vectors (the method's seeds and mean against the ceiling's) that looks most like a copy:
    among the pairs that agree at >= COPY_MIN_AGREEMENT, the one whose differences are least concentrated on
    the ceiling vector's contested examples (`contested`; the largest `beyond_chance` p-value), else the
    best overall match. Its agreement, how many predictions differ, how many of those are contested, the
    contested set's size, and that p-value (None when no pair agrees at COPY_MIN_AGREEMENT)."""
    best = None
    for na, a in _vectors(probs, "w2s"):
        for nb, b in _vectors(ceiling_probs, "ceiling"):
            mask = contested(b, labels)
            differ = _hard(a) != _hard(b)
            overall = float(1.0 - differ.mean())
            close = overall >= COPY_MIN_AGREEMENT
            chance = beyond_chance(int(differ[mask].sum()), int(differ.sum()), float(mask.mean())) if close else None
            key = (close, chance if close else overall)
            if best is None or key > best[0]:
                best = (key, overall, int(differ.sum()), int(differ[mask].sum()), int(mask.sum()), chance)
                pair = f"{na} vs {nb}"
    _, overall, differ, on_contested, size, chance = best
    return {
        "agreement": overall,
        "differ": differ,
        "differ_contested": on_contested,
        "contested": size,
        "chance": chance,
        "pair": pair,
    }


def inter_seed_agreement(probs: np.ndarray) -> float | None:
    """Mean over pairs of seeds of their hard-prediction agreement; None with fewer than two seeds."""
    probs = np.atleast_2d(probs)
    pairs = [(i, j) for i in range(len(probs)) for j in range(i + 1, len(probs))]
    if not pairs:
        return None
    return float(np.mean([agreement(probs[i], probs[j]) for i, j in pairs]))


def ceiling_interval(
    labels: np.ndarray, ceiling_probs: np.ndarray, n_boot: int = 2000, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The ceiling accuracy's interval: test examples resampled (multinomial counts) and ceiling seeds
    resampled with replacement, the scheme of scoring.bootstrap_pgr (its _boot_acc)."""
    labels = np.asarray(labels).astype(int)
    n = labels.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    draws = _boot_acc(_correct(ceiling_probs, labels), counts, rng)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    return tuple(float(x) for x in np.percentile(draws, [lo, hi]))


def strong_work(compute: list[dict]) -> tuple[bool, str]:
    """Whether any seed's compute record shows strong-model work, and a few words saying what."""
    seen: list[str] = []
    for rec in compute or []:
        rec = rec or {}
        saw = rec.get("saw")
        if rec.get("train_examples", 0) > 0:
            seen.append(f"{rec['train_examples']} strong training examples")
        prompts = rec.get("inference_prompts", 0)
        if prompts > 0 and (saw is None or any(s.startswith("strong model") for s in saw)):
            seen.append(f"{prompts} inference prompts")
        if saw and any(s.startswith("strong-model features") for s in saw):
            seen.append("strong-model features")
    if seen:
        return True, seen[0]
    if not compute or all(not rec for rec in compute):
        return False, "no compute recorded"
    n_seeds = len(compute)
    weak_inf = sum(int((rec or {}).get("inference_prompts", 0)) for rec in compute)
    what = f"0 strong training examples and 0 strong-model inference in {n_seeds} seed(s)"
    return False, what + (f" ({weak_inf} weak-model inference prompts)" if weak_inf else "")


def measure(
    labels: np.ndarray,
    weak_test: np.ndarray,
    ceiling_test: np.ndarray,
    w2s_test: np.ndarray,
    pgr: PGRResult,
    compute: list[dict],
    n_unlabel: int | None = None,
) -> dict[str, Any]:
    """The numbers the flags look at (also what the calibration prints for unflagged methods). n_unlabel: how
    many train_unlabel examples the method was given (None: tiny_training_set is not looked at)."""
    labels = np.asarray(labels).astype(int)
    ceiling_test, w2s_test = np.atleast_2d(ceiling_test), np.atleast_2d(w2s_test)
    ceil_mean, w2s_mean = ceiling_test.mean(axis=0), w2s_test.mean(axis=0)
    ceil_wrong = _hard(ceil_mean) != labels
    same = _hard(w2s_mean) == _hard(ceil_mean)
    best, best_pair = best_match(w2s_test, ceiling_test)
    copy = copy_match(w2s_test, ceiling_test, labels)
    work, work_what = strong_work(compute)
    trained = [int((rec or {}).get("train_examples", 0)) for rec in compute or []]
    return {
        "w2s_acc": float(_correct(w2s_test, labels).mean()),
        "ceiling_acc": float(_correct(ceiling_test, labels).mean()),
        "ceiling_ci": ceiling_interval(labels, ceiling_test, n_boot=pgr.n_boot, seed=0),
        "agreement": best,  # best match overall
        "agreement_pair": best_pair,
        "copy_agreement": copy["agreement"],  # the pair copies_ceiling tests (copy_match)
        "copy_differ": copy["differ"],
        "copy_differ_contested": copy["differ_contested"],
        "copy_chance": copy["chance"],
        "copy_contested": copy["contested"],
        "copy_pair": copy["pair"],
        "agreement_of_means": float(same.mean()),
        "ceiling_self_agreement": inter_seed_agreement(ceiling_test),
        "ceiling_errors": int(ceil_wrong.sum()),
        "shared_errors": int((same & ceil_wrong).sum()),
        "n_test": int(labels.shape[0]),
        "pgr": pgr.pgr if pgr.defined else None,
        "pgr_ci": tuple(pgr.pgr_ci) if pgr.defined and pgr.pgr_ci is not None else None,
        "strong_work": work,
        "strong_work_what": work_what,
        "n_unlabel": n_unlabel,
        "train_examples": trained,
    }


# ---- the flags -------------------------------------------------------------------------------------------
def flags_from_measures(m: Mapping[str, Any]) -> list[dict]:
    """Apply the thresholds (module docstring) to measure()'s numbers."""
    flags = []
    lo, hi = m["ceiling_ci"]
    if m["w2s_acc"] > hi:
        flags.append(
            {
                "flag": "above_ceiling",
                "saw": (
                    f"w2s {100 * m['w2s_acc']:.1f}% above the ceiling's {100 * CONFIDENCE:.0f}% interval "
                    f"[{100 * lo:.1f}, {100 * hi:.1f}] (ceiling {100 * m['ceiling_acc']:.1f}%)"
                ),
            }
        )
    if m["copy_agreement"] >= COPY_MIN_AGREEMENT and m["copy_chance"] >= COPY_CHANCE_LEVEL:
        own = (
            "one ceiling seed"
            if m["ceiling_self_agreement"] is None
            else f"the ceiling's own seeds agree {100 * m['ceiling_self_agreement']:.1f}%"
        )
        flags.append(
            {
                "flag": "copies_ceiling",
                "saw": (
                    f"test predictions agree with the ceiling's on {100 * m['copy_agreement']:.1f}% of "
                    f"{m['n_test']} examples ({m['copy_pair']}), and {m['copy_differ_contested']} of the "
                    f"{m['copy_differ']} that differ are among the {m['copy_contested']} where the ceiling is wrong "
                    f"or least sure, no more than chance would put there (p = {m['copy_chance']:.2f}; flagged at "
                    f">= {100 * COPY_MIN_AGREEMENT:.0f}% agreement and p >= {COPY_CHANCE_LEVEL:g}; {own}); the "
                    f"method's mean prediction repeats {m['shared_errors']} of the ceiling's {m['ceiling_errors']} "
                    "errors"
                ),
            }
        )
    if m["pgr_ci"] is not None and m["pgr_ci"][0] > PGR_LIMIT:
        flags.append(
            {
                "flag": "pgr_above_one",
                "saw": (
                    f"PGR {m['pgr']:+.2f} with 95% interval [{m['pgr_ci'][0]:+.2f}, {m['pgr_ci'][1]:+.2f}], "
                    f"entirely above {PGR_LIMIT:g}"
                ),
            }
        )
    if m["pgr"] is not None and m["pgr"] >= HIGH_PGR and not m["strong_work"]:
        flags.append(
            {"flag": "no_strong_work", "saw": (f"PGR {m['pgr']:+.2f} (>= {HIGH_PGR:g}) with {m['strong_work_what']}")}
        )
    n_unlabel, trained = m.get("n_unlabel"), m.get("train_examples") or []
    if n_unlabel and any(0 < t < MIN_TRAIN_FRACTION * n_unlabel for t in trained):
        counts = ", ".join(f"{t:,}" for t in trained)
        flags.append(
            {
                "flag": "tiny_training_set",
                "saw": (
                    f"the strong model was trained on {counts} example(s) per seed of the {n_unlabel:,} "
                    f"train_unlabel examples the method was given (smallest {100 * min(trained) / n_unlabel:.1f}%; "
                    f"flagged below {100 * MIN_TRAIN_FRACTION:.0f}% in any seed)"
                ),
            }
        )
    return flags


def flag_method(
    labels: np.ndarray,
    weak_test: np.ndarray,
    ceiling_test: np.ndarray,
    w2s_test: np.ndarray,
    pgr: PGRResult,
    compute: list[dict],
    n_unlabel: int | None = None,
) -> list[dict]:
    """Flags for one method on one task: [{"flag": id, "saw": one sentence with the numbers}], empty when
    nothing is suspicious. labels [n]; weak_test, ceiling_test [K, n]; w2s_test [S, n] (p(label=1));
    pgr: scoring.bootstrap_pgr's result for this method; compute: its per-seed compute records; n_unlabel:
    the size of the train_unlabel split it was given."""
    return flags_from_measures(measure(labels, weak_test, ceiling_test, w2s_test, pgr, compute, n_unlabel))


def flag_summary(flags_by_task: Mapping[str, Any]) -> list[str]:
    """Lines for the printed table, one per flag: "FLAG task/method: id: what it saw".
    Takes {task: {method: [flags]}} or {label: [flags]} (label printed as given, e.g. "task/method")."""
    lines = []
    for task, value in flags_by_task.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for method, flags in items:
            where = task if method is None else f"{task}/{method}"
            lines.extend(f"FLAG {where}: {f['flag']}: {f['saw']}" for f in flags or [])
    return lines
