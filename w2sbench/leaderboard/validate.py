"""Checking submissions: schema, then internal consistency (PGR recomputed from the accuracies the file
reports, each seed's per-example correctness vector against its accuracy), agreement with the official
baselines, known setting and task hashes, unique method names.
Every problem is one ConfigError naming the file and the field; all of them are reported, not the first."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, UnknownNameError, W2SError
from ..schema_io import read_json
from ..scoring import decode_correct, pgr, pooled_pgr
from . import PGR_TOL
from .submission import PLACEHOLDER, check_schema

FLOAT_TOL = 1e-9  # two numbers the harness derives from the same inputs (means, copies) agree to rounding


def _close(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tol


class _Collector:
    """Gathers ConfigErrors for one file."""

    def __init__(self, path: str):
        self.path, self.errors = path, []

    def add(self, field: str, message: str) -> None:
        self.errors.append(ConfigError(self.path, field, message))


def _registry_setting_hash(name: str) -> str | None:
    from ..settings import load_setting

    try:
        return load_setting(name).hash
    except UnknownNameError:
        return None


def _registry_task_hash(name: str) -> str | None:
    from ..tasks import load_task

    try:
        return load_task(name).hash
    except UnknownNameError:
        return None


def _check_card(method: dict, out: _Collector) -> None:
    for key, value in method.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.startswith(PLACEHOLDER):
                out.add(f"method.{key}", f"still a placeholder ({v}); fill it in")


def _check_source(method: dict, out: _Collector, code_root: Path | None) -> None:
    """The code must be where `leaderboard reproduce` can run it without trusting anything else: a w2sbench
    built-in, or the folder leaderboard/methods/<registry name>/ (relative, no `..`, no symbolic link, its
    __init__.py the entry). With `code_root` (the folder holding leaderboard/), the folder is also read: it
    must exist without links and hash to the pinned sha256 (its files are read, nothing is imported)."""
    from .reproduce import check_code_hash, code_origin

    try:
        origin, _ = code_origin(method["source"], method["name"], code_root, out.path)
        if code_root is not None and origin["kind"] == "folder":
            check_code_hash(origin, method["source"]["sha256"], out.path)
    except ConfigError as e:
        out.errors.append(e)
    except W2SError as e:
        out.add("method.source.path", str(e))


def _check_probs(summary: dict, where: str, out: _Collector, n_test: int) -> None:
    per_seed = summary["accuracy_per_seed"]
    if summary["seeds"] != len(per_seed):
        out.add(f"{where}.seeds", f"says {summary['seeds']} seeds but accuracy_per_seed has {len(per_seed)}")
    if not _close(summary["accuracy"], float(np.mean(per_seed)), FLOAT_TOL):
        out.add(
            f"{where}.accuracy",
            f"{summary['accuracy']!r} is not the mean of accuracy_per_seed ({float(np.mean(per_seed))!r})",
        )
    _check_correct(summary, where, out, n_test)


def _check_correct(summary: dict, where: str, out: _Collector, n_test: int) -> None:
    """Each seed's correctness vector must decode to n_test bits whose mean is that seed's reported accuracy:
    the vectors (what the leaderboard pairs entries on) cannot be edited apart from the accuracies."""
    per_seed = summary["accuracy_per_seed"]
    if len(summary["correct"]) != len(per_seed):
        out.add(
            f"{where}.correct",
            f"holds {len(summary['correct'])} vector(s) but accuracy_per_seed has {len(per_seed)} seed(s)",
        )
        return
    try:
        correct = decode_correct(summary["correct"], n_test)
    except ValueError as exc:
        out.add(f"{where}.correct", f"is not {n_test} packed bits per seed: {exc}")
        return
    for i, (row, acc) in enumerate(zip(correct, per_seed)):
        if not _close(float(row.mean()), acc, FLOAT_TOL):
            out.add(
                f"{where}.correct.{i}",
                f"says {int(row.sum())} of {n_test} test examples right ({row.mean():.4f}), but "
                f"accuracy_per_seed.{i} is {acc!r}",
            )


def _check_task(
    name: str, entry: dict, method: str, official: dict, tol: float, where: str, out: _Collector
) -> float | None:
    """Checks one task row; returns its PGR (None when undefined or broken)."""
    if entry["n"] != official["n"]:
        out.add(f"{where}.n", f"split sizes {entry['n']} differ from the official {official['n']}")
        return None  # nothing below can be compared at other sizes
    if entry["split"] != official["split"]:
        out.add(f"{where}.split", f"is {entry['split']!r}, the official baselines say {official['split']!r}")
    n_test = entry["n"]["test"]
    for role in ("weak", "ceiling"):
        _check_probs(entry[role], f"{where}.{role}", out, n_test)
        ours, theirs = entry[role]["accuracy"], official[role]["accuracy"]
        if abs(ours - theirs) > tol:
            out.add(
                f"{where}.{role}.accuracy",
                f"{ours:.4f} differs from the official cached baseline {theirs:.4f} "
                f"by more than the tolerance {tol} (rerun against the official baselines; do not retrain them)",
            )
    row = entry["methods"].get(method)
    if row is None:
        out.add(f"{where}.methods", f"no row for method {method!r}")
        return None
    _check_probs(row["w2s"], f"{where}.methods.{method}.w2s", out, n_test)
    p, pw = row["pgr"], f"{where}.methods.{method}.pgr"
    weak, ceil, w2s = entry["weak"]["accuracy"], entry["ceiling"]["accuracy"], row["w2s"]["accuracy"]
    for key, value in (("weak_acc", weak), ("ceiling_acc", ceil), ("w2s_acc", w2s)):
        if not _close(p[key], value, FLOAT_TOL):
            out.add(f"{pw}.{key}", f"{p[key]!r} does not match the reported accuracy {value!r}")
    if not _close(p["gap"], p["ceiling_acc"] - p["weak_acc"], FLOAT_TOL):
        out.add(f"{pw}.gap", f"{p['gap']!r} is not ceiling_acc - weak_acc = {p['ceiling_acc'] - p['weak_acc']!r}")
    gap_clear = p["gap_ci"][0] > 0
    if p["defined"] != gap_clear:
        out.add(
            f"{pw}.defined",
            f"is {p['defined']} but the gap interval {p['gap_ci']} says PGR is "
            f"{'defined' if gap_clear else 'undefined'} (defined only where the interval excludes 0)",
        )
        return None
    if not p["defined"]:
        return None
    expected = pgr(p["weak_acc"], p["ceiling_acc"], p["w2s_acc"])
    if not _close(p["pgr"], expected, PGR_TOL):
        out.add(
            f"{pw}.pgr",
            f"{p['pgr']!r} does not follow from its accuracies: (w2s - weak) / (ceiling - weak) = "
            f"({p['w2s_acc']:.4f} - {p['weak_acc']:.4f}) / ({p['ceiling_acc']:.4f} - {p['weak_acc']:.4f}) "
            f"= {expected:.6f}",
        )
        return None
    per_seed = [pgr(p["weak_acc"], p["ceiling_acc"], a) for a in row["w2s"]["accuracy_per_seed"]]
    if (
        p["pgr_per_seed"] is None
        or len(p["pgr_per_seed"]) != len(per_seed)
        or not all(_close(a, b, PGR_TOL) for a, b in zip(p["pgr_per_seed"], per_seed))
    ):
        out.add(f"{pw}.pgr_per_seed", "does not follow from w2s.accuracy_per_seed and the weak and ceiling accuracies")
    return float(p["pgr"])


def _check_results(doc: dict, i: int, method: dict, baselines: dict, out: _Collector) -> None:
    where = f"results.{i}"
    name = method["name"]
    setting = doc["setting"]
    known_hash = _registry_setting_hash(setting["name"])
    if known_hash is None:
        out.add(f"{where}.setting.name", f"unknown setting {setting['name']!r}: not in the settings registry")
        return
    if known_hash != setting["hash"]:
        out.add(
            f"{where}.setting.hash",
            f"{setting['hash']} is not the registered hash of setting {setting['name']!r} "
            f"({known_hash}): rerun with this version of w2sbench",
        )
        return
    official = baselines["settings"].get(setting["hash"])
    if official is None:
        out.add(
            f"{where}.setting.hash",
            f"setting {setting['name']!r} ({setting['hash']}) has no official baselines "
            "in baselines.json: it is not an official leaderboard setting",
        )
        return
    tol = float(baselines["tolerance"]["accuracy"])  # baselines.load and empty() always set it
    if list(doc["methods"]) != [name]:
        out.add(
            f"{where}.methods", f"must hold exactly the method {name!r} (method.name), found {sorted(doc['methods'])}"
        )
    if not doc["sealed"]["sandboxed"]:
        out.add(
            f"{where}.sealed.sandboxed",
            f"the method ran outside the OS sandbox ({doc['sealed']['why_unsealed']}): "
            "the leaderboard takes only sandboxed results",
        )
    record = doc["methods"].get(name)
    if record is None:
        return  # nothing below can be checked against a method the results do not hold
    if record["teacher_free"] != method["teacher_free"]:
        out.add("method.teacher_free", f"is {method['teacher_free']} but the results say {record['teacher_free']}")
    if record["code"]["sha256"] != method["source"]["sha256"]:
        out.add(
            "method.source.sha256",
            f"{method['source']['sha256'][:12]}... is not the hash of the code that made "
            f"these results ({record['code']['sha256'][:12]}...)",
        )
    if str(record["version"]) != str(method["version"]):
        out.add(
            "method.version", f"is {method['version']!r} but the results were made by version {record['version']!r}"
        )
    if doc["seeds"]["baseline"] != official["seeds"]:
        out.add(
            f"{where}.seeds.baseline",
            f"{doc['seeds']['baseline']} baseline seeds; the official baselines use {official['seeds']}",
        )
    by_hash = {t["task"]: h for h, t in official["tasks"].items()}
    for missing in sorted(set(by_hash) - set(doc["tasks"])):
        out.add(
            f"{where}.tasks", f"official task {missing!r} is missing (a submission covers every task of the setting)"
        )
    pgrs: list[float | None] = []
    for tname, entry in doc["tasks"].items():
        tw = f"{where}.tasks.{tname}"
        if tname not in by_hash:
            out.add(
                tw,
                f"{tname!r} is not an official task of setting {setting['name']!r} "
                f"(official: {', '.join(sorted(by_hash))})",
            )
            continue
        registered = _registry_task_hash(tname)
        if registered != entry["task_hash"] or by_hash[tname] != entry["task_hash"]:
            out.add(
                f"{tw}.task_hash",
                f"{entry['task_hash']} is not the registered hash of task {tname!r} ({registered}) "
                "used by the official baselines",
            )
            continue
        pgrs.append(_check_task(tname, entry, name, official["tasks"][entry["task_hash"]], tol, tw, out))
    summary = doc["summary"].get(name)
    if summary is None:
        out.add(f"{where}.summary", f"no summary for method {name!r}")
        return
    if len(pgrs) == len(doc["tasks"]) and pgrs:
        expected = None if any(p is None for p in pgrs) else float(np.mean(pgrs))
        rows = [e["methods"][name] for e in doc["tasks"].values() if name in e["methods"]]
        defined = sum(r["pgr"]["defined"] for r in rows)
        if not _close(summary["mean_pgr"], expected, PGR_TOL) and defined == len(rows):
            out.add(
                f"{where}.summary.{name}.mean_pgr",
                f"{summary['mean_pgr']!r} is not the mean of the tasks' PGR ({expected!r})",
            )
        elif defined < len(rows) and summary["mean_pgr"] is not None:
            out.add(f"{where}.summary.{name}.mean_pgr", "must be null: PGR is undefined on some task")
        if summary["tasks_defined"] != defined or summary["tasks"] != len(rows):
            out.add(
                f"{where}.summary.{name}.tasks_defined",
                f"says {summary['tasks_defined']}/{summary['tasks']}, the rows say {defined}/{len(rows)}",
            )
        mean_acc = float(np.mean([r["w2s"]["accuracy"] for r in rows]))
        if not _close(summary["mean_w2s_accuracy"], mean_acc, FLOAT_TOL):
            out.add(
                f"{where}.summary.{name}.mean_w2s_accuracy",
                f"{summary['mean_w2s_accuracy']!r} is not the mean over tasks ({mean_acc!r})",
            )
        _check_pooled(doc, name, f"{where}.summary.{name}", summary, out)
    _check_transfer(doc, where, out)


def _check_pooled(doc: dict, name: str, where: str, summary: dict, out: _Collector) -> None:
    """pooled_gap and pooled_pgr follow from the reported accuracies: sum(ceiling - weak) and
    sum(w2s - weak) / sum(ceiling - weak), defined exactly where the summed gap's interval excludes 0."""
    entries = [e for e in doc["tasks"].values() if name in e["methods"]]
    _, recovered, gap = pooled_pgr(
        [e["weak"]["accuracy"] for e in entries],
        [e["ceiling"]["accuracy"] for e in entries],
        [e["methods"][name]["w2s"]["accuracy"] for e in entries],
    )
    if not _close(summary["pooled_gap"], gap, PGR_TOL):
        out.add(f"{where}.pooled_gap", f"{summary['pooled_gap']!r} is not the summed ceiling - weak gap ({gap!r})")
        return
    defined = summary["pooled_gap_ci"][0] > 0
    if (summary["pooled_pgr"] is not None) != defined:
        out.add(
            f"{where}.pooled_pgr",
            f"must be {'a number' if defined else 'null'}: the summed gap's interval {summary['pooled_gap_ci']} "
            f"{'excludes' if defined else 'includes'} 0",
        )
    elif defined and not _close(summary["pooled_pgr"], recovered / gap, PGR_TOL):
        out.add(
            f"{where}.pooled_pgr",
            f"{summary['pooled_pgr']!r} does not follow from the accuracies: sum(w2s - weak) / sum(ceiling - weak) "
            f"= {recovered / gap:.6f}",
        )


