"""Reproducing a submission before it counts: rerun its method, from the code the submission names, in the
sandbox, on the official setting, with the method stage recomputed (the shared weak and ceiling stages may
come from the cache: they are the official baselines), and compare each task's w2s accuracy with the
submitted number. The outcome is written into the submission as `reproduced`; the leaderboard ranks only
entries whose record is ok and still matches the file's contents.

Tolerance: REPRODUCE_TOL, one point of mean w2s accuracy per task. The harness is deterministic on one
machine (a rerun matches to the last digit); across machines float rounding can flip a few borderline
test predictions, which moves a 500-example mean by a few tenths of a point, while the method-seed spread
on the default suite is about a point: anything beyond that is a different method, not rounding.
"""

from __future__ import annotations

import importlib.metadata
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..cache import ArtifactStore, hash_of
from ..errors import ConfigError, W2SError
from ..paths import repo_root
from . import SEED_SETTINGS
from .submission import METHODS_DIR, check_schema

REPRODUCE_TOL = 0.01
# The submitted per-example correctness vectors (what the leaderboard pairs entries on) must match the rerun's
# on this fraction of (seed, example) pairs: a same-machine rerun matches exactly, and the few borderline
# predictions that flip across machines stay far below 2%, while vectors edited apart from the predictions
# (shuffled to decorrelate an entry from the others, say) do not.
AGREEMENT_MIN = 0.98

log = logging.getLogger("w2sbench")


def submission_digest(doc: dict) -> str:
    """What a reproduction vouches for: everything in the submission but the record of reproduction."""
    return hash_of({k: v for k, v in doc.items() if k != "reproduced"})


def load_submitted_method(code: dict, where: str) -> type:
    """The method class a submission's `method.source` names, checked against its pinned hash."""
    from ..methods import load_method
    from ..methods.identity import method_source

    if code["kind"] == "package":
        try:
            installed = importlib.metadata.version(code["package"])
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(where, "method.source.package", f"package {code['package']!r} is not installed") from None
        if code.get("version") and installed != code["version"]:
            raise ConfigError(
                where, "method.source.version", f"pins {code['package']}=={code['version']}, installed is {installed}"
            )
        cls = load_method(code["entry"])
    else:
        if not code["path"].startswith(f"{METHODS_DIR}/"):
            raise ConfigError(
                where,
                "method.source.path",
                f"a submission's own code lives under {METHODS_DIR}/NAME/, not {code['path']!r}",
            )
        spec_path, _, attr = code["entry"].rpartition(":")
        cls = load_method(f"{repo_root() / spec_path}:{attr}")
    actual = method_source(cls).sha256
    if actual != code["sha256"]:
        raise ConfigError(
            where,
            "method.source.sha256",
            f"the code found hashes to {actual[:12]}..., the submission "
            f"was made with {code['sha256'][:12]}...: reproduce with the code that produced it",
        )
    return cls


def configured(cls: type, config: dict, where: str, field: str) -> Any:
    """The method with the hyperparameters its results recorded (a configured method reruns as it ran)."""
    if cls.hyperparameters:
        return cls(**config)
    method = cls()
    if method.config() != config:
        raise ConfigError(
            where, field, f"the results were made with {config}, the code's defaults are {method.config()}"
        )
    return method


