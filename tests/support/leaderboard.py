"""Synthetic but real-shaped leaderboard inputs: results JSONs built by the harness's own build_results
and bootstrap_pgr from simulated predictions on the official tasks of the `tiny` setting, so tests run
in seconds without models; each method's code a real folder leaderboard/methods/NAME/ whose hash the results
and the submission pin; records of reproduction (leaderboard/records/NAME.json) as `leaderboard reproduce`
writes them, here holding the submitted vectors as if the rerun matched them exactly (tests of the
reproduction itself: tests/test_reproduce.py). (Holds helpers only; its tests live in test_leaderboard*.py.)"""

from __future__ import annotations

import functools
import json
import tempfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from w2sbench.engine.record import MethodRun, RunRecord, TaskRun
from w2sbench.engine.spec import RunOptions
from w2sbench.leaderboard import baselines as bl
from w2sbench.leaderboard.submission import make_submission, write_submission
from w2sbench.methods.base import Method
from w2sbench.methods.identity import method_source, source_of
from w2sbench.reports.results import build_results
from w2sbench.scoring import bootstrap_pgr, decode_correct
from w2sbench.settings import load_setting
from w2sbench.tasks import load_task

TASKS = ("rotten_tomatoes", "sms_spam")
WEAK_ACC, CEILING_ACC = 0.70, 0.86


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def _probs(labels: np.ndarray, acc: float, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """[seeds, n] p(label=1), right on about `acc` of the examples."""
    correct = rng.random((seeds, len(labels))) < acc
    hard = np.where(correct, labels[None, :], 1 - labels[None, :])
    return np.clip(hard * 0.8 + 0.1 + rng.normal(0, 0.05, hard.shape), 0, 1)


def _improve(probs: np.ndarray, labels: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Each seed's predictions made right on round(frac * n) examples it got wrong, chosen at random."""
    out = probs.copy()
    for row in out:
        wrong = np.flatnonzero((row >= 0.5) != labels)
        fix = rng.choice(wrong, size=min(len(wrong), round(frac * len(labels))), replace=False)
        row[fix] = 1 - row[fix]
    return out


def make_method(name: str, teacher_free: bool = False) -> type[Method]:
    return type(
        f"M_{name}",
        (Method,),
        {
            "name": name,
            "description": f"test method {name} for the leaderboard",
            "uses_weak_labels": not teacher_free,
            "__module__": __name__,
        },
    )


def make_results(
    methods: dict,
    tasks=TASKS,
    teacher_free: tuple[str, ...] = (),
    n_boot: int = 300,
    setting: str = "tiny",
    perturbed: tuple[str, float] | None = None,
) -> dict:
    """A results JSON of `setting` over `tasks` at their official sizes; methods: name -> target w2s accuracy,
    or (other method, frac): the other's predictions made right on frac of the test examples more (a method
    whose predictions are correlated with another's). Weak and ceiling predictions depend only on the task,
    as the shared cached baselines do; a method's predictions on another setting than tiny are drawn apart.
    `perturbed`: (knob, factor), the setting's strong recipe perturbed (the predictions drawn as given)."""
    where = () if setting == "tiny" else (setting,)
    setting = load_setting(setting)
    if perturbed:  # a run under the strong recipe perturbed (w2sbench eval --perturb-recipe)
        setting = setting.perturbed(*perturbed)
    runs = []
    for tname in tasks:
        task = load_task(tname)
        sizes = task.config["splits"]
        base = np.random.default_rng(_seed("baseline", tname))
        labels = base.integers(0, 2, sizes["test"])
        weak, ceiling = _probs(labels, WEAK_ACC, 3, base), _probs(labels, CEILING_ACC, 3, base)
        splits = SimpleNamespace(
            train_label=[None] * sizes["train_label"],
            train_unlabel=[None] * sizes["train_unlabel"],
            test=[SimpleNamespace(label=int(y)) for y in labels],
        )
        tr = TaskRun(task, splits, weak, ceiling)
        for name, acc in methods.items():
            cls = make_method(name, name in teacher_free)
            if isinstance(acc, tuple):  # (other, frac): other's predictions, right on frac more of the examples
                other, frac = acc
                w2s = _probs(labels, methods[other], 3, np.random.default_rng(_seed("method", other, tname, *where)))
                w2s = _improve(w2s, labels, frac, np.random.default_rng(_seed("improve", name, tname, *where)))
            else:
                w2s = _probs(labels, acc, 3, np.random.default_rng(_seed("method", name, tname, *where)))
            tr.methods[name] = MethodRun(cls, w2s, [{"train_examples": 1}] * 3, [0, 1, 2])
            tr.scores[name] = bootstrap_pgr(labels, weak, ceiling, w2s, n_boot=n_boot, task=tname)
        runs.append(tr)
    record = RunRecord(
        setting=setting,
        tasks=runs,
        models={"weak": {"id": setting.weak.model}, "strong": {"id": setting.strong.model}},
        baseline_seeds=3,
        method_seeds=3,
        options=RunOptions(backend="hf", n_boot=n_boot),
        backend_used={"features:weak": "hf", "features:strong": "hf"},
        notes=[],
        timings={"total": 1.0},
        cache_hits={},
        cache_misses={},
        cache_recomputed={},
        method_sources={name: method_source(tr.methods[name].method) for tr in runs for name in tr.methods},
        sandbox={"mechanism": "bubblewrap (test fixture)"},
    )
    doc = build_results(record)
    for name, row in doc["methods"].items():
        row["code"]["sha256"] = code_sha(name)  # as if run from leaderboard/methods/NAME/ (write_code)
    return doc


def code_text(name: str) -> str:
    """The source of test method `name` as submitted under leaderboard/methods/NAME/__init__.py."""
    return (
        "from w2sbench.methods import Method\n\n\n"
        f"class M_{name}(Method):\n"
        f"    name = {name!r}\n"
        f"    description = 'test method {name} for the leaderboard'\n\n"
        "    def run(self, ctx):\n"
        "        return ctx.weak_test\n"
    )


def write_code(root: Path, name: str) -> Path:
    """root/leaderboard/methods/NAME/__init__.py; returns the folder."""
    folder = root / "leaderboard" / "methods" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(code_text(name))
    return folder


@functools.cache
def code_sha(name: str) -> str:
    """The hash of test method `name`'s folder (methods.identity: its files, wherever the folder is)."""
    folder = write_code(Path(tempfile.mkdtemp(prefix="w2s-code-")), name)
    return source_of({"kind": "folder", "path": str(folder)}).sha256


CARD = {"authors": ["Test Author"], "code": "https://example.org/code", "license": "MIT"}


def as_submitted_folder(sub: dict) -> dict:
    """The test methods are named in this module; a real submission's code lives under leaderboard/methods/NAME/
    (write_code), whose hash the results pin (make_results)."""
    name = sub["method"]["name"]
    sub["method"]["source"] = {
        "kind": "folder",
        "path": f"leaderboard/methods/{name}",
        "entry": f"leaderboard/methods/{name}/__init__.py:M_{name}",
        "sha256": code_sha(name),
    }
    return sub


def make_record(sub: dict, path: Path, vectors: dict | None = None, ok: bool = True) -> dict:
    """What `w2sbench leaderboard reproduce` writes for the submission at `path` when the rerun matches: the
    rerun's correctness vectors are the submitted ones unless `vectors` ({setting: {task: encoded}}) says
    otherwise (a rerun that differs within tolerance). For tests of what the build does with a record."""
    from w2sbench.leaderboard.records import SCHEMA_VERSION, submission_digest
    from w2sbench.leaderboard.reproduce import AGREEMENT_MIN, REPRODUCE_TOL

    name = sub["method"]["name"]
    settings = {}
    for r in sub["results"]:
        tasks = {}
        for t, e in r["tasks"].items():
            w2s = e["methods"][name]["w2s"]
            correct = (vectors or {}).get(r["setting"]["name"], {}).get(t, w2s["correct"])
            n = e["n"]["test"]
            got = float(decode_correct(correct, n).mean(axis=1).mean())
            tasks[t] = {
                "task_hash": e["task_hash"],
                "n_test": n,
                "submitted": w2s["accuracy"],
                "reproduced": got,
                "difference": got - w2s["accuracy"],
                "agreement": float(np.mean(decode_correct(correct, n) == decode_correct(w2s["correct"], n))),
                "flags": [],
                "correct": list(correct),
                "auroc_per_seed": list(w2s["auroc_per_seed"]),
            }
        settings[r["setting"]["name"]] = {
            "hash": r["setting"]["hash"],
            "seeds": dict(r["seeds"]),
            "config": r["methods"][name].get("config", {}),
            "backend": {"features:strong": "hf"},
            "hardware": {"cpu": "test fixture"},
            "tasks": tasks,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "submission": {"file": str(path), "sha256": submission_digest(sub)},
        "method": name,
        "code_sha256": sub["method"]["source"]["sha256"],
        "harness_sha256": "1" * 64,
        "submitted_harness_sha256": ["1" * 64],
        "ok": ok,
        "failures": [] if ok else ["tiny/rotten_tomatoes: w2s accuracy 70.0% reproduced vs 84.0% submitted"],
        "date": "2026-12-01T00:00:00+00:00",
        "since": "2026-12-01T00:00:00+00:00",
        "commit": "0" * 40,
        "w2sbench_version": "test",
        "tolerance": REPRODUCE_TOL,
        "agreement_min": AGREEMENT_MIN,
        "sandbox": {"mechanism": "bubblewrap (test fixture)"},
        "described": {"teacher_free": sub["method"]["teacher_free"], "non_default_recipe": False},
        "settings": settings,
    }


def mark_reproduced(sub: dict, path: Path, **kwargs) -> Path:
    """Write the record of `sub` (at `path`, in <board>/submissions/) into <board>/records/."""
    from w2sbench.leaderboard.records import write_record

    return write_record(make_record(sub, path, **kwargs), path.parent.parent / "records", path)


def write_board(
    root: Path,
    methods: dict,
    teacher_free: tuple[str, ...] = (),
    non_default: tuple[str, ...] = (),
    unreproduced: tuple[str, ...] = (),
    tasks: tuple[str, ...] = TASKS,
    second: dict | None = None,
) -> Path:
    """root/leaderboard/{baselines.json, submissions/<name>.json, methods/<name>/, records/<name>.json} for
    the given methods (a record unless named in `unreproduced`); `second`: method -> accuracy on the second
    official setting, tiny-smollm2, in the submissions of those methods too; returns the folder."""
    board = root / "leaderboard"
    (board / "submissions").mkdir(parents=True, exist_ok=True)
    references = [("reference.json", make_results({"vanilla_ref": 0.75}, tasks=tasks))]
    if second:
        references.append(("second.json", make_results({"vanilla_ref": 0.75}, tasks=tasks, setting="tiny-smollm2")))
    bl.save(bl.update(bl.empty(), references), board / "baselines.json")
    for name, acc in methods.items():
        basis = {acc[0]: methods[acc[0]]} if isinstance(acc, tuple) else {}  # (other, frac): other's run too
        docs = [("results.json", make_results({**basis, name: acc}, tasks=tasks, teacher_free=teacher_free))]
        if second and name in second:
            docs.append(("second.json", make_results({name: second[name]}, tasks=tasks, setting="tiny-smollm2")))
        overrides = dict(CARD)
        if name in non_default:
            overrides.update(non_default_recipe=True, recipe_notes="trains 3x longer than the fixed recipe")
        sub = as_submitted_folder(make_submission(docs, name, make_method(name, name in teacher_free), overrides))
        write_code(root, name)
        path = write_submission(sub, board / "submissions" / f"{name}.json")
        if name not in unreproduced:
            mark_reproduced(sub, path)
    return board


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())
