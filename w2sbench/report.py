"""The terminal summary: one row per task and method, accuracies and PGR with 95% intervals."""

from __future__ import annotations


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def _ci(ci) -> str:
    return "" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def summary_table(doc: dict) -> str:
    rows = [("task", "method", "weak", "ceiling", "w2s", "gap", "PGR", "95% CI")]
    notes = []
    for task, entry in doc["tasks"].items():
        for name, m in entry["methods"].items():
            p = m["pgr"]
            pgr = f"{p['pgr']:+.2f}" if p["defined"] else "undef."
            if not p["defined"]:
                notes.append(f"{task}/{name}: PGR undefined: {p['undefined_reason']}")
            rows.append((task, name, _pct(entry["weak"]["accuracy"]), _pct(entry["ceiling"]["accuracy"]),
                         _pct(m["w2s"]["accuracy"]), _pct(p["gap"]), pgr, _ci(p["pgr_ci"])))
    for name, s in doc["summary"].items():
        mean = "undef." if s["mean_pgr"] is None else f"{s['mean_pgr']:+.2f}"
        rows.append(("MEAN", name, "", "", _pct(s["mean_w2s_accuracy"]), "", mean, _ci(s["mean_pgr_ci"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    k, s = doc["seeds"]["baseline"], doc["seeds"]["method"]
    lines.append(f"accuracies in %, weak/ceiling mean of {k} seeds, w2s mean of {s}; PGR interval: bootstrap over test examples and seeds")
    return "\n".join(lines + notes)


# ---- several methods: the difference to a baseline method (vanilla) ------------------------------------------
def _correct(probs, labels):
    import numpy as np

    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    return ((probs >= 0.5).astype(int) == np.asarray(labels)[None, :]).astype(np.float64)


def compare_to_baseline(runs: list, baseline: str = "vanilla", n_boot: int = 2000, seed: int = 0,
                        confidence: float = 0.95) -> dict:
    """w2s_a - w2s_baseline (accuracy) and PGR_a - PGR_baseline per task and averaged over tasks, each with a
    paired bootstrap interval: one resample of test examples shared by every model, and one resample of
    seed indices shared by the two methods (method seed s of both learns from the same weak seed), weak and
    ceiling seeds resampled on their own. The PGR difference is Δaccuracy / (ceiling - weak); undefined where
    the gap is (see scoring.bootstrap_pgr). Needs the runs (test predictions), not the results JSON."""
    import numpy as np

    from .scoring import _boot_acc

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
            per_seed = (ca - cb) @ counts.T / n  # [S, B]
            seed_draw = rng.integers(0, ca.shape[0], size=(n_boot, ca.shape[0]))
            d_acc = per_seed[seed_draw, np.arange(n_boot)[:, None]].mean(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                d_pgr = d_acc / (bc - bw)
            point = float(ca.mean() - cb.mean())
            gap = tr.scores[baseline].gap
            finite = d_pgr[np.isfinite(d_pgr)]
            entry[name] = {
                "d_acc": point, "d_acc_ci": [float(x) for x in np.percentile(d_acc, [lo, hi])],
                "d_pgr": point / gap if gap_defined else None,
                "d_pgr_ci": [float(x) for x in np.percentile(finite, [lo, hi])] if gap_defined and len(finite) else None,
            }
            draws.setdefault(name, []).append((d_acc, d_pgr if gap_defined else None, entry[name]))
        out["tasks"][tr.task.name] = entry
    for name, items in draws.items():
        acc = np.mean([d[0] for d in items], axis=0)
        m = {"d_acc": float(np.mean([d[2]["d_acc"] for d in items])),
             "d_acc_ci": [float(x) for x in np.percentile(acc, [lo, hi])], "d_pgr": None, "d_pgr_ci": None,
             "tasks": len(items)}
        if all(d[1] is not None for d in items):
            pg = np.mean([d[1] for d in items], axis=0)
            pg = pg[np.isfinite(pg)]
            m["d_pgr"] = float(np.mean([d[2]["d_pgr"] for d in items]))
            m["d_pgr_ci"] = [float(x) for x in np.percentile(pg, [lo, hi])] if len(pg) else None
        out["mean"][name] = m
    return out


def comparison_table(comp: dict) -> str:
    """The terminal table of compare_to_baseline(): Δ accuracy (points) and Δ PGR with 95% intervals."""
    base = comp["baseline"]
    rows = [("task", "method", f"Δw2s vs {base}", "95% CI", "ΔPGR", "95% CI")]

    def row(task: str, name: str, e: dict) -> tuple:
        acc_ci = f"[{100 * e['d_acc_ci'][0]:+.1f}, {100 * e['d_acc_ci'][1]:+.1f}]"
        pgr = "undef." if e["d_pgr"] is None else f"{e['d_pgr']:+.2f}"
        return (task, name, f"{100 * e['d_acc']:+.1f}", acc_ci, pgr, _ci(e["d_pgr_ci"]))

    for task, entry in comp["tasks"].items():
        rows += [row(task, name, e) for name, e in entry.items()]
    rows += [row("MEAN", name, e) for name, e in comp["mean"].items()]
    if len(rows) == 1:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"Δ = method - {base}, accuracy in points; intervals: paired bootstrap over test examples and seeds")
    return "\n".join(lines)
