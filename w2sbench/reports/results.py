"""One run's results as a schema-checked JSON document: numbers per task and method, and the record of
what produced them. The document is validated before it is written; nothing unvalidated reaches disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import provenance
from ..engine.record import RunRecord, summarise_probs
from ..methods.identity import harness_source
from ..schema_io import validate, write_json
from ..scoring import (
    CONFIDENCE,
    PGRResult,
    aggregate,
    boot_auroc,
    bootstrap_auroc_pgr,
    compare_to_baseline,
    correct_matrix,
    encode_correct,
    interval,
    is_heldout,
    transfer,
)
from ..tasks.sources import SPLIT_NAMES

# 2: method code hash, sandbox record, flags, recomputed artifacts; 3: per-example correctness (`correct`),
# the pooled PGR, development vs held-out (`transfer`), the bootstrap plan (`bootstrap`); 4: AUROC's interval
# and PGR on AUROC per task (`auroc_ci`, `pgr_auroc`) and pooled (summary `auroc`). Version 3 still validates
# (it claims no AUROC figure); the schema requires the AUROC fields of a version 4 document.
SCHEMA_VERSION = 4
BOOTSTRAP_SEED = 0


def _summary(probs: np.ndarray, labels: np.ndarray, auroc_draws: np.ndarray | None = None) -> dict:
    """Accuracy and AUROC per seed and their mean, AUROC's 95% interval from the task's bootstrap plan, and
    which test examples each seed got right (packed)."""
    out = {**summarise_probs(probs, labels), "correct": encode_correct(correct_matrix(probs, labels))}
    ci = interval(auroc_draws) if auroc_draws is not None and out["auroc"] is not None else None
    return {**out, "auroc_ci": list(ci) if ci else None}


def _auroc_draws(probs: np.ndarray, labels: np.ndarray, task: str, group: str, n_boot: int) -> np.ndarray | None:
    """A group's bootstrap AUROCs by the task's plan; None when the test labels hold one class."""
    if labels.min() == labels.max():
        return None
    return boot_auroc(probs, labels, task, group, n_boot, BOOTSTRAP_SEED)


def _auroc_pgr(r: PGRResult | None) -> dict | None:
    """PGR on AUROC (scoring.bootstrap_auroc_pgr) in the results' words: the three AUROCs by name."""
    if r is None:
        return None
    return {
        "weak_auroc": r.weak_acc,
        "ceiling_auroc": r.ceiling_acc,
        "w2s_auroc": r.w2s_acc,
        "gap": r.gap,
        "gap_ci": list(r.gap_ci) if r.gap_ci else None,
        "pgr": r.pgr,
        "pgr_ci": list(r.pgr_ci) if r.pgr_ci else None,
        "w2s_ci": list(r.w2s_ci) if r.w2s_ci else None,
        "pgr_per_seed": r.pgr_per_seed,
        "defined": r.defined,
        "undefined_reason": r.undefined_reason,
        "n_test": r.n_test,
        "n_boot": r.n_boot,
    }


def _auroc_summary(results: list[PGRResult | None]) -> dict:
    """Pooled and mean PGR on AUROC over the tasks that have an AUROC figure (scoring.aggregate on AUROC's
    draws: the same undefined rule as accuracy's)."""
    usable = [r for r in results if r is not None and r.gap_ci is not None]
    if not usable:
        return {
            "tasks": 0,
            "tasks_defined": 0,
            "mean_pgr": None,
            "mean_pgr_ci": None,
            "pooled_pgr": None,
            "pooled_pgr_ci": None,
            "pooled_gap": None,
            "pooled_gap_ci": None,
            "pooled_undefined_reason": "no task has an AUROC (each task's test labels hold one class)",
            "mean_w2s_auroc": None,
        }
    agg = aggregate(usable)
    whole = len(usable) == len(results)  # a mean over a subset of the tasks would flatter the method
    return {
        "tasks": len(usable),
        "tasks_defined": sum(r.defined for r in usable),
        "mean_pgr": agg.mean_pgr if whole else None,
        "mean_pgr_ci": list(agg.mean_pgr_ci) if whole and agg.mean_pgr_ci else None,
        "pooled_pgr": agg.pooled_pgr,
        "pooled_pgr_ci": list(agg.pooled_pgr_ci) if agg.pooled_pgr_ci else None,
        "pooled_gap": agg.pooled_gap,
        "pooled_gap_ci": list(agg.pooled_gap_ci),
        "pooled_undefined_reason": agg.pooled_undefined_reason,
        "mean_w2s_auroc": agg.mean_w2s_accuracy,
    }