def reproduce_submission(path: Path, store_root: Path | None = None) -> dict:
    """Rerun the submission's method and return the `reproduced` record (ok or not, with per-task numbers)."""
    from ..engine.executors import run
    from ..engine.pipeline import Pipeline, RunOptions
    from ..methods.identity import harness_source
    from ..provenance import git_state
    from ..settings import load_setting
    from ..tasks import load_task
    from ..validation import read_json

    where = str(path)
    doc = read_json(path)
    check_schema(doc, where)
    name = doc["method"]["name"]
    cls = load_submitted_method(doc["method"]["source"], where)
    tasks_out: dict[str, dict] = {}
    failures: list[str] = []
    sandbox = None
    for i, results in enumerate(doc["results"]):
        setting = load_setting(results["setting"]["name"])
        if setting.hash != results["setting"]["hash"]:
            raise ConfigError(
                where,
                f"results.{i}.setting.hash",
                f"setting {setting.name!r} has changed since the "
                "submission was made: it cannot be reproduced on the official setting",
            )
        tasks = [load_task(t) for t in results["tasks"]]
        for task in tasks:
            if task.hash != results["tasks"][task.name]["task_hash"]:
                raise ConfigError(
                    where,
                    f"results.{i}.tasks.{task.name}.task_hash",
                    "the task has changed since the submission was made",
                )
        sizes = {split: n for t in results["tasks"].values() for split, n in t["n"].items()}  # validation: official
        if any(sizes[split] != t["n"][split] for t in results["tasks"].values() for split in sizes):
            sizes = None  # tasks of different sizes: each task's own (official) sizes
        options = RunOptions(
            baseline_seeds=results["seeds"]["baseline"], method_seeds=results["seeds"]["method"], sizes=sizes
        )
        store = (
            ArtifactStore(store_root, recompute=frozenset({"method"}))
            if store_root
            else ArtifactStore(recompute=frozenset({"method"}))
        )
        log.info(f"reproducing {name} on {setting.name}: {len(tasks)} task(s), its method stage rerun from its code")
        field = f"results.{i}.methods.{name}.config"
        method = configured(cls, results["methods"][name].get("config", {}), where, field)
        if method.run_name != name:
            raise ConfigError(where, field, f"this config runs the method as {method.run_name!r}, not {name!r}")
        record = run(Pipeline(setting, tasks, options, store), [method])
        sandbox = record.sandbox
        for tr in record.tasks:
            import numpy as np

            from ..scoring import accuracy, correct_matrix, decode_correct

            labels = np.array([e.label for e in tr.splits.test])
            got = float(np.mean([accuracy(p, labels) for p in tr.methods[method.run_name].test_probs]))
            submitted = results["tasks"][tr.task.name]["methods"][name]["w2s"]
            want = float(submitted["accuracy"])
            diff = got - want
            mine = correct_matrix(tr.methods[method.run_name].test_probs, labels)
            try:
                theirs = decode_correct(submitted["correct"], len(labels))
                agreement = float(np.mean(theirs == mine)) if theirs.shape == mine.shape else 0.0
            except ValueError:
                agreement = 0.0
            tasks_out[f"{setting.name}/{tr.task.name}"] = {
                "submitted": want,
                "reproduced": got,
                "difference": diff,
                "agreement": agreement,
                "flags": tr.flags.get(method.run_name, []),
            }
            if agreement < AGREEMENT_MIN:
                failures.append(
                    f"{setting.name}/{tr.task.name}: the submitted per-example correctness matches the rerun's on "
                    f"{100 * agreement:.1f}% of test predictions (< {100 * AGREEMENT_MIN:.0f}%)"
                )
            if abs(diff) > REPRODUCE_TOL:
                failures.append(
                    f"{setting.name}/{tr.task.name}: w2s accuracy {100 * got:.1f}% reproduced vs "
                    f"{100 * want:.1f}% submitted ({100 * abs(diff):.1f} points > {100 * REPRODUCE_TOL:.1f})"
                )
    submitted_harness = sorted({(r.get("harness") or {}).get("sha256") or "unrecorded" for r in doc["results"]})
    if harness_source()["sha256"] not in submitted_harness:
        log.info(
            f"{name}: the harness (trainer, inference code, libraries) changed since it was submitted: "
            "judged by tolerance"
        )
    return {
        "ok": not failures,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_state()["commit"],
        "w2sbench_version": __version__,
        "code_sha256": doc["method"]["source"]["sha256"],
        "harness_sha256": harness_source()["sha256"],
        "submitted_harness_sha256": submitted_harness,
        "submission_sha256": submission_digest(doc),
        "tolerance": REPRODUCE_TOL,
        "sandbox": sandbox,
        "tasks": tasks_out,
        "failures": failures,
    }


def write_reproduction(path: Path, outcome: dict) -> None:
    from ..validation import read_json, write_json

    doc = read_json(path)
    if submission_digest(doc) != outcome["submission_sha256"]:
        raise W2SError(f"{path} changed while it was being reproduced; run again")
    doc["reproduced"] = outcome
    write_json(doc, path)


def outdated(doc: dict, settings: tuple[str, ...] = SEED_SETTINGS) -> str | None:
    """Why a submission of a built-in method no longer matches the code here (its method's code or the
    harness changed, it has no results on one of the seed's `settings`, or it has no current reproduction),
    else None: what `make_seed.sh` reruns."""
    from ..methods import load_method
    from ..methods.identity import harness_source, method_source

    source = doc["method"]["source"]
    if source["kind"] != "package" or source.get("package") != "w2sbench":
        return None
    covered = {r["setting"]["name"] for r in doc["results"]}
    missing = [s for s in settings if s not in covered]
    if missing:
        return f"it has no results on setting {missing[0]!r}"
    try:
        current = method_source(load_method(source["entry"])).sha256
    except W2SError as e:
        return f"its method no longer loads ({e})"
    if current != source["sha256"]:
        return f"the method's code changed ({source['sha256'][:12]}... -> {current[:12]}...)"
    harness = harness_source()["sha256"]
    if any((r.get("harness") or {}).get("sha256") != harness for r in doc["results"]):
        return "the harness (trainer, inference code or their libraries) changed"
    return reproduction_status(doc)


def reproduction_status(doc: dict) -> str | None:
    """None when the submission carries a current, successful reproduction; else why it does not count."""
    rec = doc.get("reproduced")
    if not rec:
        return "not reproduced yet (w2sbench leaderboard reproduce)"
    if rec.get("submission_sha256") != submission_digest(doc):
        return "the submission changed after it was reproduced"
    if not rec.get("ok"):
        return "did not reproduce: " + "; ".join(rec.get("failures") or ["(no detail)"])
    return None
