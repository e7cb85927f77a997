"""Scoring against the sealed test labels: accuracy, AUROC, PGR and its bootstrap interval; aggregates over
tasks; paired differences between methods; development vs held-out (transfer) scores.

PGR = (w2s_acc - weak_acc) / (ceiling_acc - weak_acc). Weak and ceiling are means over their K cached
seeds, w2s the mean over the method's S seeds. The 95% interval resamples test examples (paired: the same
resample for all three models) and, independently, the seeds of each group. Where the ceiling-weak gap's
interval reaches 0, PGR is undefined: dividing by a gap that may be noise gives a number that means nothing.

The resamples of a task are a function of (bootstrap seed, task name, n_test, number of seeds, n_boot) only
(`resample_counts`, `seed_draws`): every method scored on a task, in any run, with any other methods beside
it, and the leaderboard's build, draw the same test resamples and the same seed indices. That is what makes
two methods' draws a paired comparison (method seed s of both learns from the same weak seed), and what
keeps a method's interval independent of which other methods were run with it. Tasks draw from streams of
their own, so their resamples are independent of each other.

Aggregates over tasks (`aggregate`):
- the mean of the per-task PGRs (`mean_pgr`, the literature's number): undefined where any task's PGR is,
  and dominated by the task with the smallest gap, whose noise it divides by that gap;
- the pooled PGR (`pooled_pgr`) = sum over tasks of (w2s - weak) / sum of (ceiling - weak): the fraction
  of the suite's summed gap that the method recovers, equivalently the gap-weighted mean of the per-task
  PGRs. A task with a small gap weighs little, its noise is divided by the summed gap, and it is defined
  wherever the summed gap's interval excludes 0 (not every task's). This is what the leaderboard ranks by.

AUROC is the second figure (EleutherAI/w2s reports it): `bootstrap_auroc_pgr` is PGR with each accuracy
replaced by the mean per-seed AUROC, with the same resampling plan (each bootstrap resample weighs the test
examples by the task's multinomial counts, `weighted_auroc`, and averages the seeds of the group's draw), so
its interval and undefined rule are accuracy's and its draws are paired with accuracy's. Accuracy stays the
headline: AUROC ignores the threshold at 0.5 that a deployed classifier has to choose.

AUROC comes from scikit-learn rather than `evaluate`: evaluate's metric scripts live on the hub and cannot
be fetched offline, and its roc_auc module is itself a wrapper around the same scikit-learn function.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

CONFIDENCE = 0.95
# Independent sub-streams of a task's bootstrap, one per thing resampled.
_STREAM = {"examples": 0, "weak": 1, "ceiling": 2, "method": 3}


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples where p(label=1) >= 0.5 agrees with the 0/1 label."""
    return float(np.mean((np.asarray(probs) >= 0.5).astype(int) == np.asarray(labels)))


def auroc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return None
    from sklearn.metrics import (
        roc_auc_score,  # here, not at import: the leaderboard checks need only pgr
    )

    return float(roc_auc_score(labels, np.asarray(probs)))


def pgr(weak_acc: float, ceiling_acc: float, w2s_acc: float) -> float:
    return (w2s_acc - weak_acc) / (ceiling_acc - weak_acc)


