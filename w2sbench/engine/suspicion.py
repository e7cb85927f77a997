"""Flags that make a suspicious result visible: a benchmark that takes submissions must show cheating,
never hide it, and never silently drop a result either. A flag does not reject anything; it names what it
saw, with the numbers, in the results JSON, the printed table and the leaderboard.

Four flags, each computed per task from the sealed test labels and the test predictions (probs are
p(label=1), [seeds, n_test]; hard prediction = p >= 0.5, as in scoring.accuracy):

- `above_ceiling`: the method's test accuracy (mean over its seeds) is above the upper end of the
  ceiling's 95% interval. The interval resamples test examples and ceiling seeds the way the PGR interval
  does (scoring._boot_acc; the PGR's n_boot, bootstrap seed 0). The ceiling is the strong
  model trained on ground truth; a student of the weak labels that beats it by more than the ceiling's own
  sampling noise either found something remarkable or saw labels, and either way a reader must look.
  Threshold: the interval's upper end (strictly above), no extra margin, as the issue states it.

- `copies_ceiling`: the method's test predictions are nearly identical to the ceiling's. Statistic: the
  best-match agreement of hard predictions, the largest agreement between any of the method's prediction
  vectors (each seed, and the seed mean) and any of the ceiling's (each seed, and the seed mean): a copier
  returns one ceiling seed's predictions or their mean, and either is then matched exactly (100%).
  Fires at >= 0.99 (at 2,500 test examples: at most 25 predictions differ).
  Why 0.99: it is the agreement of the ceiling with itself. On the default suite the ceiling's seeds
  (retrains on the same ground truth, only the seed changed) agree with each other on 99.2-99.9% of test
  examples, while the reference methods, students of the weak labels, agree with the ceiling on at most
  92.0% (benchmarks/flags_calibration.py): agreement >= 99% means "the ceiling again", which a student of
  weak labels should not be.
  Why the inter-seed agreement is reported but not a condition: the issue suggests requiring agreement
  above the ceiling's inter-seed agreement too (so that on a task where every good model is right nearly
  everywhere, agreement from being right is not taken for copying). On the default suite that agreement is
  99.2-99.9%, so the extra condition would let a near copy through: ceiling seed 0 with 4 of 500
  predictions flipped (99.2%) escapes it on all five tasks, and on vader_tweets (99.87%) a single flip
  does. The cost of leaving it out: on a task where the ceiling and
  an honest method are both right on more than 99% of examples, the honest method is flagged; the message
  then shows the ceiling's own agreement and errors so a reader sees why, and the flag rejects nothing.
  The message counts how many of the ceiling's errors the method repeats (a copier repeats all).

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

The thresholds were checked on the ten reference methods on the default suite
(benchmarks/flags_calibration.py): none is flagged, and a method returning the ceiling's test
predictions or the true labels is flagged on every task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..scoring import PGRResult, _boot_acc, _correct

COPY_MIN_AGREEMENT = 0.99  # copies_ceiling: best-match hard-prediction agreement with the ceiling
HIGH_PGR = 0.5  # no_strong_work: the PGR above which a method must have used the strong model
PGR_LIMIT = 1.0  # pgr_above_one: the lower end of PGR's interval must exceed this
CONFIDENCE = 0.95  # the ceiling's interval (the same confidence as the PGR interval)

FLAG_IDS = ("above_ceiling", "copies_ceiling", "pgr_above_one", "no_strong_work")


# ---- statistics -----------------------------------------------------------------------------------------
def _hard(probs: np.ndarray) -> np.ndarray:
    return (np.asarray(probs, dtype=np.float64) >= 0.5).astype(int)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples where the hard predictions (p >= 0.5) of two [n] probability vectors agree."""
    return float(np.mean(_hard(a) == _hard(b)))


def best_match(probs: np.ndarray, ceiling_probs: np.ndarray) -> tuple[float, str]:
    """The largest hard-prediction agreement between any of the method's vectors (each seed, the seed
    mean) and any of the ceiling's, and which pair reached it."""

    def vectors(p, who):
        p = np.atleast_2d(p)
        return [(f"{who} mean", p.mean(axis=0))] + [(f"{who} seed {i}", row) for i, row in enumerate(p)]

    best = max(
        (
            (agreement(a, b), f"{na} vs {nb}")
            for na, a in vectors(probs, "w2s")
            for nb, b in vectors(ceiling_probs, "ceiling")
        ),
        key=lambda x: x[0],
    )
    return best


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
) -> dict[str, Any]:
    """The numbers the flags look at (also what the calibration prints for unflagged methods)."""
    labels = np.asarray(labels).astype(int)
    ceiling_test, w2s_test = np.atleast_2d(ceiling_test), np.atleast_2d(w2s_test)
    ceil_mean, w2s_mean = ceiling_test.mean(axis=0), w2s_test.mean(axis=0)
    ceil_wrong = _hard(ceil_mean) != labels
    same = _hard(w2s_mean) == _hard(ceil_mean)
    best, best_pair = best_match(w2s_test, ceiling_test)
    work, work_what = strong_work(compute)
    return {
        "w2s_acc": float(_correct(w2s_test, labels).mean()),
        "ceiling_acc": float(_correct(ceiling_test, labels).mean()),
        "ceiling_ci": ceiling_interval(labels, ceiling_test, n_boot=pgr.n_boot, seed=0),
        "agreement": best,  # best match, what copies_ceiling tests
        "agreement_pair": best_pair,
        "agreement_of_means": float(same.mean()),
        "ceiling_self_agreement": inter_seed_agreement(ceiling_test),
        "ceiling_errors": int(ceil_wrong.sum()),
        "shared_errors": int((same & ceil_wrong).sum()),
        "n_test": int(labels.shape[0]),
        "pgr": pgr.pgr if pgr.defined else None,
        "pgr_ci": tuple(pgr.pgr_ci) if pgr.defined and pgr.pgr_ci is not None else None,
        "strong_work": work,
        "strong_work_what": work_what,
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
    if m["agreement"] >= COPY_MIN_AGREEMENT:
        own = (
            "one ceiling seed"
            if m["ceiling_self_agreement"] is None
            else f"the ceiling's own seeds agree {100 * m['ceiling_self_agreement']:.1f}%"
        )
        flags.append(
            {
                "flag": "copies_ceiling",
                "saw": (
                    f"test predictions agree with the ceiling's on {100 * m['agreement']:.1f}% of {m['n_test']} "
                    f"examples ({m['agreement_pair']}; flagged at >= {100 * COPY_MIN_AGREEMENT:.0f}%; {own}); the "
                    f"method's mean prediction repeats {m['shared_errors']} of the ceiling's "
                    f"{m['ceiling_errors']} errors"
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
    return flags


def flag_method(
    labels: np.ndarray,
    weak_test: np.ndarray,
    ceiling_test: np.ndarray,
    w2s_test: np.ndarray,
    pgr: PGRResult,
    compute: list[dict],
) -> list[dict]:
    """Flags for one method on one task: [{"flag": id, "saw": one sentence with the numbers}], empty when
    nothing is suspicious. labels [n]; weak_test, ceiling_test [K, n]; w2s_test [S, n] (p(label=1));
    pgr: scoring.bootstrap_pgr's result for this method; compute: its per-seed compute records."""
    return flags_from_measures(measure(labels, weak_test, ceiling_test, w2s_test, pgr, compute))


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