def _check_transfer(doc: dict, where: str, out: _Collector) -> None:
    """The development / held-out lists name exactly the tasks of each split."""
    dev = [t for t, e in doc["tasks"].items() if e["split"] == "development"]
    held = [t for t, e in doc["tasks"].items() if e["split"] == "heldout"]
    tr = doc.get("transfer")
    if tr is None:
        if dev and held:
            out.add(f"{where}.transfer", "missing: the results hold development and held-out tasks")
        return
    for key, names in (("development", dev), ("heldout", held)):
        if sorted(tr[key]) != sorted(names):
            out.add(f"{where}.transfer.{key}", f"lists {sorted(tr[key])}, the tasks' split says {sorted(names)}")


def check_submission(doc: Any, path: str, baselines: dict, code_root: Path | None = None) -> list[ConfigError]:
    """All problems of one submission document (empty list: valid). Schema first; if that fails, only it.
    `code_root`: the folder holding leaderboard/methods/, to check the submitted code's files (see
    _check_source); None checks the paths only."""
    if isinstance(doc, dict) and "reproduced" in doc:
        return [
            ConfigError(
                path,
                "reproduced",
                "a submission cannot carry its own record of reproduction: records are written by "
                "`w2sbench leaderboard reproduce` into leaderboard/records/, never into the submission; remove it",
            )
        ]
    try:
        check_schema(doc, path)
    except ConfigError as e:
        return [e]
    out = _Collector(path)
    _check_card(doc["method"], out)
    _check_source(doc["method"], out, code_root)
    seen: dict[str, int] = {}
    for i, results in enumerate(doc["results"]):
        h = results["setting"]["hash"]
        if h in seen:
            out.add(
                f"results.{i}.setting", f"setting {results['setting']['name']!r} appears twice (also results.{seen[h]})"
            )
            continue
        seen[h] = i
        _check_results(results, i, doc["method"], baselines, out)
    return out.errors