def _bounds(confidence: float) -> tuple[float, float]:
    return 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Percentile interval of the finite draws (None if there are none)."""
    draws = np.asarray(draws)
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return None
    return tuple(float(x) for x in np.percentile(finite, _bounds(confidence)))


# ---- per-example correctness, compactly: what the leaderboard pairs entries on ----------------------------
def encode_correct(correct: np.ndarray) -> list[str]:
    """[seeds, n] 0/1 -> one base64 string per seed: the n bits packed most significant bit first (bit i is
    example i), the last byte padded with zeros. 2,500 examples take 420 characters per seed."""
    rows = np.atleast_2d(np.asarray(correct)).astype(bool)
    return [base64.b64encode(np.packbits(row).tobytes()).decode("ascii") for row in rows]


def decode_correct(encoded: Sequence[str], n: int) -> np.ndarray:
    """The inverse of encode_correct: [seeds, n] float 0/1. ValueError (saying why) for a string that is not
    base64, has the wrong length for n examples, or sets a padding bit."""
    rows = []
    for i, s in enumerate(encoded):
        try:
            raw = base64.b64decode(s, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"seed {i}: not base64 ({exc})") from None
        if len(raw) != (n + 7) // 8:
            raise ValueError(f"seed {i}: {len(raw)} bytes, but {n} examples take {(n + 7) // 8}")
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
        if bits[n:].any():
            raise ValueError(f"seed {i}: padding bits beyond example {n} are set")
        rows.append(bits[:n])
    return np.array(rows, dtype=np.float64).reshape(len(rows), n)


# ---- the resampling plan of a task -------------------------------------------------------------------------
def _task_key(task: str) -> int:
    return int.from_bytes(hashlib.sha256(task.encode("utf-8")).digest()[:8], "big")


def _rng(seed: int, task: str, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _task_key(task), *stream])


@lru_cache(maxsize=2)
def resample_counts(seed: int, task: str, n: int, n_boot: int) -> np.ndarray:
    """[n_boot, n] multinomial counts: how often each test example is drawn in each resample (read-only;
    cached, since every method of a task uses the same)."""
    counts = _rng(seed, task, _STREAM["examples"]).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    counts = counts.astype(np.float64)
    counts.setflags(write=False)
    return counts


def seed_draws(seed: int, task: str, group: str, k: int, n_boot: int) -> np.ndarray:
    """[n_boot, k] seed indices drawn with replacement for a group (weak, ceiling, method) of k seeds. Every
    method with k seeds on a task gets the same draws, so seed s of two methods is resampled together."""
    return _rng(seed, task, _STREAM[group], k).integers(0, k, size=(n_boot, k))


def boot_accuracy(correct: np.ndarray, task: str, group: str, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """[n_boot] bootstrap accuracies of a group's [seeds, n] correctness matrix, by the task's plan."""
    correct = np.atleast_2d(np.asarray(correct, dtype=np.float64))
    k, n = correct.shape
    per_seed = correct @ resample_counts(seed, task, n, n_boot).T / n  # [seeds, B]
    draw = seed_draws(seed, task, group, k, n_boot)
    return per_seed[draw, np.arange(n_boot)[:, None]].mean(axis=1)


def _auroc_order(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What a weighted AUROC of one score vector needs: the examples in ascending score order, which of them
    are positive, and for each the first and one-past-last position of its run of tied scores."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    new_run = np.r_[True, s[1:] != s[:-1]]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], len(s)]
    return order, labels[order] == 1, starts[run_id], ends[run_id]


def weighted_auroc(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUROC of one score vector [n] under each row of integer example weights counts [B, n] (a bootstrap
    resample's multinomial counts; a row of ones is the plain AUROC, equal to sklearn's roc_auc_score):
        AUROC = sum_{i pos, j neg} c_i c_j (1[s_i > s_j] + 1/2 1[s_i = s_j]) / (sum_pos c_i * sum_neg c_j),
    the Mann-Whitney statistic with ties counted half. [B]; NaN for a row that leaves one class empty."""
    counts_t = np.ascontiguousarray(np.atleast_2d(np.asarray(counts)).T, dtype=np.int64)
    return _weighted_auroc_t(scores, labels, counts_t)


def _weighted_auroc_t(scores: np.ndarray, labels: np.ndarray, counts_t: np.ndarray) -> np.ndarray:
    """weighted_auroc on counts laid out [n, B] (rows are examples: gathering them is a copy of rows), in
    exact integer arithmetic: 2 x wins = sum over positives of c_i (2 below_i + tied_i), where below_i and
    tied_i are the weighted negatives with a lower and an equal score (a cumulative sum in score order).
    O(n B) after one sort."""
    order, pos, run_start, run_end = _auroc_order(np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int))
    neg_sorted = np.zeros((len(order), counts_t.shape[1]), dtype=np.int64)
    neg_sorted[~pos] = counts_t[order[~pos]]
    cum = np.zeros((len(order) + 1, counts_t.shape[1]), dtype=np.int64)  # cum[k]: negatives among the k lowest
    np.cumsum(neg_sorted, axis=0, out=cum[1:])
    c_pos = counts_t[order[pos]].astype(np.int64)
    wins2 = np.einsum("ij,ij->j", c_pos, cum[run_start[pos]] + cum[run_end[pos]])
    n_pos, n_neg = c_pos.sum(axis=0), cum[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins2 / (2.0 * n_pos * n_neg), np.nan)