def build_results(record: RunRecord, baseline: str = "vanilla") -> dict:
    """The results document; with several methods including `baseline`, each method's paired difference
    to it (accuracy and PGR, with intervals) under "comparison"."""
    setting, runs = record.setting, record.tasks
    n_boot = record.options.n_boot
    tasks: dict[str, dict] = {}
    by_auroc: dict[str, dict[str, PGRResult | None]] = {}  # task -> method -> PGR on AUROC
    for tr in runs:
        labels = np.array([e.label for e in tr.splits.test])
        task_name = tr.task.name
        entry = {
            "task_hash": tr.task.hash,
            "version": tr.task.config.get("version", 1),
            "tags": list(tr.task.tags),
            "split": "heldout" if is_heldout(tr.task.tags) else "development",
            "n": {s: len(getattr(tr.splits, s)) for s in SPLIT_NAMES},
            "test_positive_rate": float(labels.mean()),
            "weak": _summary(tr.weak_test, labels, _auroc_draws(tr.weak_test, labels, task_name, "weak", n_boot)),
            "ceiling": _summary(
                tr.ceiling_test, labels, _auroc_draws(tr.ceiling_test, labels, task_name, "ceiling", n_boot)
            ),
            "methods": {},
        }
        by_auroc[task_name] = {}
        for name, mr in tr.methods.items():
            auc = bootstrap_auroc_pgr(
                labels, tr.weak_test, tr.ceiling_test, mr.test_probs, n_boot, BOOTSTRAP_SEED, task=task_name
            )
            by_auroc[task_name][name] = auc
            entry["methods"][name] = {
                "w2s": _summary(mr.test_probs, labels, None if auc is None else auc.boot_w2s),
                "pgr": tr.scores[name].to_dict(),
                "pgr_auroc": _auroc_pgr(auc),
                "weak_seed_of_method_seed": mr.weak_seed_of,
                "compute": mr.compute,
                "flags": tr.flags.get(name, []),
            }
        tasks[tr.task.name] = entry

    summary = {}
    method_runs = {name: mr for tr in runs for name, mr in tr.methods.items()}
    for name in method_runs:
        agg = aggregate([tr.scores[name] for tr in runs])
        summary[name] = {
            "mean_pgr": agg.mean_pgr,
            "mean_pgr_ci": list(agg.mean_pgr_ci) if agg.mean_pgr_ci else None,
            "pooled_pgr": agg.pooled_pgr,
            "pooled_pgr_ci": list(agg.pooled_pgr_ci) if agg.pooled_pgr_ci else None,
            "pooled_gap": agg.pooled_gap,
            "pooled_gap_ci": list(agg.pooled_gap_ci),
            "pooled_undefined_reason": agg.pooled_undefined_reason,
            "tasks_defined": sum(tr.scores[name].defined for tr in runs),
            "tasks": len(runs),
            "mean_w2s_accuracy": agg.mean_w2s_accuracy,
            "flagged_tasks": sorted(tr.task.name for tr in runs if tr.flags.get(name)),
            "auroc": _auroc_summary([by_auroc[tr.task.name][name] for tr in runs]),
        }
    unaffirmed = sorted(u for u, sb in record.unit_sandboxes.items() if not (sb and sb.get("sealed")))
    doc = {
        "schema_version": SCHEMA_VERSION,
        "setting": {"name": setting.name, "version": setting.version, "hash": setting.hash, "config": setting.config},
        "models": record.models,
        "seeds": {"baseline": record.baseline_seeds, "method": record.method_seeds},
        "methods": {
            name: {
                "name": mr.method.name,  # the registered name; the key adds any non-default hyperparameters
                "version": mr.method.version,
                "description": mr.method.description,
                "config": mr.method().config() if mr.config is None else mr.config,
                "teacher_free": not mr.method.uses_weak_labels,
                "source": mr.method.__module__,
                "code": record.method_sources[mr.method.name].record(),
            }
            for name, mr in method_runs.items()
        },
        "sealed": {
            "labels_given_to_methods": False,
            "process": "each method runs in its own process that receives plain data only "
            "(w2sbench/isolation/sealed.py)",
            "sandboxed": record.sandbox is not None and not unaffirmed,
            "why_unsealed": None
            if record.sandbox is not None and not unaffirmed
            else "run with --unsealed: no OS sandbox around the method"
            if record.sandbox is None
            else f"method units that did not run in an OS sandbox on their Ray node: {', '.join(unaffirmed)}",
            "sandbox": record.sandbox,
            "method_saw": {
                name: sorted(
                    {"train_unlabel texts", "test texts"}
                    | {item for tr in runs for rec in tr.methods[name].compute for item in rec.get("saw", [])}
                )
                for name in method_runs
            },
        },
        "tasks": tasks,
        "summary": summary,
        "bootstrap": {
            "n_boot": record.options.n_boot,
            "seed": BOOTSTRAP_SEED,
            "confidence": CONFIDENCE,
            "plan": "per task, from (seed, task name) only: multinomial test-example counts shared by every model, "
            "seed indices drawn with replacement per group (weak, ceiling, method), the method draw shared by "
            "every method with as many seeds (w2sbench/scoring.py)",
        },
        "backend": {
            "requested": record.options.backend,
            "used": record.backend_used,
            "devices": record.devices,
            "notes": record.notes,
        },
        "timings_s": {k: round(v, 3) for k, v in record.timings.items()},
        "cache": {"hits": record.cache_hits, "misses": record.cache_misses, "recomputed": record.cache_recomputed},
        "provenance": provenance.record(),
    }
    if method_runs:
        doc["harness"] = harness_source()
    if record.unit_sandboxes:  # units run on Ray: each node's sandbox, with the units it ran
        nodes: dict[str, dict] = {}
        for unit, sb in sorted(record.unit_sandboxes.items()):
            where = sb or {"host": None, "node": None, "sealed": False, "mechanism": None}
            key = f"{where['host']}|{where['node']}|{where['sealed']}|{where['mechanism']}"
            nodes.setdefault(key, {**where, "units": []})["units"].append(unit)
        doc["sealed"]["units"] = list(nodes.values())
    if record.failed:
        doc["failed_methods"] = dict(record.failed)
    if record.consoles:  # what the methods printed: theirs, captured and cleaned, never the harness's lines
        doc["sealed"]["method_console"] = dict(record.consoles)
    heldout = [tr.task.name for tr in runs if is_heldout(tr.task.tags)]
    moved = transfer({tr.task.name: tr.scores for tr in runs}, heldout)
    if moved is not None:
        doc["transfer"] = moved
    if baseline in method_runs and len(method_runs) > 1:
        doc["comparison"] = compare_to_baseline(runs, baseline, n_boot=record.options.n_boot)
    return doc


def write_results(doc: dict, path: Path) -> Path:
    """Validate against results.schema.json, then write atomically."""
    validate(doc, "results", str(path))
    return write_json(doc, path)
