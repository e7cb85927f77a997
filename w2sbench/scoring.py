"""Scoring against the sealed test labels: accuracy, AUROC, PGR and its bootstrap interval.

PGR = (w2s_acc - weak_acc) / (ceiling_acc - weak_acc). Weak and ceiling are means over their K cached
seeds, w2s the mean over the method's S seeds. The 95% interval resamples test examples (paired: the same
resample for all three models) and, independently, the seeds of each group. Where the ceiling-weak gap's
interval reaches 0, PGR is undefined: dividing by a gap that may be noise gives a number that means nothing.

AUROC comes from scikit-learn rather than `evaluate`: evaluate's metric scripts live on the hub and cannot
be fetched offline, and its roc_auc module is itself a wrapper around the same scikit-learn function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


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

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["boot_pgr"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _correct(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[seeds, n] 0/1 matrix of correct predictions."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    return ((probs >= 0.5).astype(int) == np.asarray(labels)[None, :]).astype(np.float64)


def _boot_acc(correct: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap accuracies [B]: examples resampled by counts [B, n], seeds resampled with replacement."""
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
    confidence: float = 0.95,
) -> PGRResult:
    """PGR with a (paired-example, per-group-seed) bootstrap interval; probs are [seeds, n] p(label=1)."""
    labels = np.asarray(labels).astype(int)
    cw, cc, cs = (_correct(p, labels) for p in (weak_probs, ceiling_probs, w2s_probs))
    weak_acc, ceiling_acc, w2s_acc = (float(c.mean()) for c in (cw, cc, cs))
    n = labels.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # [B, n]
    bw, bc, bs = (_boot_acc(c, counts, rng) for c in (cw, cc, cs))
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    gap = ceiling_acc - weak_acc
    gap_ci = tuple(float(x) for x in np.percentile(bc - bw, [lo, hi]))
    w2s_ci = tuple(float(x) for x in np.percentile(bs, [lo, hi]))
    if gap_ci[0] <= 0:
        reason = (
            f"the ceiling-weak gap is not clearly positive: {100 * gap:.1f} points, "
            f"{100 * confidence:.0f}% interval [{100 * gap_ci[0]:.1f}, {100 * gap_ci[1]:.1f}] includes 0"
        )
        return PGRResult(
            weak_acc, ceiling_acc, w2s_acc, gap, gap_ci, None, None, w2s_ci, None, False, reason, n, n_boot
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        boot_pgr = (bs - bw) / (bc - bw)
    pgr_ci = tuple(float(x) for x in np.percentile(boot_pgr[np.isfinite(boot_pgr)], [lo, hi]))
    per_seed = [pgr(weak_acc, ceiling_acc, float(row.mean())) for row in cs]
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
    )


def mean_pgr(results: list[PGRResult], confidence: float = 0.95) -> tuple[float | None, tuple[float, float] | None]:
    """Mean PGR over tasks with an interval from the tasks' (independent) bootstrap draws; None if any
    task's PGR is undefined (a mean over a subset would flatter the method)."""
    if not results or any(not r.defined for r in results):
        return None, None
    draws = np.mean(np.stack([r.boot_pgr for r in results]), axis=0)
    draws = draws[np.isfinite(draws)]
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    return float(np.mean([r.pgr for r in results])), tuple(float(x) for x in np.percentile(draws, [lo, hi]))


def compare_to_baseline(
    runs: list, baseline: str = "vanilla", n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict:
    """w2s_a - w2s_baseline (accuracy) and PGR_a - PGR_baseline per task and averaged over tasks, each with a
    paired bootstrap interval: one resample of test examples shared by every model, and one resample of
    seed indices shared by the two methods (method seed s of both learns from the same weak seed), weak and
    ceiling seeds resampled on their own. The PGR difference is Δaccuracy / (ceiling - weak); undefined where
    the gap is (see scoring.bootstrap_pgr). Needs the runs (test predictions), not the results JSON."""
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    out: dict = {"baseline": baseline, "tasks": {}, "mean": {}}
    draws: dict[str, list] = {}
    for tr in runs:
        if baseline not in tr.methods:
            continue
        labels = np.array([e.label for e in tr.splits.test])
        n = len(labels)
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
        bw = _boot_acc(_correct(tr.weak_test, labels), counts, rng)
        bc = _boot_acc(_correct(tr.ceiling_test, labels), counts, rng)
        cb = _correct(tr.methods[baseline].test_probs, labels)
        gap_defined = tr.scores[baseline].defined
        entry = {}
        for name, mr in tr.methods.items():
            if name == baseline:
                continue
            ca = _correct(mr.test_probs, labels)
            if ca.shape[0] != cb.shape[0]:
                continue
            d_acc = _boot_acc(ca - cb, counts, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                d_pgr = d_acc / (bc - bw)
            point = float(ca.mean() - cb.mean())
            gap = tr.scores[baseline].gap
            finite = d_pgr[np.isfinite(d_pgr)]
            entry[name] = {
                "d_acc": point,
                "d_acc_ci": [float(x) for x in np.percentile(d_acc, [lo, hi])],
                "d_pgr": point / gap if gap_defined else None,
                "d_pgr_ci": [float(x) for x in np.percentile(finite, [lo, hi])]
                if gap_defined and len(finite)
                else None,
            }
            draws.setdefault(name, []).append((d_acc, d_pgr if gap_defined else None, entry[name]))
        out["tasks"][tr.task.name] = entry
    for name, items in draws.items():
        acc = np.mean([d[0] for d in items], axis=0)
        m = {
            "d_acc": float(np.mean([d[2]["d_acc"] for d in items])),
            "d_acc_ci": [float(x) for x in np.percentile(acc, [lo, hi])],
            "d_pgr": None,
            "d_pgr_ci": None,
            "tasks": len(items),
        }
        if all(d[1] is not None for d in items):
            pg = np.mean([d[1] for d in items], axis=0)
            pg = pg[np.isfinite(pg)]
            m["d_pgr"] = float(np.mean([d[2]["d_pgr"] for d in items]))
            m["d_pgr_ci"] = [float(x) for x in np.percentile(pg, [lo, hi])] if len(pg) else None
        out["mean"][name] = m
    return out
