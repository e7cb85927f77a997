"""Reproducing a submission before it counts: rerun its method, from the code the submission names, in the
sandbox, on the official setting, with the method stage recomputed (the shared weak and ceiling stages may
come from the cache: they are the official baselines), compare each task's w2s accuracy and per-example
correctness with the submitted ones, and write the outcome as a record of its own
(leaderboard/records/<submission stem>.json, leaderboard.records): the submission never holds it, and the
leaderboard computes every figure of the entry from the record's reproduced vectors.

Order of trust: the code's files are hashed (methods.identity.source_of, which reads them and runs nothing)
and compared with the submission's pin BEFORE anything imports them; only then is the code described by the
sandboxed probe (isolation.resolve.describe) and run in the sealed method process. A built-in is w2sbench's
own code, hashed the same way.

Tolerance: REPRODUCE_TOL, one point of mean w2s accuracy per task. The harness is deterministic on one
machine (a rerun matches to the last digit); across machines float rounding can flip a few borderline
test predictions, which moves a 500-example mean by a few tenths of a point, while the method-seed spread
on the default suite is about a point: anything beyond that is a different method, not rounding.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ConfigError, MethodFailed, W2SError
from . import SEED_SETTINGS, default_dir
from .records import SCHEMA_VERSION, needs_reproduction, status, submission_digest
from .submission import METHODS_DIR, check_schema

REPRODUCE_TOL = 0.01
# The submitted per-example correctness vectors must match the rerun's on this fraction of (seed, example)
# pairs: a same-machine rerun matches exactly, and the few borderline predictions that flip across machines
# stay far below 2%, while vectors edited apart from the predictions (shuffled to decorrelate an entry from the
# others, say) do not. The leaderboard ranks from the rerun's vectors either way.
AGREEMENT_MIN = 0.98
CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

log = logging.getLogger("w2sbench")

__all__ = ["REPRODUCE_TOL", "AGREEMENT_MIN", "reproduce_submission", "outdated", "submission_digest", "code_origin"]


def _label(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def code_origin(source: dict, name: str, root: Path | None, where: str) -> tuple[dict, str | None]:
    """(origin, class name) of a submission's code: a w2sbench built-in (`kind: package`, `package:
    w2sbench`, entry = its registry name) or the folder leaderboard/methods/<registry name>/ under `root`
    with its __init__.py as the entry; a relative path without `..`; on disk (unless `root` is None: the
    names only), plain folders and files, no symbolic link on the way or inside (identity.check_code).
    Nothing is read but names. Anything else is a ConfigError naming the field."""
    from ..methods.identity import check_code
    from ..methods.params import split_spec
    from ..methods.registry import BUILTIN

    base = split_spec(name)[0]
    kind = source.get("kind")
    if kind == "package":
        if source.get("package") != "w2sbench":
            raise ConfigError(
                where,
                "method.source.package",
                f"{source.get('package')!r}: only w2sbench's own built-in methods are named by package (another "
                f"package would run its install code); submit your code as the folder {METHODS_DIR}/{base}/",
            )
        entry = source.get("entry")
        if entry not in BUILTIN or entry != base:
            raise ConfigError(
                where, "method.source.entry", f"{entry!r} is not the built-in method {base!r} (method.name)"
            )
        return {"kind": "builtin", "module": BUILTIN[entry].partition(":")[0]}, None
    if kind != "folder":
        raise ConfigError(
            where,
            "method.source.kind",
            f"{kind!r}: a submission's code is a folder {METHODS_DIR}/{base}/ or a built-in",
        )
    path = source.get("path")
    expected = f"{METHODS_DIR}/{base}"
    if not isinstance(path, str) or path.startswith("/") or "\\" in path:
        raise ConfigError(where, "method.source.path", f"{path!r}: give the relative path {expected}")
    if ".." in path.split("/"):
        raise ConfigError(where, "method.source.path", f"{path!r} goes through '..'; give {expected}")
    if path.rstrip("/") != expected:
        raise ConfigError(
            where,
            "method.source.path",
            f"{path!r}: the method's code must be the folder {expected}/ (its registry name, {base!r})",
        )
    entry = source.get("entry")
    file, _, class_name = str(entry).rpartition(":")
    if file != f"{expected}/__init__.py" or not CLASS_NAME.fullmatch(class_name):
        raise ConfigError(
            where,
            "method.source.entry",
            f"{str(entry)[:120]!r}: the entry is {expected}/__init__.py:ClassName, inside the method's own folder",
        )
    if root is None:
        return {"kind": "folder", "path": expected}, class_name
    folder = Path(root) / expected
    for part in (Path(root) / "leaderboard", Path(root) / METHODS_DIR, folder):
        if part.is_symlink():
            raise ConfigError(
                where, "method.source.path", f"{_label(part, root)} is a symbolic link; give plain folders"
            )
    origin = {"kind": "folder", "path": str(folder.absolute())}
    try:
        check_code(origin)
    except W2SError as e:
        raise ConfigError(where, "method.source.path", str(e)) from None
    return origin, class_name


def check_code_hash(origin: dict, pinned: str, where: str) -> str:
    """The code's hash, from its files (nothing imported): a ConfigError where it is not the pinned one."""
    from ..methods.identity import source_of

    actual = source_of(origin).sha256
    if actual != pinned:
        raise ConfigError(
            where,
            "method.source.sha256",
            f"the code found hashes to {actual[:12]}..., the submission was made with {pinned[:12]}...: "
            "reproduce with the code that produced it",
        )
    return actual


def load_submitted_method(source: dict, name: str, root: Path, where: str) -> type:
    """The method class a submission names: its code's hash checked first, then a built-in's class or the
    stand-in the sandboxed probe describes (the code is never imported in this process)."""
    from ..isolation.resolve import describe
    from ..methods.params import split_spec
    from ..methods.registry import load_builtin

    origin, class_name = code_origin(source, name, root, where)
    check_code_hash(origin, source["sha256"], where)  # before anything runs the code
    if origin["kind"] == "builtin":
        return load_builtin(source["entry"])
    try:
        cls = describe(origin, class_name)
    except W2SError as e:
        raise ConfigError(
            where, "method.source.entry", f"the code could not be described in the sandbox: {e}"
        ) from None
    base = split_spec(name)[0]
    if cls.name != base:
        raise ConfigError(where, "method.name", f"the code names its method {cls.name!r}, the submission {base!r}")
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


def _agreement(submitted: dict, mine: np.ndarray, n: int) -> float:
    from ..scoring import decode_correct

    try:
        theirs = decode_correct(submitted["correct"], n)
    except ValueError:
        return 0.0
    return float(np.mean(theirs == mine)) if theirs.shape == mine.shape else 0.0


def reproduce_submission(path: Path, store_root: Path | None = None, root: Path | None = None) -> dict:
    """Rerun the submission's method and return its record (record.schema.json), ok or not. `root`: the folder
    holding leaderboard/methods/ (default: the checkout's)."""
    from ..engine.run import run
    from ..engine.spec import RunOptions, RunSpec
    from ..methods.identity import harness_source
    from ..provenance import git_state, hardware
    from ..schema_io import read_json
    from ..scoring import accuracy, auroc, correct_matrix, encode_correct
    from ..settings import load_setting
    from ..tasks import load_task

    where = str(path)
    root = Path(root) if root is not None else default_dir().parent
    doc = read_json(path)
    check_schema(doc, where)
    name = doc["method"]["name"]
    cls = load_submitted_method(doc["method"]["source"], name, root, where)
    teacher_free = not cls.uses_weak_labels
    failures: list[str] = []
    if teacher_free != doc["method"]["teacher_free"]:
        failures.append(f"the code says teacher_free {teacher_free}, the submission {doc['method']['teacher_free']}")
    settings_out: dict[str, dict] = {}
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
        log.info(f"reproducing {name} on {setting.name}: {len(tasks)} task(s), its method stage rerun from its code")
        field = f"results.{i}.methods.{name}.config"
        method = configured(cls, results["methods"][name].get("config", {}), where, field)
        if method.run_name != name:
            raise ConfigError(where, field, f"this config runs the method as {method.run_name!r}, not {name!r}")
        spec = RunSpec(
            methods=(method,),
            tasks=tuple(tasks),
            setting=setting,
            cache=str(store_root) if store_root else None,
            recompute=frozenset({"method"}),
            options=RunOptions(
                baseline_seeds=results["seeds"]["baseline"], method_seeds=results["seeds"]["method"], limit=sizes
            ),
        )
        try:
            record = run(spec)
        except MethodFailed as e:
            failures.append(f"{setting.name}: the method did not run: {e}")
            continue
        sandbox = record.sandbox
        if record.sandbox is None:
            failures.append(f"{setting.name}: the rerun was not sandboxed")
        out_tasks: dict[str, dict] = {}
        for tr in record.tasks:
            labels = np.array([e.label for e in tr.splits.test])
            probs = tr.methods[method.run_name].test_probs
            got = float(np.mean([accuracy(p, labels) for p in probs]))
            submitted = results["tasks"][tr.task.name]["methods"][name]["w2s"]
            want = float(submitted["accuracy"])
            mine = correct_matrix(probs, labels)
            agreement = _agreement(submitted, mine, len(labels))
            out_tasks[tr.task.name] = {
                "task_hash": tr.task.hash,
                "n_test": len(labels),
                "submitted": want,
                "reproduced": got,
                "difference": got - want,
                "agreement": agreement,
                "flags": tr.flags.get(method.run_name, []),
                "correct": encode_correct(mine),
                "auroc_per_seed": [auroc(p, labels) for p in probs],
            }
            if agreement < AGREEMENT_MIN:
                failures.append(
                    f"{setting.name}/{tr.task.name}: the submitted per-example correctness matches the rerun's on "
                    f"{100 * agreement:.1f}% of test predictions (< {100 * AGREEMENT_MIN:.0f}%)"
                )
            if abs(got - want) > REPRODUCE_TOL:
                failures.append(
                    f"{setting.name}/{tr.task.name}: w2s accuracy {100 * got:.1f}% reproduced vs "
                    f"{100 * want:.1f}% submitted ({100 * abs(got - want):.1f} points > {100 * REPRODUCE_TOL:.1f})"
                )
        settings_out[setting.name] = {
            "hash": setting.hash,
            "seeds": {"baseline": record.baseline_seeds, "method": record.method_seeds},
            "config": method.config(),
            "backend": dict(record.backend_used),
            "hardware": hardware(),
            "tasks": out_tasks,
        }
    submitted_harness = sorted({(r.get("harness") or {}).get("sha256") or "unrecorded" for r in doc["results"]})
    harness = harness_source()["sha256"]
    if harness not in submitted_harness:
        log.info(
            f"{name}: the harness (trainer, inference code, libraries) changed since it was submitted: "
            "judged by tolerance"
        )
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "schema_version": SCHEMA_VERSION,
        "submission": {"file": _label(path, root), "sha256": submission_digest(doc)},
        "method": name,
        "code_sha256": doc["method"]["source"]["sha256"],
        "harness_sha256": harness,
        "submitted_harness_sha256": submitted_harness,
        "ok": not failures,
        "failures": failures,
        "date": date,
        "since": date,
        "commit": git_state()["commit"],
        "w2sbench_version": __version__,
        "tolerance": REPRODUCE_TOL,
        "agreement_min": AGREEMENT_MIN,
        "sandbox": sandbox,
        "described": {
            "teacher_free": teacher_free,
            "non_default_recipe": bool(getattr(cls, "non_default_recipe", False)),
        },
        "settings": settings_out,
    }


def still_the_same(path: Path, record: dict) -> None:
    """Refuse to write a record for a file that changed while it was being reproduced."""
    from ..schema_io import read_json

    if submission_digest(read_json(path)) != record["submission"]["sha256"]:
        raise W2SError(f"{path} changed while it was being reproduced; run again")


def outdated(doc: dict, record: dict | None, settings: tuple[str, ...] = SEED_SETTINGS) -> str | None:
    """Why a submission of a built-in method no longer matches the code here (its method's code or the
    harness changed, it has no results on one of the seed's `settings`, or `record`, its record of
    reproduction, is missing, not of this submission or not ok), else None: what `make_seed.sh` reruns."""
    from ..methods.identity import harness_source, source_of
    from ..methods.registry import BUILTIN

    source = doc["method"]["source"]
    if source["kind"] != "package" or source.get("package") != "w2sbench":
        return None
    if source.get("entry") not in BUILTIN:
        return f"{source.get('entry')!r} is no longer a built-in method"
    covered = {r["setting"]["name"] for r in doc["results"]}
    missing = [s for s in settings if s not in covered]
    if missing:
        return f"it has no results on setting {missing[0]!r}"
    current = source_of({"kind": "builtin"}).sha256
    if current != source["sha256"]:
        return f"the method's code changed ({source['sha256'][:12]}... -> {current[:12]}...)"
    harness = harness_source()["sha256"]
    if any((r.get("harness") or {}).get("sha256") != harness for r in doc["results"]):
        return "the harness (trainer, inference code or their libraries) changed"
    return status(doc, record) or needs_reproduction(doc, record, harness)