@lru_cache(maxsize=2)
def _resample_counts_t(seed: int, task: str, n: int, n_boot: int) -> np.ndarray:
    """resample_counts as integers laid out [n, n_boot] (what _weighted_auroc_t reads; read-only, cached)."""
    counts_t = np.ascontiguousarray(resample_counts(seed, task, n, n_boot).T.astype(np.int64))
    counts_t.setflags(write=False)
    return counts_t


def boot_auroc(
    probs: np.ndarray, labels: np.ndarray, task: str, group: str, n_boot: int = 2000, seed: int = 0
) -> np.ndarray:
    """[n_boot] bootstrap AUROCs of a group's [seeds, n] predictions by the task's plan, the same plan as
    boot_accuracy: each resample weighs the test examples by the task's multinomial counts and averages the
    per-seed AUROCs over the group's seed draw (the mean of per-seed AUROCs, as the results' `auroc`)."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    labels = np.asarray(labels).astype(int)
    k, n = probs.shape
    key = (hashlib.sha256(probs.tobytes() + labels.tobytes()).hexdigest(), k, n, task, group, n_boot, seed)
    if key not in _BOOT_AUROC:
        counts_t = _resample_counts_t(seed, task, n, n_boot)
        per_seed = np.stack([_weighted_auroc_t(row, labels, counts_t) for row in probs])  # [seeds, B]
        draw = seed_draws(seed, task, group, k, n_boot)
        draws = per_seed[draw, np.arange(n_boot)[:, None]].mean(axis=1)
        draws.setflags(write=False)
        _BOOT_AUROC[key] = draws
        while len(_BOOT_AUROC) > 8:  # the weak and ceiling draws of a task, asked again by each of its methods
            _BOOT_AUROC.pop(next(iter(_BOOT_AUROC)))
    return _BOOT_AUROC[key]


_BOOT_AUROC: dict[tuple, np.ndarray] = {}


@dataclass
class PGRResult:
    weak_acc: float
    ceiling_acc: float
    w2s_acc: float
    gap: float
    gap_ci: tuple[float, float]
    pgr: float | None
    pgr_ci: tuple[float, float] | None
    w2s_ci: tuple[float, float]
    pgr_per_seed: list[float] | None
    defined: bool
    undefined_reason: str | None
    n_test: int
    n_boot: int
    boot_pgr: np.ndarray | None = field(default=None, repr=False)  # bootstrap draws, for intervals of means
    # the bootstrap accuracies of the three models (every task's plan: see the module's docstring)
    boot_weak: np.ndarray | None = field(default=None, repr=False)
    boot_ceiling: np.ndarray | None = field(default=None, repr=False)
    boot_w2s: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("boot_pgr", "boot_weak", "boot_ceiling", "boot_w2s"):
            del out[key]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _correct(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[seeds, n] 0/1 matrix of correct predictions."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    return ((probs >= 0.5).astype(int) == np.asarray(labels)[None, :]).astype(np.float64)


def correct_matrix(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[seeds, n] 0/1: which test examples each seed's predictions (p >= 0.5) get right."""
    return _correct(probs, np.asarray(labels).astype(int))