def submission_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def validate_files(
    files: Iterable[Path], baselines: dict, submissions_dir: Path | None = None, code_root: Path | None = None
) -> tuple[list[tuple[Path, dict]], list[W2SError]]:
    """(valid (path, doc) pairs, errors). Names must be unique (case-insensitively) across `files` and the
    other submissions in `submissions_dir`; a clash is reported on the file being checked. `code_root`: the
    folder holding leaderboard/methods/, whose submitted code is read and hashed, never imported (default: the
    one holding `submissions_dir`'s leaderboard folder)."""
    from . import code_root_of

    files = [Path(f) for f in files]
    if code_root is None and submissions_dir is not None:
        code_root = code_root_of(submissions_dir)
    chosen = {f.resolve() for f in files}
    names: dict[str, Path] = {}
    if submissions_dir is not None and submissions_dir.is_dir():
        for other in submission_files(submissions_dir):
            if other.resolve() in chosen:
                continue
            try:
                name = read_json(other)["method"]["name"]
            except (W2SError, KeyError, TypeError):
                continue  # broken neighbours are reported when they are validated themselves
            if isinstance(name, str):
                names.setdefault(name.lower(), other)
    valid: list[tuple[Path, dict]] = []
    errors: list[W2SError] = []
    for path in files:
        if path.is_symlink():
            errors.append(ConfigError(str(path), "", "a symbolic link; a submission is a plain file"))
            continue
        try:
            doc = read_json(path)
        except W2SError as e:
            errors.append(e)
            continue
        problems = check_submission(doc, str(path), baselines, code_root)
        name = (
            doc.get("method", {}).get("name") if isinstance(doc, dict) and isinstance(doc.get("method"), dict) else None
        )
        if isinstance(name, str):
            if name.lower() in names:
                problems.append(
                    ConfigError(
                        str(path),
                        "method.name",
                        f"{name!r} is already used by {names[name.lower()]}; choose another name",
                    )
                )
            else:
                names[name.lower()] = path
        if problems:
            errors.extend(problems)
        else:
            valid.append((path, doc))
    return valid, errors
