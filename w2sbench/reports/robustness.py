"""Is an order of methods a property of the methods or of this one suite? The order by pooled PGR, recomputed
under changes that should not matter, against the reference order.

Why: a ranking is only worth reading if it survives dropping one task, other seeds, or other draws of the
tasks; the study behind this benchmark was questioned on exactly this point. From the per-example
correctness that results and submissions already hold (weak, ceiling and each method, per seed and task),
with no model run:

- leave one task out: the order over the other tasks, once per task;
- leave one family out: the order over the tasks of the other families, once per family, where the suite
  says which family each task is from (the suite YAML's `families:`); a suite of tasks without families,
  or of one family, has no such change. Suite v2's held-out part is three whole families, so this asks
  whether an order is one family's (sentiment is four of its ten tasks) and not the tasks';
- tasks resampled: the suite's tasks drawn with replacement (a suite of the same size, other mix);
- seeds resampled: weak, ceiling and method seeds each drawn with replacement, the method draw shared by
  every method (as the paired intervals draw them).

Two numbers per change. Kendall's tau-b between the reference pooled PGRs and the perturbed ones (tau-b,
not tau-a or Spearman: equal scores are ties, and a rank correlation is read the same way for any number
of methods), with the middle 95% of its values (for leave-one-out, the smallest and largest of the T
values; for leave-one-family-out, of the F values; each left-out task's or family's own tau-b is in
`by_left_out`). And per method the probability that it stays in its rank group: the positions its group holds
in the reference order (the leaderboard's ranks, where ranks are given: entries with one rank form a
group; else each method alone), and it stays when its position in the perturbed order is among them.
A method that drops out of its group when one task goes is a property of that task, not of the method.

Changes that need new runs of every method (the strong recipe perturbed within the setting's declared
range, `w2sbench eval --perturb-recipe lr=0.5`; a second model pair) come in as results of their own, one
Suite per change (`robustness(..., others=...)`, `w2sbench robustness REF... --perturbed LABEL=FILE,...`).
Their tau-b is the reference order against the perturbed run's order, with the middle 95% over test
examples resampled in the perturbed run (the same draw for weak, ceiling and every method of a task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import W2SError
from ..scoring import pooled_pgr

PERTURBATIONS = ("leave_one_task_out", "leave_one_family_out", "tasks_resampled", "seeds_resampled")
LEAVE_OUTS = ("leave_one_task_out", "leave_one_family_out")
CONFIDENCE = 0.95


@dataclass
class Suite:
    """Per-example correctness, [seeds, n] per task, of the shared weak and ceiling runs and of each method;
    `families`: task -> its family (empty: the tasks' families are not known)."""

    weak: dict[str, np.ndarray]
    ceiling: dict[str, np.ndarray]
    methods: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return sorted(self.weak)

    def family_tasks(self) -> dict[str, list[str]]:
        """family -> its tasks (sorted); {} without families. Every task must have one."""
        if not self.families:
            return {}
        missing = [t for t in self.tasks if t not in self.families]
        if missing:
            raise W2SError(f"task {missing[0]!r} has no family (the suite names the families of {len(self.families)})")
        out: dict[str, list[str]] = {}
        for t in self.tasks:
            out.setdefault(self.families[t], []).append(t)
        return dict(sorted(out.items()))

    def pooled(
        self,
        method: str,
        tasks: list[str],
        draws: dict[str, tuple] | None = None,
        examples: dict[str, np.ndarray] | None = None,
    ) -> float | None:
        """sum(w2s - weak) / sum(ceiling - weak) over `tasks` (repeats count again), seeds per `draws`, test
        examples per `examples` (indices per task)."""
        weak, ceiling, w2s = [], [], []
        for t in tasks:
            w, c, m = self.weak[t], self.ceiling[t], self.methods[method][t]
            if draws is not None:
                dw, dc, dm = draws[t]
                w, c, m = w[dw], c[dc], m[dm]
            if examples is not None:
                w, c, m = w[:, examples[t]], c[:, examples[t]], m[:, examples[t]]
            weak.append(w.mean())
            ceiling.append(c.mean())
            w2s.append(m.mean())
        return pooled_pgr(weak, ceiling, w2s)[0]


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)), n0 = n(n-1)/2.
    1 for the same order, -1 for the reverse; nan when one side is all ties."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = len(i)
    tx, ty = int(np.sum(dx == 0)), int(np.sum(dy == 0))
    denom = np.sqrt(float(n0 - tx) * float(n0 - ty))
    return float(np.sum(dx * dy) / denom) if denom > 0 else float("nan")


