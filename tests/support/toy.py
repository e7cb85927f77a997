"""A small local task whose features are synthetic label-dependent arrays (no model runs), with the real
Pipeline, sealed method process and cache around it; a hostile method in a file of its own; a method
context on synthetic features."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from w2sbench import load_method
from w2sbench.cache import ArtifactStore
from w2sbench.engine import inputs
from w2sbench.engine.inputs import InputsFactory, RunInputs
from w2sbench.engine.pipeline import Pipeline
from w2sbench.engine.spec import RunOptions
from w2sbench.methods import MethodContext
from w2sbench.settings import load_setting
from w2sbench.tasks import load_task
from w2sbench.training import FrozenTrainer, Recipe

N_UNLABEL, N_TEST = 30, 20


class ToyInputs(RunInputs):
    """The inputs job on synthetic features: `feats[(role, split)]` for every task, `root/weak` and
    `root/strong` as the model folders (nothing reads them: the method process gets the features), and a
    fixed id per role and split in the stage keys. `records`: record each model as its setting names it
    (evaluate()'s results need a model id; a Pipeline built by hand does not)."""

    def __init__(self, *args, root: Path, feats: dict, records: bool = False):
        super().__init__(*args)
        self.root, self.feats, self.records = root, feats, records

    def features(self, role, task, split):
        return self.feats[(role, split)]

    def inputs_id(self, role, task, split):
        return f"{role}-{split}"

    def compute_features(self, role):
        pass

    def model_dir(self, role):
        if self.records:
            self.model_records.setdefault(role, {"id": self.setting.spec(role).model})
        return self.root / role


def toy_inputs(root: Path, feats: dict, records: bool = False) -> InputsFactory:
    """The factory Pipeline(..., inputs=) takes: ToyInputs over `feats` (filled in by make_pipeline)."""
    return functools.partial(ToyInputs, root=root, feats=feats, records=records)


def make_pipeline(tmp_path: Path, options: RunOptions | None = None) -> tuple[Pipeline, object]:
    """A real Pipeline on a small local task whose features are synthetic (label-dependent) arrays."""
    rng = np.random.default_rng(0)
    rows = [
        {"review": f"review {i} " + ("great" if i % 2 else "awful"), "stars": 5 if i % 2 else 1} for i in range(120)
    ]
    (tmp_path / "toy.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "toy.yaml").write_text(
        "task: toy\nversion: 1\ndescription: synthetic sealed-label test task\ntags: [fixture]\n"
        'source: {type: local, path: toy.jsonl}\ntext: "{review}"\nlabel: {field: stars, positive_if: "> 3"}\n'
        'prompt: "Review: {text}\\nSentiment:"\nlabel_words: [" negative", " positive"]\n'
        f"splits: {{train_label: 30, train_unlabel: {N_UNLABEL}, test: {N_TEST}, seed: 0}}\n"
        "card: {source: generated in the test, citation: none, license: Apache-2.0}\n"
    )
    task = load_task(str(tmp_path / "toy.yaml"))
    feats: dict = {}  # filled below, from the splits the pipeline loads
    pipe = Pipeline(
        load_setting("tiny"),
        [task],
        options or RunOptions(),
        store=ArtifactStore(tmp_path / "cache"),
        inputs=toy_inputs(tmp_path, feats),
    )
    splits = pipe.splits(task)
    for split in ("train_label", "train_unlabel", "test"):
        y = np.array([e.label for e in getattr(splits, split)])
        for role in ("weak", "strong"):
            x = rng.normal(size=(len(y), 3)).astype(np.float32)
            x[:, 0] += (1.0 if role == "weak" else 3.0) * (2 * y - 1)
            feats[(role, split)] = x
    return pipe, task


def toy_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """evaluate() on the toy task: every Pipeline this process builds takes the synthetic features (the
    harness-side seam engine.inputs.HARNESS_INPUTS, restored when the test ends)."""
    pipe, _ = make_pipeline(tmp_path)
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", str(tmp_path))
    monkeypatch.setattr(inputs, "HARNESS_INPUTS", toy_inputs(tmp_path, pipe.inputs.feats, records=True))
    return {"tasks": "toy", "method_seeds": 2, "baseline_seeds": 2, "n_boot": 200, "cache": tmp_path / "cache"}


def method_file(tmp_path: Path, body: str, name: str = "hostile") -> type:
    """A method whose run() is `body` (ctx in scope), in its own file, loaded as --method file.py:Hostile."""
    folder = tmp_path / f"method_{name}"
    folder.mkdir(exist_ok=True)
    path = folder / "hostile.py"
    path.write_text(
        "import os, socket, sys, time\nimport numpy as np\nfrom w2sbench.methods import Method\n\n\n"
        f"class Hostile(Method):\n    name = {name!r}\n\n    def run(self, ctx):\n"
        + textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
        + "\n        return np.full(len(ctx.test_texts), 0.5)\n"
    )
    return load_method(f"{path}:Hostile")


def pipe_job(pipe, task, cls, seed: int, text: str):
    """The MethodJob the pipeline would send for `seed`, with every unlabelled text replaced by `text`."""
    from w2sbench.isolation import sealed

    splits, weak = pipe.splits(task), pipe.weak_labels(task, 0)
    return sealed.MethodJob(
        task=task.name,
        setting=pipe.setting.name,
        seed=seed,
        unlabel_texts=[text] * len(splits.train_unlabel),
        test_texts=[e.text for e in splits.test],
        weak_unlabel=weak["train_unlabel"],
        weak_test=weak["test"],
        trainer=pipe.trainer("strong", task),
        label_words=list(task.label_words),
        prompt_template=task.prompt_template,
        model_dirs={},
    )


def make_ctx(weak=None, n=60, n_test=20, label_probs=None, seed=0) -> MethodContext:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n + n_test)
    x = rng.normal(size=(n + n_test, 4)).astype(np.float32)
    x[:, 0] += 4 * (2 * y - 1)
    if weak is None:
        weak = np.clip(np.where(y[:n] == 1, 0.8, 0.2) + rng.normal(0, 0.1, n), 0.01, 0.99)
    weak = np.asarray(weak, dtype=np.float32)
    n = len(weak)
    feats = {"train_unlabel": x[:n], "test": x[n : n + n_test]}
    return MethodContext(
        task="synthetic",
        setting="tiny",
        seed=seed,
        unlabel_texts=tuple(f"u{i}" for i in range(n)),
        test_texts=tuple(f"t{i}" for i in range(n_test)),
        _weak_unlabel=weak,
        _weak_test=np.full(n_test, 0.5, np.float32),
        trainer=FrozenTrainer(feats, Recipe(epochs=20, batch_size=16, lr=0.05)),
        label_words=(" no", " yes"),
        prompt_template="Q: {text}\nA:",
        _label_probs=label_probs,
    ), y[n : n + n_test]


def make_ctx_only(**kw) -> MethodContext:
    return make_ctx(**kw)[0]
