"""Sealed labels: the method stage runs in its own process that holds no ground truth; bad predictions
are refused with a clear message; the cached method stage is still a hit on rerun.

The pipeline here is the real one with its feature stage replaced by synthetic arrays (no model runs), so
each test costs one child interpreter start, not a model."""

from __future__ import annotations

import gc
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from w2sbench.errors import W2SError
from w2sbench.isolation import sealed
from w2sbench.isolation.described import described, load_unit_spec, unit_spec
from w2sbench.isolation.resolve import described_class
from w2sbench.methods import Method, MethodContext, load_method
from w2sbench.methods.identity import origin_of

try:  # the sandbox loads this file's methods by its path, without tests/ on sys.path: they need the sizes only
    from support.toy import N_TEST, N_UNLABEL, make_pipeline
except ModuleNotFoundError:
    N_UNLABEL, N_TEST = 30, 20  # as tests/support/toy.py's (test_the_sizes_are_the_toy_tasks checks)


FOUND = "hostile method found: "


def find_label_like(root_objects=None) -> dict:
    """What a hostile method would look for: task/data objects, and 0/1 sequences of a split's length."""
    found = {"objects": [], "arrays": []}
    warnings.simplefilter("ignore")  # some modules warn when their deprecated attributes are touched
    for obj in gc.get_objects() if root_objects is None else root_objects:
        try:
            kind = type(obj).__name__
            if kind in ("Example", "Splits", "Task", "TaskRun"):
                found["objects"].append(kind)
            elif isinstance(obj, (np.ndarray, list, tuple)) and len(obj) in (N_UNLABEL, N_TEST):
                values = np.asarray(obj, dtype=np.float64).ravel()
                if values.size == len(obj) and np.isin(values, (0.0, 1.0)).all():
                    found["arrays"].append(values.astype(int).tolist())
        except Exception:
            continue
    return found


class Hostile(Method):
    """Walks everything reachable in its process (gc, the context, its closures, the sealed module's
    globals) for anything label-like, prints what it found on its stderr (which the harness captures as the
    method's console: replies carry plain numbers only) and returns 0.5s."""

    name = "hostile"

    def run(self, ctx: MethodContext) -> np.ndarray:
        reachable = [ctx, *vars(ctx).values(), *vars(sealed).values()]
        for fn in (ctx._label_probs, ctx._generate):
            reachable += [c.cell_contents for c in (fn.__closure__ or ())]
            reachable += list(getattr(fn, "__globals__", {}).values())
        found = find_label_like()
        extra = find_label_like(reachable)
        found["objects"] += extra["objects"]
        found["arrays"] += extra["arrays"]
        print(FOUND + json.dumps(found), file=sys.stderr, flush=True)  # the sandbox lets it write no file we read
        return np.full(len(ctx.test_texts), 0.5)


def test_hostile_method_finds_no_labels(tmp_path, capfd):
    pipe, task = make_pipeline(tmp_path)
    splits = pipe.splits(task)
    truth = [[e.label for e in splits.test], [e.label for e in splits.train_unlabel]]
    truth += [[1 - v for v in t] for t in truth]
    # control: in the harness process the same search does find them (so the detector works)
    here = find_label_like()
    assert "Example" in here["objects"]
    probs, compute, _ = pipe.run_method(task, Hostile, 0)
    pipe.isolation.close()
    assert FOUND not in capfd.readouterr().err  # its console is never the harness's
    lines = [line for line in pipe.ledger.consoles["hostile"].splitlines() if line.startswith(FOUND)]
    found = json.loads(lines[-1][len(FOUND) :])
    assert found["objects"] == []
    assert not any(a in truth for a in found["arrays"])
    assert compute["sealed"] is True and probs.shape == (N_TEST,)
    assert compute["saw"] == []  # it read nothing through the context's accessors


class BadPredictions(Method):
    """Returns a different kind of bad output for each seed."""

    name = "bad_predictions"

    def run(self, ctx: MethodContext) -> object:
        n = len(ctx.test_texts)
        return [np.zeros(n + 1), np.full(n, np.nan), np.full(n, 1.5), "all positive"][ctx.seed]


class Crashes(Method):
    name = "crashes"

    def run(self, ctx: MethodContext) -> np.ndarray:
        raise KeyError("no such column")