def positions(scores: dict[str, float]) -> dict[str, int]:
    """1-based position of each method in the order by score, highest first (ties by name)."""
    order = sorted(scores, key=lambda m: (-scores[m], m))
    return {m: i + 1 for i, m in enumerate(order)}


def group_spans(scores: dict[str, float], ranks: dict[str, int] | None) -> dict[str, tuple[int, int]]:
    """The positions each method's rank group holds in the reference order (a method alone without ranks)."""
    if ranks is None:
        return {m: (p, p) for m, p in positions(scores).items()}
    order = sorted(scores, key=lambda m: (ranks[m], -scores[m], m))
    where = {m: i + 1 for i, m in enumerate(order)}
    spans: dict[str, tuple[int, int]] = {}
    for m in scores:
        same = [where[o] for o in scores if ranks[o] == ranks[m]]
        spans[m] = (min(same), max(same))
    return spans


def _perturbed(
    suite: Suite, kind: str, n_resamples: int, rng: np.random.Generator
) -> tuple[list[dict[str, float]], list[str]]:
    """The methods' pooled PGRs under each draw of one kind of change (draws where one is undefined dropped),
    and for a leave-out what each kept draw left out (a task or a family; else [])."""
    names, tasks = sorted(suite.methods), suite.tasks
    outs: list[dict[str, float]] = []
    left: list[str] = []
    labels: list[str] = []
    if kind == "leave_one_task_out":
        plans: list[tuple[list[str], Any]] = [([t for t in tasks if t != out], None) for out in tasks]
        labels = list(tasks)
    elif kind == "leave_one_family_out":
        families = suite.family_tasks()
        if len(families) < 2:  # no families known, or one: nothing to leave out
            return [], []
        plans = [([t for t in tasks if t not in members], None) for members in families.values()]
        labels = list(families)
    elif kind == "tasks_resampled":
        plans = [(list(rng.choice(tasks, size=len(tasks), replace=True)), None) for _ in range(n_resamples)]
    elif kind == "seeds_resampled":
        seeds = {}
        for t in tasks:
            km = {len(suite.methods[m][t]) for m in names}
            if len(km) != 1:
                raise W2SError(f"task {t!r}: the methods have different numbers of seeds ({sorted(km)})")
            seeds[t] = (len(suite.weak[t]), len(suite.ceiling[t]), km.pop())
        plans = [
            (tasks, {t: tuple(rng.integers(0, k, k) for k in seeds[t]) for t in tasks}) for _ in range(n_resamples)
        ]
    else:
        raise ValueError(f"unknown perturbation {kind!r}")
    for i, (ts, draws) in enumerate(plans):
        scores = {m: suite.pooled(m, ts, draws) for m in names}
        if all(v is not None for v in scores.values()):
            outs.append(scores)  # type: ignore[arg-type]
            if labels:
                left.append(labels[i])
    return outs, left


def _other_run(suite: Suite, other: Suite, names: list[str], label: str, n_resamples: int, rng) -> tuple:
    """A perturbed run's pooled PGRs, and their draws over its test examples resampled."""
    missing = [m for m in names if m not in other.methods]
    if missing:
        raise W2SError(f"perturbed run {label!r}: method {missing[0]!r} of the reference is not in it")
    if other.tasks != suite.tasks:
        raise W2SError(f"perturbed run {label!r}: tasks {other.tasks}, the reference has {suite.tasks}")
    point = {m: other.pooled(m, other.tasks) for m in names}
    if any(v is None for v in point.values()):
        raise W2SError(f"perturbed run {label!r}: its summed ceiling-weak gap is not positive")
    draws = []
    for _ in range(n_resamples):
        examples = {t: rng.integers(0, other.weak[t].shape[1], other.weak[t].shape[1]) for t in other.tasks}
        scores = {m: other.pooled(m, other.tasks, examples=examples) for m in names}
        if all(v is not None for v in scores.values()):
            draws.append(scores)
    return point, draws


def _reference(suite: Suite) -> dict[str, float]:
    """Each method's pooled PGR over all of the suite's tasks: the order every change is compared with."""
    reference = {m: suite.pooled(m, suite.tasks) for m in sorted(suite.methods)}
    if any(v is None for v in reference.values()):
        raise W2SError("the suite's summed ceiling-weak gap is not positive: pooled PGR is undefined")
    return {m: float(v) for m, v in reference.items()}  # type: ignore[arg-type]


