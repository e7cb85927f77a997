"""Figures of a results JSON, as a paper would show them (`w2sbench plot RESULTS.json`):

- `pgr`: PGR per task and method with its 95% interval, then each method's pooled PGR (the headline,
  what the leaderboard ranks by) and its mean over tasks; held-out tasks are marked "(held-out)" on a grey
  ground; an undefined PGR (the ceiling-weak gap's interval includes 0) is drawn as a cross on 0, never as
  a number;
- `accuracy`: weak, each method's w2s (with its interval) and ceiling accuracy per task;
- `transfer`: development vs held-out mean PGR per method (with its interval from the results' `transfer`
  record), only when the run holds both kinds of task (tags `heldout` / `*-heldout`); otherwise skipped
  with a note;
- `generalization`: across methods, held-out against development pooled PGR with both intervals, and their
  Pearson and Spearman correlations with a bootstrap interval over methods (does development performance
  predict held-out performance?); with at least three methods and both kinds of task.

Each figure is written as PNG and SVG, with a `<figure>.json` beside it holding exactly the values plotted
(what tests and readers check; the figures are drawn from it). Needs matplotlib (`pip install
'w2sbench[plot]'`); drawn with matplotlib's object API on Agg, so no display and no global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingPackageError
from ..schema_io import write_json

FORMATS = ("png", "svg")
COLORS = {"weak": "#9e9e9e", "ceiling": "#424242"}
METHOD_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class Figures:
    """What plot_results made: figure name -> matplotlib Figure, its plotted data, the files written."""

    figures: dict[str, Any] = field(default_factory=dict)
    data: dict[str, dict] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---- the data each figure shows ------------------------------------------------------------------------------
def pgr_data(doc: dict) -> dict:
    tasks = list(doc["tasks"])
    methods = list(doc["summary"]) or list(doc["methods"])
    rows = {}
    for m in methods:
        per_task = []
        for t in tasks:
            p = doc["tasks"][t]["methods"].get(m, {}).get("pgr")
            per_task.append(
                None
                if p is None
                else {"pgr": p["pgr"], "ci": p["pgr_ci"], "defined": p["defined"], "reason": p["undefined_reason"]}
            )
        s = doc["summary"].get(m, {})
        rows[m] = {
            "tasks": per_task,
            "pooled": s.get("pooled_pgr"),
            "pooled_ci": s.get("pooled_pgr_ci"),
            "mean": s.get("mean_pgr"),
            "mean_ci": s.get("mean_pgr_ci"),
        }
    return {"tasks": tasks, "heldout": heldout_tasks(doc), "methods": methods, "pgr": rows}


def accuracy_data(doc: dict) -> dict:
    tasks = list(doc["tasks"])
    methods = list(doc["summary"]) or list(doc["methods"])
    out = {"tasks": tasks, "methods": methods, "weak": [], "ceiling": [], "w2s": {m: [] for m in methods}}
    for t in tasks:
        entry = doc["tasks"][t]
        out["weak"].append(entry["weak"]["accuracy"])
        out["ceiling"].append(entry["ceiling"]["accuracy"])
        for m in methods:
            row = entry["methods"].get(m)
            out["w2s"][m].append(
                None if row is None else {"accuracy": row["w2s"]["accuracy"], "ci": row["pgr"].get("w2s_ci")}
            )
    return out


def heldout_tasks(doc: dict) -> list[str]:
    """The held-out tasks of a run: those the results' `transfer` record names, or else those tagged
    `heldout` or `*-heldout` (scoring.is_heldout)."""
    from ..scoring import is_heldout

    transfer = doc.get("transfer")
    if isinstance(transfer, dict) and isinstance(transfer.get("heldout"), list):
        named = set(transfer["heldout"])
        return [t for t in doc["tasks"] if t in named]
    return [t for t, e in doc["tasks"].items() if is_heldout(e.get("tags") or ())]


def transfer_data(doc: dict) -> dict | None:
    """Mean PGR over the development and over the held-out tasks, per method, with its interval: the
    results' `transfer` aggregates where they are, else the mean of the per-task PGR (None where a task's
    PGR is undefined: a mean over a subset would flatter the method); and the per-task values."""
    held = heldout_tasks(doc)
    dev = [t for t in doc["tasks"] if t not in held]
    if not held or not dev:
        return None
    recorded = (doc.get("transfer") or {}).get("methods") or {}
    methods = list(doc["summary"]) or list(doc["methods"])
    out: dict[str, Any] = {"development": dev, "heldout": held, "methods": methods, "pgr": {}}
    for m in methods:
        groups = {}
        for group, names in (("development", dev), ("heldout", held)):
            values = [doc["tasks"][t]["methods"].get(m, {}).get("pgr", {}).get("pgr") for t in names]
            aggregate = recorded.get(m, {}).get(group)
            if aggregate is not None:
                mean, ci = aggregate.get("mean_pgr"), aggregate.get("mean_pgr_ci")
            else:
                mean, ci = (None if any(v is None for v in values) else sum(values) / len(values)), None
            groups[group] = {"per_task": values, "mean": mean, "ci": ci}
        out["pgr"][m] = groups
    return out


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: list[float], y: list[float]) -> float | None:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else None


def spearman(x: list[float], y: list[float]) -> float | None:
    return pearson(_ranks(x), _ranks(y))


def generalization_data(doc: dict, n_boot: int = 2000, seed: int = 0) -> dict | None:
    """Held-out against development pooled PGR per method (the results' `transfer` aggregates, with their
    intervals), and the two correlations with a bootstrap interval over methods; None without both kinds of
    task or with fewer than three methods whose two aggregates are defined."""
    moved = doc.get("transfer") or {}
    points = {}
    for m, groups in (moved.get("methods") or {}).items():
        dev, held = groups.get("development") or {}, groups.get("heldout") or {}
        if dev.get("pooled_pgr") is not None and held.get("pooled_pgr") is not None:
            points[m] = {
                "development": dev["pooled_pgr"],
                "development_ci": dev.get("pooled_pgr_ci"),
                "heldout": held["pooled_pgr"],
                "heldout_ci": held.get("pooled_pgr_ci"),
            }
    return correlations(points, n_boot, seed)


def correlations(points: dict[str, dict], n_boot: int = 2000, seed: int = 0) -> dict | None:
    """`points` (method -> development and held-out pooled PGR, with their intervals) and the Pearson and
    Spearman correlations between the two, each with a bootstrap interval over methods; None with fewer than
    three methods. Shared by `w2sbench plot` and the leaderboard site's transfer figure."""
    import random

    if len(points) < 3:
        return None
    names = list(points)
    x, y = [points[m]["development"] for m in names], [points[m]["heldout"] for m in names]
    rng = random.Random(seed)
    out: dict[str, Any] = {"methods": points, "n_boot": n_boot}
    for name, fn in (("pearson", pearson), ("spearman", spearman)):
        draws = []
        for _ in range(n_boot):
            idx = [rng.randrange(len(names)) for _ in names]
            value = fn([x[i] for i in idx], [y[i] for i in idx])
            if value is not None:
                draws.append(value)
        draws.sort()
        ci = [draws[int(0.025 * (len(draws) - 1))], draws[int(0.975 * (len(draws) - 1))]] if draws else None
        out[name] = {"r": fn(x, y), "ci": ci}
    return out


