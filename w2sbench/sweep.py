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

`methods` may also be a list of method texts as --method takes them, `[vanilla, "logconf[aux_coef=0.25|0.5]"]`
(w2sbench/methods/params.py), and a method's name in the mapping may carry fixed values in brackets,
`logconf[warmup_frac=0.1]: {aux_coef: [0.25, 0.5]}`. Each configuration is one method text without `|`,
`logconf[aux_coef=0.25,warmup_frac=0.1]`; its name in the results is the method's, with the values that differ
from its defaults (`logconf[aux_coef=0.25]`; at every default, `logconf`). All configurations run as one graph:
the shared stages (features, weak, ceiling) are units of their own, run once and reused by every
configuration, and every unit is cached, so an interrupted sweep resumes by running the same command again.
The sweep writes one results JSON per configuration and a summary ranked by mean PGR with its 95% interval
(summary.md, summary.json, and printed); configurations whose PGR is undefined come last, by mean w2s
accuracy. Each results JSON is the one `w2sbench eval` writes for that configuration; its `cache` and
`timings_s` count the whole sweep.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, W2SError
from .methods.params import format_value, split_spec
from .validation import read_yaml

log = logging.getLogger("w2sbench")

KEYS = ("setting", "tasks", "limit", "baseline_seeds", "seeds", "backend", "n_boot", "methods", "output")
RESERVED_CHARS = ",|[]"  # they separate the parts of a method text


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
    configurations: list[str]  # method texts, one value per hyperparameter, in the file's order
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
    if isinstance(methods, list) and methods and all(isinstance(m, str) for m in methods):
        methods = {m: None for m in methods}
    if not isinstance(methods, dict) or not methods:
        raise ConfigError(
            where, "methods", "give a mapping of method -> {hyperparameter: [values]}, or a list of method names"
        )
    configurations: list[str] = []
    for name, grid in methods.items():
        field = f"methods.{name}"
        if grid is None:
            grid = {}
        if not isinstance(grid, dict):
            raise ConfigError(where, field, "expected a mapping of hyperparameter -> list of values")
        try:
            base, axes = split_spec(str(name))
        except W2SError as e:
            raise ConfigError(where, field, str(e)) from None
        for key, raw_values in grid.items():
            values = raw_values if isinstance(raw_values, list) else [raw_values]
            if key in axes:
                raise ConfigError(where, f"{field}.{key}", "given both in the method's brackets and in its grid")
            if not values:
                raise ConfigError(where, f"{field}.{key}", "an empty list of values")
            axes[str(key)] = [_text(v, where, f"{field}.{key}") for v in values]
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            spec = f"{base}[{','.join(f'{k}={v}' for k, v in zip(keys, combo))}]" if keys else base
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


def _text(value: Any, where: str, field: str) -> str:
    """A grid value as the method text writes it (the method's declared type reads it back)."""
    if not isinstance(value, (bool, int, float, str)):
        raise ConfigError(where, field, f"a value is a number, a boolean or a text, not {value!r}")
    text = format_value(value)
    if any(ch in text for ch in RESERVED_CHARS) or not text.strip():
        raise ConfigError(where, field, f"value {text!r}: empty, or holds one of {' '.join(RESERVED_CHARS)}")
    return text


def slug(spec: str, name: str) -> str:
    """A file name for a configuration: the method's name and the hyperparameter values of its text."""
    values = split_spec(spec)[1]
    text = name + "".join(f"_{k}-{'|'.join(v)}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def run_sweep(
    sweep: Sweep,
    executor: Any,
    output: Path | None = None,
    unsealed: bool = False,
    method_timeout_s: float | None = None,
    method_quota: str | None = None,
) -> dict:
    """Run every configuration; write one results JSON each and the summary; return the summary."""
    from .api import parse_limit
    from .engine.executors import execute
    from .engine.pipeline import Pipeline, RunOptions
    from .isolation.resolve import resolve_methods
    from .reports.results import build_results, write_results
    from .settings import load_setting
    from .tasks import resolve_tasks

    output = output or sweep.output
    setting = load_setting(sweep.setting)
    tasks = resolve_tasks(sweep.tasks)
    methods = []
    by_name: dict[str, str] = {}
    for spec in sweep.configurations:
        try:
            (method,) = resolve_methods(spec, sealed=not unsealed)
        except W2SError as e:
            raise W2SError(f"{sweep.path}: methods: {e}") from None
        if method.run_name in by_name:
            raise W2SError(
                f"{sweep.path}: methods: {by_name[method.run_name]} and {spec} are one configuration "
                f"({method.run_name})"
            )
        by_name[method.run_name] = spec
        methods.append(method)
    options = RunOptions(
        backend=sweep.backend,
        baseline_seeds=sweep.baseline_seeds,
        method_seeds=sweep.seeds,
        sizes=parse_limit(sweep.limit, "limit"),
        n_boot=sweep.n_boot,
        unsealed=unsealed,
        method_timeout_s=method_timeout_s,
        method_quota=method_quota,
    )
    pipeline = Pipeline(setting, tasks, options)
    log.info(
        f"sweep {sweep.path.name}: {len(methods)} configuration(s) x {len(tasks)} task(s) x "
        f"{pipeline.method_seeds} seed(s)"
    )
    methods, units, values = execute(pipeline, methods, executor)
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    files: set[str] = set()
    failed = {
        spec: pipeline.ledger.failed[m.run_name]
        for spec, m in zip(sweep.configurations, methods)
        if m.run_name in pipeline.ledger.failed
    }
    for spec, method in zip(sweep.configurations, methods):
        if spec in failed:
            continue
        doc = build_results(pipeline.record([method], values))
        stem = slug(spec, method.name)
        while stem in files:  # two texts that differ only in characters a file name cannot hold
            stem += "_"
        files.add(stem)
        path = output / f"{stem}.json"
        write_results(doc, path)
        summary = doc["summary"][method.run_name]
        rows.append(
            {
                "configuration": spec,
                "method": method.run_name,
                "params": method.config(),
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
    if failed:
        result["failed"] = failed  # configurations that stopped, each with its one line
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
    for spec, line in result.get("failed", {}).items():
        lines.append(f"| - | {spec} | failed: {line} | | | | |")
    misses = sum(result["cache"]["misses"].values())
    hits = sum(result["cache"]["hits"].values())
    lines += ["", f"{result['units']} units; cache: {hits} hits, {misses} computed ({result['executor']} executor)"]
    return "\n".join(lines)