def _other_axis(
    suite: Suite, other: Suite, ref: dict[str, float], spans: dict, label: str, n_resamples: int, rng
) -> tuple[dict[str, Any], dict[str, float]]:
    """tau-b between the reference order and a run under a change, with its interval over the run's test
    examples resampled, and each method's probability of staying in its rank group there."""
    names = sorted(ref)
    x = np.array([ref[m] for m in names])
    point, draws = _other_run(suite, other, names, label, n_resamples, rng)
    taus = np.array([kendall_tau_b(x, np.array([d[m] for m in names])) for d in draws])
    tau = kendall_tau_b(x, np.array([point[m] for m in names]))
    axis = {
        "tau_b": None if np.isnan(tau) else float(tau),
        "tau_b_interval": None
        if np.all(np.isnan(taus))
        else [float(np.nanpercentile(taus, 2.5)), float(np.nanpercentile(taus, 97.5))],
        "draws": len(draws),
        "run": True,
    }
    stays = {m: float(np.mean([spans[m][0] <= positions(d)[m] <= spans[m][1] for d in draws])) for m in names}
    return axis, stays


def compare_runs(
    suite: Suite, other: Suite, label: str, ranks: dict[str, int] | None = None, n_resamples: int = 500, seed: int = 0
) -> dict[str, Any]:
    """The order of the methods both suites hold, in `suite` against `other` (another model pair on the same
    tasks, say): {"perturbation": tau-b with its interval, "methods": each one's P(stays in its rank group)}.
    `ranks` (of `suite`) may name more methods than the two share; groups are drawn among the shared ones."""
    names = sorted(set(suite.methods) & set(other.methods))
    if len(names) < 2:
        raise W2SError(f"{label}: the two runs share fewer than two methods ({names})")
    shared = Suite(suite.weak, suite.ceiling, {m: suite.methods[m] for m in names})
    ref = _reference(shared)
    spans = group_spans(ref, None if ranks is None else {m: ranks[m] for m in names})
    axis, stays = _other_axis(shared, other, ref, spans, label, n_resamples, np.random.default_rng(seed))
    return {"perturbation": axis, "methods": stays}


def robustness(
    suite: Suite,
    ranks: dict[str, int] | None = None,
    n_resamples: int = 500,
    seed: int = 0,
    others: dict[str, Suite] | None = None,
) -> dict[str, Any]:
    """The reference order and, per perturbation, tau-b with its interval and each method's probability of
    staying in its rank group. `others`: label -> the Suite of a run under a change that needed new runs
    (a perturbed recipe, another model pair), with at least the reference's methods and tasks."""
    names = sorted(suite.methods)
    if len(names) < 2:
        raise W2SError(f"robustness compares methods: give at least two (got {names})")
    ref = _reference(suite)
    spans = group_spans(ref, ranks)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {
        "reference": {"pooled_pgr": ref, "position": positions(ref), "group": {m: list(spans[m]) for m in names}},
        "perturbations": {},
        "methods": {m: {} for m in names},
        "n_resamples": n_resamples,
        "seed": seed,
    }
    x = np.array([ref[m] for m in names])
    for kind in PERTURBATIONS:
        draws, left = _perturbed(suite, kind, n_resamples, rng)
        if not draws:
            continue
        taus = np.array([kendall_tau_b(x, np.array([d[m] for m in names])) for d in draws])
        if np.all(np.isnan(taus)):  # every reference score tied: no order to compare with
            out["perturbations"][kind] = {"tau_b": None, "tau_b_interval": None, "draws": len(draws)}
        else:
            lo, hi = (
                (float(np.nanmin(taus)), float(np.nanmax(taus)))
                if kind in LEAVE_OUTS
                else (float(np.nanpercentile(taus, 2.5)), float(np.nanpercentile(taus, 97.5)))
            )
            out["perturbations"][kind] = {
                "tau_b": float(np.nanmedian(taus)),
                "tau_b_interval": [lo, hi],
                "draws": len(draws),
            }
        if left:  # which task or family each draw left out, and the order's tau-b without it
            out["perturbations"][kind]["by_left_out"] = {
                name: None if np.isnan(tau) else float(tau) for name, tau in zip(left, taus)
            }
        if kind == "leave_one_family_out":
            out["perturbations"][kind]["families"] = suite.family_tasks()
        for m in names:
            stays = [spans[m][0] <= positions(d)[m] <= spans[m][1] for d in draws]
            out["methods"][m][kind] = float(np.mean(stays))
    for label, other in (others or {}).items():
        out["perturbations"][label], stays = _other_axis(suite, other, ref, spans, label, n_resamples, rng)
        for m in names:
            out["methods"][m][label] = stays[m]
    for m in names:
        values = out["methods"][m].values()
        out["methods"][m]["least"] = min(values) if values else None
    return out


