"""Sweeps: methods x hyperparameter grid x seeds x tasks, as one graph of units on any executor.

A sweep file (YAML):

    setting: tiny                       # name or path (default: tiny)
    tasks: rotten_tomatoes,vader_nyt    # names, tags or paths, comma-separated or a list (default: default)
    limit: 100,200,100                  # optional split sizes, as --limit
    baseline_seeds: 2                   # optional, as --baseline-seeds
    seeds: 3                            # optional, method seeds, as --seeds
    backend: auto                       # optional, as --backend
    n_boot: 2000                        # optional
    methods:                            # method -> {hyperparameter: [values]}; nothing: its defaults only
      vanilla:
      logconf: {aux_coef: [0.25, 0.5, 1.0]}
      my_method.py:Mine: {temperature: [1, 2]}
    output: results/sweep-logconf       # optional folder (default: results/sweep_<file name>)

Each configuration is a method spec `name:key=value,...` (w2sbench/method_specs.py). All configurations
run as one graph: the shared stages (features, weak, ceiling) are units of their own, run once and reused
by every configuration, and every unit is cached, so an interrupted sweep resumes by running the same
command again. The sweep writes one results JSON per configuration and a summary ranked by mean PGR with
its 95% interval (summary.md, summary.json, and printed); configurations whose PGR is undefined come last,
by mean w2s accuracy. Each results JSON is the one `w2sbench eval` writes for that configuration; its
`cache` and `timings_s` count the whole sweep.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import method_specs
from .errors import ConfigError, W2SError
from .units import dedupe
from .validation import read_yaml

log = logging.getLogger("w2sbench")

KEYS = ("setting", "tasks", "limit", "baseline_seeds", "seeds", "backend", "n_boot", "methods", "output")


@dataclass
class Sweep:
    path: Path
    setting: str
    tasks: str
    limit: str | None
    baseline_seeds: int | None
    seeds: int | None
    backend: str
    n_boot: int
    configurations: list[str]  # method specs, in the file's order
    output: Path


def load_sweep(path: Path) -> Sweep:
    """Read and check a sweep file; every problem names the file and the field."""
    raw = read_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(where, "", "a sweep file is a mapping (setting, tasks, methods, ...)")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(where, unknown[0], f"unknown field; a sweep file has: {', '.join(KEYS)}")
    methods = raw.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise ConfigError(where, "methods", "give a mapping of method -> {hyperparameter: [values]}")
    configurations: list[str] = []
    for name, grid in methods.items():
        if grid is None:
            grid = {}
        if not isinstance(grid, dict):
            raise ConfigError(where, f"methods.{name}", "expected a mapping of hyperparameter -> list of values")
        if method_specs.split(str(name))[1]:
            raise ConfigError(where, f"methods.{name}", "give hyperparameters in the grid, not in the name")
        keys = sorted(grid)
        axes = []
        for key in keys:
            values = grid[key] if isinstance(grid[key], list) else [grid[key]]
            if not values:
                raise ConfigError(where, f"methods.{name}.{key}", "an empty list of values")
            axes.append(values)
        for combo in itertools.product(*axes):
            spec = method_specs.join(str(name), dict(zip(keys, combo)))
            if spec not in configurations:
                configurations.append(spec)
    tasks = raw.get("tasks", "default")
    if isinstance(tasks, list):
        tasks = ",".join(str(t) for t in tasks)
    limit = raw.get("limit")
    if isinstance(limit, list):
        limit = ",".join(str(x) for x in limit)
    for field in ("baseline_seeds", "seeds", "n_boot"):
        value = raw.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(where, field, f"expected a positive integer, got {value!r}")
    output = Path(raw["output"]) if raw.get("output") else Path("results") / f"sweep_{Path(path).stem}"
    return Sweep(
        path=Path(path),
        setting=str(raw.get("setting", "tiny")),
        tasks=str(tasks),
        limit=str(limit) if limit is not None else None,
        baseline_seeds=raw.get("baseline_seeds"),
        seeds=raw.get("seeds"),
        backend=str(raw.get("backend", "auto")),
        n_boot=int(raw.get("n_boot", 2000)),
        configurations=configurations,
        output=output,
    )


def slug(spec: str, name: str) -> str:
    """A file name for a configuration: the method's name and its hyperparameters."""
    params = method_specs.split(spec)[1]
    text = name + "".join(f"_{k}-{method_specs.join('x', {k: v}).split('=', 1)[1]}" for k, v in sorted(params.items()))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def run_sweep(
    sweep: Sweep,
    executor: Any,
    output: Path | None = None,
    unsealed: bool = False,
    method_timeout_s: float | None = None,
) -> dict:
    """Run every configuration; write one results JSON each and the summary; return the summary."""
    from .cli import _parse_limit
    from .pipeline import Pipeline, RunOptions
    from .results import build_results, write_results
    from .settings import load_setting
    from .tasks import resolve_tasks

    output = output or sweep.output
    setting = load_setting(sweep.setting)
    tasks = resolve_tasks(sweep.tasks)
    classes = []
    for spec in sweep.configurations:
        try:
            classes.append(method_specs.load(spec))
        except W2SError as e:
            raise W2SError(f"{sweep.path}: methods: {e}") from None
    options = RunOptions(
        backend=sweep.backend,
        baseline_seeds=sweep.baseline_seeds,
        method_seeds=sweep.seeds,
        sizes=_parse_limit(sweep.limit),
        n_boot=sweep.n_boot,
        unsealed=unsealed,
        method_timeout_s=method_timeout_s,
    )
    pipeline = Pipeline(setting, tasks, options)
    started = time.perf_counter()
    specs = pipeline.prepare(classes)
    units = dedupe(pipeline.plan(list(specs)))
    log.info(
        f"sweep {sweep.path.name}: {len(classes)} configuration(s) x {len(tasks)} task(s) x "
        f"{pipeline.method_seeds} seed(s): {len(units)} units"
    )
    values = executor.run(pipeline, units)
    pipeline.timings["total"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec, cls in zip(sweep.configurations, classes):
        doc = build_results(pipeline.record([cls], values))
        path = output / f"{slug(spec, cls.name)}.json"
        write_results(doc, path)
        summary = doc["summary"][cls.name]
        rows.append(
            {
                "configuration": spec,
                "method": cls.name,
                "params": method_specs.params_of(cls),
                "mean_pgr": summary["mean_pgr"],
                "mean_pgr_ci": summary["mean_pgr_ci"],
                "tasks_defined": summary["tasks_defined"],
                "tasks": summary["tasks"],
                "mean_w2s_accuracy": summary["mean_w2s_accuracy"],
                "flagged_tasks": summary["flagged_tasks"],
                "results": str(path),
            }
        )
    # by mean PGR; configurations whose PGR is undefined (no clear ceiling-weak gap) after, by w2s accuracy
    rows.sort(key=lambda r: (r["mean_pgr"] is None, -(r["mean_pgr"] or 0.0), -r["mean_w2s_accuracy"]))
    result = {
        "sweep": str(sweep.path),
        "setting": {"name": setting.name, "hash": setting.hash},
        "tasks": [t.name for t in tasks],
        "seeds": {"baseline": pipeline.baseline_seeds, "method": pipeline.method_seeds},
        "executor": getattr(executor, "name", type(executor).__name__),
        "units": len(units),
        "cache": {"hits": dict(pipeline.store.hits), "misses": dict(pipeline.store.misses)},
        "ranking": rows,
    }
    (output / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    (output / "summary.md").write_text(summary_table(result) + "\n")
    return result


def summary_table(result: dict) -> str:
    """Configurations ranked by mean PGR over the tasks, with the 95% interval."""
    lines = [
        f"sweep {result['sweep']}: setting {result['setting']['name']}, tasks {', '.join(result['tasks'])}, "
        f"{result['seeds']['method']} method seed(s), {result['seeds']['baseline']} baseline seed(s)",
        "",
        "| rank | configuration | mean PGR | 95% CI | tasks defined | mean w2s acc % | flagged |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(result["ranking"], 1):
        pgr = "undef." if row["mean_pgr"] is None else f"{row['mean_pgr']:+.3f}"
        ci = row["mean_pgr_ci"]
        interval = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-"
        lines.append(
            f"| {i} | {row['configuration']} | {pgr} | {interval} | {row['tasks_defined']}/{row['tasks']} | "
            f"{100 * row['mean_w2s_accuracy']:.1f} | {', '.join(row['flagged_tasks']) or '-'} |"
        )
    misses = sum(result["cache"]["misses"].values())
    hits = sum(result["cache"]["hits"].values())
    lines += ["", f"{result['units']} units; cache: {hits} hits, {misses} computed ({result['executor']} executor)"]
    return "\n".join(lines)