def _boot_acc(correct: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap accuracies [B]: examples resampled by counts [B, n], seeds resampled with replacement from
    rng (the flags' ceiling interval uses this with its own stream)."""
    n_seeds, n = correct.shape
    per_seed = correct @ counts.T / n  # [seeds, B]: accuracy of each seed on each example resample
    seed_draw = rng.integers(0, n_seeds, size=(counts.shape[0], n_seeds))  # [B, seeds]
    return per_seed[seed_draw, np.arange(counts.shape[0])[:, None]].mean(axis=1)


def bootstrap_pgr(
    labels: np.ndarray,
    weak_probs: np.ndarray,
    ceiling_probs: np.ndarray,
    w2s_probs: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    task: str = "",
) -> PGRResult:
    """PGR with a (paired-example, per-group-seed) bootstrap interval; probs are [seeds, n] p(label=1).
    `task` names the task whose resampling plan is used (see the module's docstring)."""
    labels = np.asarray(labels).astype(int)
    return pgr_from_correct(
        *(_correct(p, labels) for p in (weak_probs, ceiling_probs, w2s_probs)),
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        task=task,
    )


def pgr_from_correct(
    weak: np.ndarray,
    ceiling: np.ndarray,
    w2s: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    task: str = "",
) -> PGRResult:
    """bootstrap_pgr from the three [seeds, n] correctness matrices (what the leaderboard holds)."""
    cw, cc, cs = (np.atleast_2d(np.asarray(c, dtype=np.float64)) for c in (weak, ceiling, w2s))
    weak_acc, ceiling_acc, w2s_acc = (float(c.mean()) for c in (cw, cc, cs))
    n = cw.shape[1]
    bw = boot_accuracy(cw, task, "weak", n_boot, seed)
    bc = boot_accuracy(cc, task, "ceiling", n_boot, seed)
    bs = boot_accuracy(cs, task, "method", n_boot, seed)
    per_seed_w2s = [float(row.mean()) for row in cs]
    return _pgr_from_draws(weak_acc, ceiling_acc, w2s_acc, per_seed_w2s, bw, bc, bs, n, n_boot, confidence)


def _pgr_from_draws(
    weak_acc: float,
    ceiling_acc: float,
    w2s_acc: float,
    per_seed_w2s: list[float],
    bw: np.ndarray,
    bc: np.ndarray,
    bs: np.ndarray,
    n: int,
    n_boot: int,
    confidence: float,
) -> PGRResult:
    """PGR, its interval and the undefined rule from the three models' point scores and bootstrap draws (of
    accuracy, or of AUROC: `bootstrap_auroc_pgr`)."""
    lo, hi = _bounds(confidence)
    gap = ceiling_acc - weak_acc
    gap_ci = tuple(float(x) for x in np.percentile(bc - bw, [lo, hi]))
    w2s_ci = tuple(float(x) for x in np.percentile(bs, [lo, hi]))
    draws = {"boot_weak": bw, "boot_ceiling": bc, "boot_w2s": bs}
    if gap_ci[0] <= 0:
        reason = (
            f"the ceiling-weak gap is not clearly positive: {100 * gap:.1f} points, "
            f"{100 * confidence:.0f}% interval [{100 * gap_ci[0]:.1f}, {100 * gap_ci[1]:.1f}] includes 0"
        )
        return PGRResult(
            weak_acc, ceiling_acc, w2s_acc, gap, gap_ci, None, None, w2s_ci, None, False, reason, n, n_boot, **draws
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        boot_pgr = (bs - bw) / (bc - bw)
    pgr_ci = interval(boot_pgr, confidence)
    per_seed = [pgr(weak_acc, ceiling_acc, x) for x in per_seed_w2s]
    return PGRResult(
        weak_acc,
        ceiling_acc,
        w2s_acc,
        gap,
        gap_ci,
        pgr(weak_acc, ceiling_acc, w2s_acc),
        pgr_ci,
        w2s_ci,
        per_seed,
        True,
        None,
        n,
        n_boot,
        boot_pgr,
        **draws,
    )


def bootstrap_auroc_pgr(
    labels: np.ndarray,
    weak_probs: np.ndarray,
    ceiling_probs: np.ndarray,
    w2s_probs: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    task: str = "",
) -> PGRResult | None:
    """PGR on AUROC, the second figure beside accuracy's (EleutherAI/w2s reports AUROC):
        PGR_auc = (w2s_auc - weak_auc) / (ceiling_auc - weak_auc),
    each AUROC the mean over the group's seeds of the per-seed AUROC, with the interval, the undefined rule
    and the resampling plan of bootstrap_pgr (the same test-example counts and seed draws as accuracy, so
    the two figures are paired). The result's *_acc fields hold AUROCs. None when the test labels hold one
    class (no AUROC exists); undefined when a resample does (never at realistic test sizes)."""
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        return None
    groups = [np.atleast_2d(np.asarray(p, dtype=np.float64)) for p in (weak_probs, ceiling_probs, w2s_probs)]
    per_seed = [[auroc(row, labels) for row in g] for g in groups]  # the results' auroc_per_seed
    weak_auc, ceiling_auc, w2s_auc = (float(np.mean(a)) for a in per_seed)
    bw, bc, bs = (
        boot_auroc(g, labels, task, grp, n_boot, seed) for g, grp in zip(groups, ("weak", "ceiling", "method"))
    )
    n = len(labels)
    if not all(np.isfinite(b).all() for b in (bw, bc, bs)):
        gap = ceiling_auc - weak_auc
        reason = "a bootstrap resample of the test examples holds one class only, so its AUROC does not exist"
        draws = {"boot_weak": bw, "boot_ceiling": bc, "boot_w2s": bs}
        return PGRResult(
            weak_auc, ceiling_auc, w2s_auc, gap, None, None, None, None, None, False, reason, n, n_boot, **draws
        )
    return _pgr_from_draws(weak_auc, ceiling_auc, w2s_auc, per_seed[2], bw, bc, bs, n, n_boot, confidence)


# ---- aggregates over tasks ----------------------------------------------------------------------------------
@dataclass
class Aggregate:
    """A method's scores over a set of tasks, with intervals from the tasks' (independent) bootstrap draws."""

    tasks: int
    mean_pgr: float | None
    mean_pgr_ci: tuple[float, float] | None
    pooled_pgr: float | None
    pooled_pgr_ci: tuple[float, float] | None
    pooled_gap: float
    pooled_gap_ci: tuple[float, float]
    pooled_undefined_reason: str | None
    mean_w2s_accuracy: float
    mean_draws: np.ndarray | None = field(default=None, repr=False)
    pooled_draws: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["mean_draws"], out["pooled_draws"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def pooled_pgr(
    weak: Iterable[float], ceiling: Iterable[float], w2s: Iterable[float]
) -> tuple[float | None, float, float]:
    """The pooled PGR over tasks, sum(w2s - weak) / sum(ceiling - weak), from one accuracy (or AUROC) per
    task each: (pooled PGR, None where the summed gap is not above 0; the summed w2s - weak; the summed
    ceiling - weak). The one place it is computed: results, the leaderboard's validation, the service's
    scores and the robustness resamples all call it. Summed left to right in task order, so that every
    caller gets the same number to the last digit."""
    recovered = gap = 0.0
    for k, c, w in zip(weak, ceiling, w2s, strict=True):
        recovered += w - k
        gap += c - k
    return (recovered / gap if gap > 0 else None), recovered, gap


def mean_pgr(
    results: list[PGRResult], confidence: float = CONFIDENCE
) -> tuple[float | None, tuple[float, float] | None]:
    """Mean PGR over tasks with an interval from the tasks' (independent) bootstrap draws; None if any
    task's PGR is undefined (a mean over a subset would flatter the method)."""
    if not results or any(not r.defined for r in results):
        return None, None
    draws = np.mean(np.stack([r.boot_pgr for r in results]), axis=0)
    return float(np.mean([r.pgr for r in results])), interval(draws, confidence)


def aggregate(results: list[PGRResult], confidence: float = CONFIDENCE) -> Aggregate:
    """Mean PGR and pooled PGR over the tasks of `results` (one PGRResult per task, same method)."""
    mean, mean_ci = mean_pgr(results, confidence)
    mean_draws = np.mean(np.stack([r.boot_pgr for r in results]), axis=0) if mean is not None else None
    _, recovered, gap = pooled_pgr(
        [r.weak_acc for r in results], [r.ceiling_acc for r in results], [r.w2s_acc for r in results]
    )
    recovered, gap = float(recovered), float(gap)
    gap_draws = np.sum([r.boot_ceiling - r.boot_weak for r in results], axis=0)
    gap_ci = tuple(float(x) for x in np.percentile(gap_draws, _bounds(confidence)))
    acc = float(np.mean([r.w2s_acc for r in results]))
    if gap_ci[0] <= 0:
        reason = (
            f"the summed ceiling-weak gap over {len(results)} task(s) is not clearly positive: "
            f"{100 * gap:.1f} points, interval [{100 * gap_ci[0]:.1f}, {100 * gap_ci[1]:.1f}] includes 0"
        )
        return Aggregate(len(results), mean, mean_ci, None, None, gap, gap_ci, reason, acc, mean_draws, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.sum([r.boot_w2s - r.boot_weak for r in results], axis=0) / gap_draws
    return Aggregate(
        len(results),
        mean,
        mean_ci,
        recovered / gap,
        interval(draws, confidence),
        gap,
        gap_ci,
        None,
        acc,
        mean_draws,
        draws,
    )


def difference(a: Aggregate, b: Aggregate, confidence: float = CONFIDENCE) -> dict:
    """a - b for two aggregates whose draws share their resamples (the same tasks' plans): the mean and the
    pooled PGR, each with its interval (None where either side is undefined)."""
    out: dict = {}
    for key in ("mean_pgr", "pooled_pgr"):
        draws_a, draws_b = getattr(a, key.replace("_pgr", "_draws")), getattr(b, key.replace("_pgr", "_draws"))
        if getattr(a, key) is None or getattr(b, key) is None:
            out[key], out[f"{key}_ci"] = None, None
            continue
        out[key] = getattr(a, key) - getattr(b, key)
        with np.errstate(invalid="ignore"):
            ci = interval(draws_a - draws_b, confidence)
        out[f"{key}_ci"] = list(ci) if ci else None
    return out


# ---- development vs held-out --------------------------------------------------------------------------------
HELDOUT_SUFFIX = "-heldout"


def is_heldout(tags: Sequence[str]) -> bool:
    """A task is held out when one of its tags is `heldout` or ends in `-heldout` (default-heldout,
    aar-heldout); every other task of a run is a development task."""
    return any(t == "heldout" or t.endswith(HELDOUT_SUFFIX) for t in tags)


def transfer(
    scores: Mapping[str, Mapping[str, PGRResult]], heldout: Sequence[str], confidence: float = CONFIDENCE
) -> dict | None:
    """Development vs held-out scores per method: scores[task][method] -> PGRResult; heldout: the held-out
    task names. Each side's mean and pooled PGR with intervals, and held-out minus development with its
    interval (the two sides' tasks resample independently). None when either side has no task."""
    tasks = list(scores)
    held = [t for t in tasks if t in set(heldout)]
    dev = [t for t in tasks if t not in set(heldout)]
    if not held or not dev:
        return None
    methods = [m for m in scores[tasks[0]] if all(m in scores[t] for t in tasks)]
    out: dict = {"development": dev, "heldout": held, "methods": {}}
    for m in methods:
        a_dev = aggregate([scores[t][m] for t in dev], confidence)
        a_held = aggregate([scores[t][m] for t in held], confidence)
        out["methods"][m] = {
            "development": a_dev.to_dict(),
            "heldout": a_held.to_dict(),
            "difference": difference(a_held, a_dev, confidence),
        }
    return out


# ---- paired differences between methods of one run ------------------------------------------------------------
def compare_to_baseline(
    runs: list, baseline: str = "vanilla", n_boot: int = 2000, seed: int = 0, confidence: float = CONFIDENCE
) -> dict:
    """w2s_a - w2s_baseline (accuracy) and PGR_a - PGR_baseline per task, and over tasks (mean and pooled),
    each with a paired bootstrap interval: the task's plan (one resample of test examples shared by every
    model, one resample of method-seed indices shared by the two methods: method seed s of both learns from
    the same weak seed; weak and ceiling seeds resampled on their own). The PGR difference is
    Δaccuracy / (ceiling - weak), undefined where the gap is (see bootstrap_pgr). Reads the draws the run's
    scores hold (each task's TaskRun.scores), so a method's interval does not depend on which other methods
    the run holds; n_boot and seed are those the scores were made with."""
    out: dict = {"baseline": baseline, "tasks": {}, "mean": {}}
    runs = [tr for tr in runs if baseline in tr.scores]
    for tr in runs:
        base = tr.scores[baseline]
        entry = {}
        for name, s in tr.scores.items():
            if name == baseline:
                continue
            d_acc = s.boot_w2s - base.boot_w2s
            point = s.w2s_acc - base.w2s_acc
            row = {"d_acc": point, "d_acc_ci": list(interval(d_acc, confidence)), "d_pgr": None, "d_pgr_ci": None}
            if base.defined:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ci = interval(d_acc / (base.boot_ceiling - base.boot_weak), confidence)
                row["d_pgr"], row["d_pgr_ci"] = point / base.gap, list(ci) if ci else None
            entry[name] = row
        out["tasks"][tr.task.name] = entry
    names = [n for n in (runs[0].scores if runs else {}) if n != baseline and all(n in tr.scores for tr in runs)]
    for name in names:
        a = aggregate([tr.scores[name] for tr in runs], confidence)
        b = aggregate([tr.scores[baseline] for tr in runs], confidence)
        d_acc = np.mean([tr.scores[name].boot_w2s - tr.scores[baseline].boot_w2s for tr in runs], axis=0)
        diff = difference(a, b, confidence)
        out["mean"][name] = {
            "d_acc": float(np.mean([tr.scores[name].w2s_acc - tr.scores[baseline].w2s_acc for tr in runs])),
            "d_acc_ci": list(interval(d_acc, confidence)),
            "d_pgr": diff["mean_pgr"],
            "d_pgr_ci": diff["mean_pgr_ci"],
            "d_pooled_pgr": diff["pooled_pgr"],
            "d_pooled_pgr_ci": diff["pooled_pgr_ci"],
            "tasks": len(runs),
        }
    return out