def suite_from_results(docs: list[tuple[str, dict]]) -> Suite:
    """The Suite of one or more results JSONs of one setting (their weak and ceiling runs must be the same)."""
    from ..scoring import decode_correct

    suite: Suite | None = None
    setting = None
    for where, doc in docs:
        if setting is None:
            setting = doc["setting"]["hash"]
        elif doc["setting"]["hash"] != setting:
            raise W2SError(f"{where}: field 'setting.hash': another setting than the first file's; compare one setting")
        weak, ceiling, methods = {}, {}, {}
        for t, entry in doc["tasks"].items():
            n = entry["n"]["test"]
            weak[t] = decode_correct(entry["weak"]["correct"], n)
            ceiling[t] = decode_correct(entry["ceiling"]["correct"], n)
            for m, row in entry["methods"].items():
                methods.setdefault(m, {})[t] = decode_correct(row["w2s"]["correct"], n)
        if suite is None:
            suite = Suite(weak, ceiling)
        elif sorted(weak) != suite.tasks or any(
            not np.array_equal(weak[t], suite.weak[t]) or not np.array_equal(ceiling[t], suite.ceiling[t]) for t in weak
        ):
            raise W2SError(f"{where}: field 'tasks': other tasks or other weak/ceiling runs than the first file's")
        for m, per_task in methods.items():
            if m in suite.methods:
                raise W2SError(f"{where}: field 'methods.{m}': method {m!r} is in two files")
            suite.methods[m] = per_task
    if suite is None:
        raise W2SError("robustness: give at least one results JSON")
    return suite


def leaderboard_ranks(board: dict, where: str, docs: list[tuple[str, dict]], methods: list[str]) -> dict[str, int]:
    """The rank of each of `methods` on a leaderboard.json, in the setting the results were run in."""
    names = {doc.get("setting", {}).get("name") for _, doc in docs}
    if len(names) != 1:
        raise W2SError(f"the results come from different settings ({sorted(map(str, names))})")
    setting = names.pop()
    entries = (board.get("settings") or {}).get(setting, {}).get("entries")
    if entries is None:
        raise W2SError(f"{where}: field 'settings.{setting}.entries': the leaderboard has no such setting")
    ranks = {e["method"]: e["rank"] for e in entries if e.get("rank") is not None}
    missing = [m for m in methods if m not in ranks]
    if missing:
        raise W2SError(f"{where}: method {missing[0]!r} has no rank in setting {setting!r}")
    return {m: ranks[m] for m in methods}


def table(report: dict[str, Any]) -> str:
    """The report as text: tau-b per perturbation, then per method its probability of staying in its group."""
    lines = [
        "| perturbation | Kendall tau-b | 95% of draws | draws |",
        "| --- | --- | --- | --- |",
    ]
    for kind, p in report["perturbations"].items():
        if p["tau_b"] is None or p["tau_b_interval"] is None:
            lines.append(f"| {kind} | - (every reference score tied) | - | {p['draws']} |")
            continue
        lo, hi = p["tau_b_interval"]
        # a resampling reports the median over its draws; a run of its own, its order's tau-b
        said = "its run" if p.get("run") else "median"
        lines.append(f"| {kind} | {p['tau_b']:+.2f} ({said}) | [{lo:+.2f}, {hi:+.2f}] | {p['draws']} |")
    for kind, p in report["perturbations"].items():
        if p.get("by_left_out"):
            sizes = {f: len(ts) for f, ts in (p.get("families") or {}).items()}
            said = ", ".join(
                f"{name}{f' ({sizes[name]} tasks)' if sizes.get(name, 1) > 1 else ''} "
                + ("-" if tau is None else f"{tau:+.2f}")
                for name, tau in p["by_left_out"].items()
            )
            lines.append(f"\n{kind}, tau-b without each: {said}")
    kinds = list(report["perturbations"])
    lines += ["", "| method | pooled PGR | position | group | " + " | ".join(f"P(stays): {k}" for k in kinds) + " |"]
    lines.append("| --- " * (4 + len(kinds)) + "|")
    ref = report["reference"]
    for m in sorted(ref["position"], key=ref["position"].get):
        lo, hi = ref["group"][m]
        cells = " | ".join(f"{report['methods'][m][k]:.2f}" for k in kinds)
        lines.append(f"| {m} | {ref['pooled_pgr'][m]:+.3f} | {ref['position'][m]} | {lo}-{hi} | {cells} |")
    return "\n".join(lines)