class SecretlyUsesWeak(Method):
    name = "secretly_uses_weak"
    uses_weak_labels = False

    def run(self, ctx: MethodContext) -> np.ndarray:
        return ctx.weak_test


def test_bad_predictions_and_failures_are_refused_clearly(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    expected = [r"shape \(21,\); expected \(20,\)", "NaN or infinite predictions", r"outside \[0, 1\]", "not numbers"]
    for seed, pattern in enumerate(expected):
        with pytest.raises(W2SError, match=pattern):
            pipe.run_method(task, BadPredictions, seed)
    with pytest.raises(
        W2SError,
        match=r"'crashes' failed on task 'toy' seed 0; its own error: KeyError: 'no such column' \(File .*test_sealed",
    ):
        pipe.run_method(task, Crashes, 0)
    with pytest.raises(W2SError, match="declares uses_weak_labels=False but read the weak labels"):
        pipe.run_method(task, SecretlyUsesWeak, 0)
    assert not pipe.store.folder("method", {}).parent.exists() or not any(
        (pipe.store.root / "method").iterdir()
    )  # nothing refused was cached


def test_cached_method_stage_is_a_hit_without_a_process(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    probs, compute, weak_seed = pipe.run_method(task, load_method("vanilla"), 4)
    assert weak_seed == 4 % pipe.baseline_seeds and compute["train_example_epochs"] == N_UNLABEL * 20
    assert compute["saw"] == [
        "strong-model features of test",
        "strong-model features of train_unlabel",
        "weak soft labels on train_unlabel",
    ]
    again, _ = make_pipeline(tmp_path)
    probs2, compute2, _ = again.run_method(task, load_method("vanilla"), 4)
    assert again.store.hits["method"] == 1 and again.store.misses.get("method", 0) == 0
    assert again.isolation.runners == {}  # no process was started for a hit
    assert np.array_equal(probs, probs2) and compute2 == compute


def test_method_origin_round_trip(tmp_path):
    """A built-in is named by its module; any other class by where its code is, and the harness uses its
    stand-in (described by the sandboxed probe), which a unit spec rebuilds elsewhere without importing."""
    assert origin_of(load_method("logconf")) == {"kind": "builtin", "module": "w2sbench.methods.builtin"}
    assert unit_spec(load_method("logconf")) == "w2sbench.methods.builtin:LogConf"
    assert load_unit_spec("w2sbench.methods.builtin:LogConf") is load_method("logconf")
    assert origin_of(Crashes) == {"kind": "file", "path": str(Path(__file__).absolute())}  # a test module
    stand = described_class(Crashes)
    assert described(stand) is not None and stand.name == "crashes" and stand is not Crashes
    assert origin_of(stand) == origin_of(Crashes)
    f = tmp_path / "mine.py"
    f.write_text("from w2sbench.methods import LossMethod\nclass Mine(LossMethod):\n    name = 'mine'\n")
    import w2sbench

    cls = w2sbench.load_method(f"{f}:Mine")
    assert origin_of(cls) == {"kind": "file", "path": str(f)}
    again = load_unit_spec(unit_spec(cls))
    assert again.name == "mine" and described(again) == described(cls)
    with pytest.raises(W2SError, match="not a built-in method"):
        load_unit_spec("os:system")  # a unit names a built-in or a description, never a module to import


def test_child_picks_a_backend_per_model(monkeypatch):
    """With --backend auto, the weak and strong models may need different engines for the same purpose
    (vLLM for a causal LM, hf for an encoder): the child must not reuse the first model's choice."""
    import w2sbench.inference as inference

    picked = {"/m/causal": "vllm", "/m/encoder": "hf"}
    monkeypatch.setattr(
        inference,
        "get_backend",
        lambda name, model_dir, purpose, tensor_parallel_size=1: (picked[str(model_dir)], None),
    )
    models = sealed._Models()
    assert models.backend("auto", "/m/causal", "label_probs") == "vllm"
    assert models.backend("auto", "/m/encoder", "label_probs") == "hf"
    assert models.backend("auto", "/m/causal", "label_probs") == "vllm" and len(models.backends) == 2


def test_the_sizes_are_the_toy_tasks():
    import support.toy

    assert (N_UNLABEL, N_TEST) == (support.toy.N_UNLABEL, support.toy.N_TEST)
