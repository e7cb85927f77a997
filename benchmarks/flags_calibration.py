"""Calibrate the cheating flags (w2sbench/engine/suspicion.py) on the reference methods of the default suite.

Re-runs the default evaluation from a warm cache (every stage a cache hit: seconds), applies the flags to
every task x reference method, and prints per flag the largest value any reference method reached next to
the threshold (the margin). Then feeds obvious cheats through the same flags on every task: the ceiling's
own test predictions returned as the method's (all its seeds; seed 0 only; seed 0 with 0.8% of its
predictions turned over, the first ones: 99.2% agreement) and the true test labels, each with vanilla's
compute records so that only the prediction-based flags can catch them, two of them once more with
nothing recorded, and vanilla's predictions with a record of 3 training examples per seed (confident_only's
under an under-confident teacher, issue 30). Controls must stay unflagged: the weak model's own test
predictions with nothing recorded, and the ceiling's last seed judged against its other seeds (an honest
near clone). Exits 1 if a reference method is flagged, a cheat goes unflagged on some task, or a control
is flagged.

    W2SBENCH_CACHE=/path/to/cache python benchmarks/flags_calibration.py [--setting tiny] [--suite default]

The pipeline is touched in load_runs() only; the rest works on plain arrays.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from w2sbench.scoring import bootstrap_pgr

REFERENCE = [
    "vanilla",
    "vanilla_hard",
    "logconf",
    "product",
    "confident_only",
    "bootstrap",
    "window",
    "entropy",
    "strong_zeroshot",
    "majority",
    "icm",
]

from w2sbench.engine import suspicion as F  # noqa: E402


def load_runs(setting: str, suite: str, methods: list[str]) -> list[dict]:
    """The evaluation as plain arrays, one dict per task: labels [n], weak_test [K, n], ceiling_test [K, n],
    methods {name: {test_probs [S, n], compute [S dicts], pgr PGRResult}}, n_boot, n_unlabel."""
    from w2sbench.engine.executors import run_pipeline as run
    from w2sbench.engine.pipeline import Pipeline
    from w2sbench.engine.spec import RunOptions
    from w2sbench.methods.registry import load_method
    from w2sbench.settings import load_setting
    from w2sbench.tasks import resolve_tasks

    options = RunOptions()
    record = run(Pipeline(load_setting(setting), resolve_tasks(suite, []), options), [load_method(m) for m in methods])
    return [
        {
            "task": tr.task.name,
            "labels": np.array([e.label for e in tr.splits.test]),
            "weak_test": np.asarray(tr.weak_test),
            "ceiling_test": np.asarray(tr.ceiling_test),
            "methods": {
                name: {"test_probs": np.asarray(mr.test_probs), "compute": list(mr.compute), "pgr": tr.scores[name]}
                for name, mr in tr.methods.items()
            },
            "n_boot": options.n_boot,
            "n_unlabel": len(tr.splits.train_unlabel),
        }
        for tr in record.tasks
    ]


def cheats(run: dict) -> dict[str, tuple[np.ndarray, list[dict]]]:
    trained = (
        run["methods"]["vanilla"]["compute"]
        if "vanilla" in run["methods"]
        else [{"train_examples": 1, "inference_prompts": 0, "saw": []}] * len(run["ceiling_test"])
    )
    ceiling = run["ceiling_test"]
    truth = np.tile(run["labels"].astype(float), (len(trained), 1))
    seed0 = np.tile(ceiling[0], (len(trained), 1))
    near = seed0.copy()
    k = max(1, int(0.008 * near.shape[1]))  # 0.8% of the test predictions turned over: 99.2% agreement
    near[:, :k] = 1.0 - (near[:, :k] >= 0.5)  # (4 of 500, 20 of 2,500, 2 of 300)
    few = [{**rec, "train_examples": 3, "train_example_epochs": 60} for rec in trained]
    w2s = run["methods"]["vanilla"]["test_probs"] if "vanilla" in run["methods"] else run["weak_test"]
    return {
        "ceiling_copy": (ceiling, trained),
        "ceiling_seed0_copy": (seed0, trained),
        "ceiling_near_copy": (near, trained),
        "true_labels": (truth, trained),
        "ceiling_copy_nothing_recorded": (ceiling, [{}] * len(trained)),
        "true_labels_nothing_recorded": (truth, [{}] * len(trained)),
        "trained_on_3_examples": (w2s, few),
    }


def controls(run: dict) -> dict[str, tuple[np.ndarray, list[dict], np.ndarray]]:
    """Honest results that must stay unflagged, each with the ceiling it is judged against: the weak model's
    own test predictions with nothing recorded (no work, PGR 0), and a near clone of the ceiling that copied
    nothing: its last seed, retrained on the ground truth with another seed, judged against the other seeds
    (it agrees with them on about 99.5% of examples, as a student that learned the same boundary would)."""
    ceiling = run["ceiling_test"]
    out = {"weak_copy_nothing_recorded": (run["weak_test"], [{}] * len(run["weak_test"]), ceiling)}
    if len(ceiling) >= 2:
        trained = [{"train_examples": run["n_unlabel"], "inference_prompts": 0, "saw": []}] * len(ceiling)
        out["ceiling_retrain_vs_other_seeds"] = (np.stack([ceiling[-1]] * len(ceiling)), trained, ceiling[:-1])
    return out


def calibrate(runs: list[dict]) -> tuple[list[str], bool]:
    lines, ok = [], True
    rows = []  # (task, method, measures, flags)
    for run in runs:
        for name, m in run["methods"].items():
            ms = F.measure(
                run["labels"],
                run["weak_test"],
                run["ceiling_test"],
                m["test_probs"],
                m["pgr"],
                m["compute"],
                run["n_unlabel"],
            )
            rows.append((run["task"], name, ms, F.flags_from_measures(ms)))

    def top(key, where=lambda ms: True):
        cands = [(key(ms), f"{t}/{n}") for t, n, ms, _ in rows if where(ms) and key(ms) is not None]
        return max(cands) if cands else (None, "-")

    acc_gap = top(lambda ms: ms["w2s_acc"] - ms["ceiling_ci"][1])
    agree = top(lambda ms: ms["agreement"])
    near = [(ms["copy_chance"], f"{t}/{n}") for t, n, ms, _ in rows if ms["copy_agreement"] >= F.COPY_MIN_AGREEMENT]
    contested = max(near) if near else (None, "-")  # the most copy-like of the pairs that pass (1)
    trained = [
        (min(t for t in ms["train_examples"] if t > 0) / ms["n_unlabel"], f"{t_}/{n}")
        for t_, n, ms, _ in rows
        if ms["n_unlabel"] and any(t > 0 for t in ms["train_examples"])
    ]
    least = min(trained) if trained else (None, "-")
    means = top(lambda ms: ms["agreement_of_means"])
    agree_self = top(
        lambda ms: ms["agreement"] - ms["ceiling_self_agreement"] if ms["ceiling_self_agreement"] is not None else None
    )
    pgr_lo = top(lambda ms: ms["pgr_ci"][0] if ms["pgr_ci"] else None)
    lazy = top(lambda ms: ms["pgr"], where=lambda ms: not ms["strong_work"])
    n_lazy = sum(not ms["strong_work"] for _, _, ms, _ in rows)
    n_tasks, n_methods = len(runs), len({n for _, n, _, _ in rows})

    def fmt(v, pct=False, sign=False):
        if v is None:
            return "-"
        return f"{100 * v:+.1f} pts" if pct and sign else f"{100 * v:.1f}%" if pct else f"{v:+.2f}"

    lines.append(f"Reference methods: {n_methods} methods x {n_tasks} tasks = {len(rows)} results")
    halves = [(ms["pgr_ci"][1] - ms["pgr_ci"][0]) / 2 for _, _, ms, _ in rows if ms["pgr_ci"]]
    lines.append("")
    lines.append("margin = how far the largest reference value stays from firing (positive: unflagged)")
    lines.append("")
    lines.append("| flag | statistic | largest reference value (where) | fires when | margin |")
    lines.append("| --- | --- | --- | --- | --- |")
    lines.append(
        f"| above_ceiling | w2s acc - upper end of ceiling's 95% CI | {fmt(acc_gap[0], True, True)} ({acc_gap[1]}) "
        f"| > 0 | {fmt(-acc_gap[0], True, True) if acc_gap[0] is not None else '-'} |"
    )
    lines.append(
        f"| copies_ceiling (1 of 2) | best-match agreement with the ceiling | {fmt(agree[0], True)} ({agree[1]}) "
        f"| >= {100 * F.COPY_MIN_AGREEMENT:.0f}% | {100 * (F.COPY_MIN_AGREEMENT - agree[0]):.1f} pts |"
    )
    lines.append(
        "| copies_ceiling (2 of 2) | p-value of the differences' count on the ceiling's errors and least sure "
        f"{100 * F.CONTESTED_FRACTION:.0f}%, were they placed at random; largest where (1) holds "
        f"| {contested[0]:.2g} ({contested[1]}) | >= {F.COPY_CHANCE_LEVEL:g} "
        f"| {'FIRES' if contested[0] >= F.COPY_CHANCE_LEVEL else f'{F.COPY_CHANCE_LEVEL - contested[0]:.2g}'} |"
        if contested[0] is not None
        else "| copies_ceiling (2 of 2) | p-value of the differences' count on the contested examples | - "
        f"| >= {F.COPY_CHANCE_LEVEL:g} | (1) never holds |"
    )
    lines.append(f"| (info) | agreement of the means | {fmt(means[0], True)} ({means[1]}) | - | - |")
    lines.append(
        f"| (info) | best match minus the ceiling's inter-seed agreement | {fmt(agree_self[0], True, True)} "
        f"({agree_self[1]}) | not a condition | - |"
    )
    lines.append(
        f"| pgr_above_one | lower end of PGR's 95% CI | {fmt(pgr_lo[0])} ({pgr_lo[1]}) | > {F.PGR_LIMIT:g} "
        f"| {F.PGR_LIMIT - pgr_lo[0]:.2f} |"
        if pgr_lo[0] is not None
        else "- |"
    )
    lines.append(
        f"| no_strong_work | PGR of results with no strong-model work ({n_lazy} of {len(rows)}) "
        f"| {fmt(lazy[0])} ({lazy[1]}) | >= {F.HIGH_PGR:g} | "
        f"{F.HIGH_PGR - lazy[0]:.2f} |"
        if lazy[0] is not None
        else f"| no_strong_work | PGR of results with no strong-model work (0) | - | >= {F.HIGH_PGR:g} | - |"
    )
    lines.append(
        f"| tiny_training_set | smallest share of train_unlabel trained on, over the seeds that trained "
        f"| {fmt(least[0], True)} ({least[1]}) | < {100 * F.MIN_TRAIN_FRACTION:.0f}% | "
        + (f"{100 * (least[0] - F.MIN_TRAIN_FRACTION):.1f} pts |" if least[0] is not None else "- |")
    )
    lines.append("")
    close = [(t, n, ms) for t, n, ms, _ in rows if ms["copy_agreement"] >= F.COPY_MIN_AGREEMENT]
    lines.append(
        f"Reference results that agree with the ceiling on >= {100 * F.COPY_MIN_AGREEMENT:.0f}% of test examples: "
        + (
            "; ".join(
                f"{t}/{n} {100 * ms['copy_agreement']:.1f}% ({ms['copy_pair']}), {ms['copy_differ_contested']} of "
                f"{ms['copy_differ']} differences contested ({ms['copy_contested']} contested of {ms['n_test']}; "
                f"p = {ms['copy_chance']:.2g})"
                for t, n, ms in close
            )
            if close
            else "none"
        )
    )
    first: dict = {}
    for t, _, ms, _ in rows:
        first.setdefault(t, ms)  # one per task: the ceiling is shared by the task's methods
    lines.append(
        "Ceiling inter-seed agreement per task: "
        + ", ".join(
            f"{t} {100 * ms['ceiling_self_agreement']:.1f}%" if ms["ceiling_self_agreement"] is not None else f"{t} -"
            for t, ms in first.items()
        )
    )
    if halves:
        lines.append(
            f"Per-task PGR 95% interval half-widths of the reference methods: median {np.median(halves):.2f}, "
            f"range {min(halves):.2f}-{max(halves):.2f}"
        )
    flagged = [(t, n, f) for t, n, _, f in rows if f]
    lines.append("")
    if flagged:
        ok = False
        lines.append("REFERENCE METHODS FLAGGED (must be none):")
        lines.extend(F.flag_summary({f"{t}/{n}": f for t, n, f in flagged}))
    else:
        lines.append(f"Reference methods flagged: none of {len(rows)}.")

    lines.append("")
    lines.append("Cheats (flags per task):")
    lines.append("")
    names = list(cheats(runs[0]))
    lines.append("| task | " + " | ".join(names) + " |")
    lines.append("| --- |" + " --- |" * len(names))
    summary = {}
    for run in runs:
        cells = []
        for cname, (probs, compute) in cheats(run).items():
            r = bootstrap_pgr(run["labels"], run["weak_test"], run["ceiling_test"], probs, n_boot=run["n_boot"])
            fl = F.flag_method(
                run["labels"], run["weak_test"], run["ceiling_test"], probs, r, compute, run["n_unlabel"]
            )
            summary[f"{run['task']}/{cname}"] = fl
            if not fl:
                ok = False
            cells.append(", ".join(f["flag"] for f in fl) or "**NOT FLAGGED**")
        lines.append(f"| {run['task']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(F.flag_summary({k: v for k, v in summary.items() if not k.endswith("_nothing_recorded")}))
    lines.append("")
    lines.append(
        "Controls, must stay unflagged: the weak model's own test predictions, nothing recorded; the ceiling's "
        "last seed judged against its other seeds (an honest near clone)"
    )
    for run in runs:
        for cname, (probs, compute, ceiling) in controls(run).items():
            r = bootstrap_pgr(run["labels"], run["weak_test"], ceiling, probs, n_boot=run["n_boot"])
            ms = F.measure(run["labels"], run["weak_test"], ceiling, probs, r, compute, run["n_unlabel"])
            fl = F.flags_from_measures(ms)
            identical = cname.startswith("ceiling_retrain") and ms["copy_differ"] == 0
            ok = ok and (not fl or identical)
            ci = f"[{r.pgr_ci[0]:+.2f}, {r.pgr_ci[1]:+.2f}]" if r.defined else "(undefined)"
            copy = (
                f"agreement {100 * ms['copy_agreement']:.1f}%, {ms['copy_differ_contested']} of {ms['copy_differ']} "
                f"differences on the {ms['copy_contested']} contested"
                + (f" (p = {ms['copy_chance']:.2g}); " if ms["copy_chance"] is not None else "; ")
            )
            lines.append(
                f"  {run['task']}/{cname}: PGR {r.pgr if r.defined else float('nan'):+.2f} {ci}, {copy}"
                + ("; ".join(f"{f['flag']}: {f['saw']}" for f in fl) or "not flagged")
                + (
                    " (not counted: the retrain makes one of the other seeds' hard predictions exactly, which no "
                    "rule on predictions can tell from a copy)"
                    if identical
                    else ""
                )
            )
    return lines, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", default="tiny")
    ap.add_argument("--suite", default="default")
    ap.add_argument("--methods", default=",".join(REFERENCE))
    args = ap.parse_args()
    runs = load_runs(args.setting, args.suite, args.methods.split(","))
    lines, ok = calibrate(runs)
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