# ---- drawing ------------------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingPackageError("matplotlib", "w2sbench plot", "pip install 'w2sbench[plot]'") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _offsets(n: int, width: float = 0.8) -> tuple[list[float], float]:
    bar = width / max(n, 1)
    return [-width / 2 + bar * (i + 0.5) for i in range(n)], bar


def draw_pgr(data: dict, title: str):
    tasks, methods = data["tasks"], data["methods"]
    held = set(data.get("heldout", []))
    groups = [*(f"{t} (held-out)" if t in held else t for t in tasks), "pooled", "mean"]
    fig = _figure(max(4.5, 1.2 * len(groups) * max(1, len(methods)) ** 0.5 + 2), 3.6)
    ax = fig.add_subplot()
    offsets, bar = _offsets(len(methods))
    for i, m in enumerate(methods):
        color = METHOD_COLORS[i % len(METHOD_COLORS)]
        row = data["pgr"][m]
        points = [*row["tasks"], {"pgr": row.get("pooled"), "ci": row.get("pooled_ci")}]
        points.append({"pgr": row["mean"], "ci": row["mean_ci"]})
        xs, ys, lo, hi, undefined = [], [], [], [], []
        for g, p in enumerate(points):
            x = g + offsets[i]
            if p is None:
                continue
            if p["pgr"] is None:
                undefined.append(x)
                continue
            xs.append(x)
            ys.append(p["pgr"])
            ci = p["ci"] or [p["pgr"], p["pgr"]]
            lo.append(p["pgr"] - ci[0])
            hi.append(ci[1] - p["pgr"])
        ax.bar(xs, ys, bar * 0.9, yerr=[lo, hi], capsize=2, color=color, label=m, gid=f"pgr:{m}")
        if undefined:
            ax.scatter(undefined, [0] * len(undefined), marker="x", color=color, zorder=3, gid=f"undefined:{m}")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(1, color="black", linewidth=0.6, linestyle="--")
    ax.axvline(len(tasks) - 0.5, color="#bbbbbb", linewidth=0.6)
    for g, t in enumerate(tasks):
        if t in held:
            ax.axvspan(g - 0.5, g + 0.5, color="#eeeeee", zorder=0, gid=f"heldout:{t}")
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylabel("PGR (95% interval)")
    ax.set_title(title + ("  (x: PGR undefined)" if _any_undefined(data) else ""), fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _any_undefined(data: dict) -> bool:
    return any(p is not None and p["pgr"] is None for m in data["methods"] for p in data["pgr"][m]["tasks"])


def draw_accuracy(data: dict, title: str):
    tasks, methods = data["tasks"], data["methods"]
    series = ["weak", *methods, "ceiling"]
    fig = _figure(max(4.5, 1.1 * len(tasks) * max(1, len(series)) ** 0.5 + 2), 3.6)
    ax = fig.add_subplot()
    offsets, bar = _offsets(len(series))
    for i, name in enumerate(series):
        if name in ("weak", "ceiling"):
            ys, err, color = data[name], None, COLORS[name]
            xs = [g + offsets[i] for g in range(len(tasks))]
        else:
            pts = [(g, p) for g, p in enumerate(data["w2s"][name]) if p is not None]
            xs = [g + offsets[i] for g, _ in pts]
            ys = [p["accuracy"] for _, p in pts]
            err = [
                [p["accuracy"] - (p["ci"] or [p["accuracy"]] * 2)[0] for _, p in pts],
                [(p["ci"] or [p["accuracy"]] * 2)[1] - p["accuracy"] for _, p in pts],
            ]
            color = METHOD_COLORS[methods.index(name) % len(METHOD_COLORS)]
        label = name if name in ("weak", "ceiling") else f"w2s: {name}"
        ax.bar(xs, [100 * y for y in ys], bar * 0.9, color=color, label=label, gid=f"accuracy:{name}")
        if err is not None:
            ax.errorbar(
                xs,
                [100 * y for y in ys],
                yerr=[[100 * e for e in err[0]], [100 * e for e in err[1]]],
                fmt="none",
                ecolor="black",
                capsize=2,
                linewidth=0.8,
            )
    low = min([*data["weak"], *(p["accuracy"] for m in methods for p in data["w2s"][m] if p)])
    ax.set_ylim(max(0, 100 * low - 10), 100)
    ax.set_xticks(range(len(tasks)), tasks, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def draw_transfer(data: dict, title: str):
    methods = data["methods"]
    fig = _figure(max(4.0, 1.3 * len(methods) + 2), 3.6)
    ax = fig.add_subplot()
    offsets, bar = _offsets(2)
    for j, (group, color) in enumerate((("development", "#1f77b4"), ("heldout", "#ff7f0e"))):
        xs, ys, lo, hi = [], [], [], []
        for i, m in enumerate(methods):
            mean, ci = data["pgr"][m][group]["mean"], data["pgr"][m][group].get("ci")
            if mean is not None:
                xs.append(i + offsets[j])
                ys.append(mean)
                lo.append(mean - ci[0] if ci else 0.0)
                hi.append(ci[1] - mean if ci else 0.0)
            for v in data["pgr"][m][group]["per_task"]:
                if v is not None:
                    ax.scatter([i + offsets[j]], [v], s=10, color="black", zorder=3)
        n = len(data[group])
        label = f"{group.replace('heldout', 'held-out')} ({n} task{'s' if n != 1 else ''})"
        ax.bar(xs, ys, bar * 0.9, yerr=[lo, hi], capsize=2, color=color, label=label, gid=group)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
    ax.set_ylabel("mean PGR, 95% interval (dots: tasks)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def draw_generalization(data: dict, title: str):
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot()
    for i, (m, p) in enumerate(data["methods"].items()):
        color = METHOD_COLORS[i % len(METHOD_COLORS)]
        dci, hci = p["development_ci"] or [p["development"]] * 2, p["heldout_ci"] or [p["heldout"]] * 2
        ax.errorbar(
            [p["development"]],
            [p["heldout"]],
            xerr=[[p["development"] - dci[0]], [dci[1] - p["development"]]],
            yerr=[[p["heldout"] - hci[0]], [hci[1] - p["heldout"]]],
            fmt="o",
            color=color,
            capsize=2,
            label=m,
            gid=f"method:{m}",
        )
    lo = min(min(p["development"], p["heldout"]) for p in data["methods"].values())
    hi = max(max(p["development"], p["heldout"]) for p in data["methods"].values())
    ax.plot([lo, hi], [lo, hi], color="#bbbbbb", linewidth=0.8, linestyle="--")  # held-out = development
    said = []
    for name in ("pearson", "spearman"):
        r, ci = data[name]["r"], data[name]["ci"]
        if r is not None:
            said.append(f"{name} r = {r:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))
    ax.set_xlabel("development pooled PGR (95% interval)")
    ax.set_ylabel("held-out pooled PGR (95% interval)")
    ax.set_title(title + "\n" + "; ".join(said), fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


# ---- the command --------------------------------------------------------------------------------------------
def plot_results(results: str | Path | dict, out_dir: str | Path | None = None, formats=FORMATS) -> Figures:
    """Draw the figures of a results JSON (a path or the document) and, with out_dir, write each as PNG and
    SVG beside a JSON of its plotted data."""
    if isinstance(results, dict):
        doc = results
    else:
        from ..schema_io import read_json, validate

        doc = read_json(results)
        validate(doc, "results", str(results))
    setting = doc["setting"]["name"]
    k, s = doc["seeds"]["baseline"], doc["seeds"]["method"]
    out = Figures()
    out.data["pgr"] = pgr_data(doc)
    out.figures["pgr"] = draw_pgr(out.data["pgr"], f"PGR by task, {setting} (weak/ceiling {k} seeds, methods {s})")
    out.data["accuracy"] = accuracy_data(doc)
    out.figures["accuracy"] = draw_accuracy(
        out.data["accuracy"], f"Weak, weak-to-strong and ceiling accuracy, {setting}"
    )
    transfer = transfer_data(doc)
    if transfer is None:
        out.notes.append(
            "transfer: skipped, these results carry no held-out split (no task tagged 'heldout', no 'transfer')"
        )
    else:
        out.data["transfer"] = transfer
        out.figures["transfer"] = draw_transfer(transfer, f"Development vs held-out tasks, {setting}")
    general = generalization_data(doc)
    if general is not None:
        out.data["generalization"] = general
        out.figures["generalization"] = draw_generalization(
            general, f"Does development predict held-out? {setting}, {len(general['methods'])} methods"
        )
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, fig in out.figures.items():
            for fmt in formats:
                path = folder / f"{name}.{fmt}"
                fig.savefig(path, format=fmt, dpi=150, metadata=_metadata(fmt))
                out.files.append(path)
            out.files.append(write_json(out.data[name], folder / f"{name}.json"))
    return out


def _metadata(fmt: str) -> dict:
    """No creation date in the files: the same results give the same bytes."""
    return {"Date": None} if fmt == "svg" else {}


def default_dir(results_path: Path) -> Path:
    return results_path.with_name(results_path.stem + ".plots")
