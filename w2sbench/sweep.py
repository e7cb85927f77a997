"""Sweeps: methods x hyperparameter grid x seeds x tasks, as one graph of units on any executor.

A sweep file (YAML): `methods` (the grid), `output`, and any knob of a run under the name it has everywhere
(evaluate()'s keywords, a campaign file, RunSpec: w2sbench/engine/spec.py):

    setting: tiny                       # name or path (default: tiny)
    tasks: rotten_tomatoes,vader_nyt    # names, tags or paths, comma-separated or a list (default: default)
    include_path: [my_tasks]            # optional folders of task YAMLs (relative to the file)
    limit: 100,200,100                  # optional split sizes, as --limit
    baseline_seeds: 2                   # optional, as --baseline-seeds
    method_seeds: 3                     # optional, as --method-seeds (`seeds`: its older name)
    backend: auto                       # optional, as --backend; tensor_parallel_size, allow_cpu likewise
    n_boot: 2000                        # optional
    method_timeout_s: 600               # optional, per method seed; method_quota, unsealed likewise
    executor: inprocess                 # optional, as --executor; ray_address, cache likewise
    methods:                            # method -> {hyperparameter: [values]}; nothing: its defaults only
      vanilla:
      logconf: {aux_coef: [0.25, 0.5, 1.0]}
      my_method.py:Mine: {temperature: [1, 2]}
    output: results/sweep-logconf       # optional folder (default: results/sweep_<file name>)

The command line's options (--executor, --method-timeout-s, ...) override the file's.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .engine.spec import ALIASES, KNOBS, RunSpec
from .errors import ConfigError, W2SError
from .methods.params import format_value, split_spec
from .schema_io import read_yaml

log = logging.getLogger("w2sbench")

# the run's knobs a sweep file may set (the grid sets the methods; the service's seams are not a file's)
FILE_KNOBS = tuple(k for k in KNOBS if k not in ("methods", "recompute", "test_parts", "method_deadline"))
KEYS = (*FILE_KNOBS, "methods", "output")
RESERVED_CHARS = ",|[]"  # they separate the parts of a method text


@dataclass
class Sweep:
    path: Path
    spec: RunSpec  # the run every configuration shares (its methods: the configurations, set by run_sweep)
    configurations: list[str]  # method texts, one value per hyperparameter, in the file's order
    output: Path


def load_sweep(path: Path) -> Sweep:
    """Read and check a sweep file; every problem names the file and the field."""
    raw = read_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(where, "", "a sweep file is a mapping (setting, tasks, methods, ...)")
    unknown = sorted(k for k in raw if ALIASES.get(k, k) not in KEYS)
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
    knobs = {k: v for k, v in raw.items() if k not in ("methods", "output")}
    include = knobs.pop("include_path", knobs.pop("include", None))
    if include is not None:
        items = [include] if isinstance(include, str) else include
        if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
            raise ConfigError(where, "include_path", "expected a folder or a list of folders")
        knobs["include_path"] = [str(Path(path).resolve().parent / p) for p in items]
    if isinstance(knobs.get("tasks"), list):
        knobs["tasks"] = ",".join(str(t) for t in knobs["tasks"])
    if isinstance(knobs.get("limit"), list):
        knobs["limit"] = ",".join(str(x) for x in knobs["limit"])
    output = Path(raw["output"]) if raw.get("output") else Path("results") / f"sweep_{Path(path).stem}"
    return Sweep(path=Path(path), spec=RunSpec.build(where, knobs), configurations=configurations, output=output)


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


def run_sweep(sweep: Sweep, output: Path | None = None, **overrides: Any) -> dict:
    """Run every configuration; write one results JSON each and the summary; return the summary. `overrides`:
    knobs of the run over the file's (the command line's options; None: the file's)."""
    from .engine.run import execute, setting_of, tasks_of
    from .isolation.resolve import resolve_methods
    from .reports.results import build_results, write_results

    output = output or sweep.output
    spec = sweep.spec.with_knobs("the command line (w2sbench sweep)", **overrides) if overrides else sweep.spec
    methods = []
    by_name: dict[str, str] = {}
    for text in sweep.configurations:
        try:
            (method,) = resolve_methods(text, sealed=not spec.options.unsealed)
        except W2SError as e:
            raise W2SError(f"{sweep.path}: methods: {e}") from None
        if method.run_name in by_name:
            raise W2SError(
                f"{sweep.path}: methods: {by_name[method.run_name]} and {text} are one configuration "
                f"({method.run_name})"
            )
        by_name[method.run_name] = text
        methods.append(method)
    spec = replace(spec, methods=tuple(methods))
    setting = setting_of(spec)
    seeds = spec.options.method_seeds or setting.method_seeds
    log.info(
        f"sweep {sweep.path.name}: {len(methods)} configuration(s) x {len(tasks_of(spec))} task(s) x {seeds} seed(s)"
    )
    done = execute(spec)
    pipeline, methods, units = done.pipeline, done.methods, done.units
    tasks = pipeline.tasks
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    files: set[str] = set()
    failed = {
        text: pipeline.ledger.failed[m.run_name]
        for text, m in zip(sweep.configurations, methods)
        if m.run_name in pipeline.ledger.failed
    }
    for text, method in zip(sweep.configurations, methods):
        if text in failed:
            continue
        doc = build_results(done.record([method]))
        stem = slug(text, method.name)
        while stem in files:  # two texts that differ only in characters a file name cannot hold
            stem += "_"
        files.add(stem)
        path = output / f"{stem}.json"
        write_results(doc, path)
        summary = doc["summary"][method.run_name]
        rows.append(
            {
                "configuration": text,
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
        "executor": spec.executor if isinstance(spec.executor, str) else getattr(spec.executor, "name", "custom"),
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
