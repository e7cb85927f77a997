"""A small local task for the scoring service's tests: real task YAML and data files, the real pipeline and
sandboxed method process, with synthetic label-dependent features in place of the two models (as in
tests/support/toy.py), so that a job takes seconds. `python tests/serve_toy.py ROOT CAMPAIGN` runs the real service
on it (the kill -9 test)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np

from w2sbench.engine import inputs
from w2sbench.engine.inputs import RunInputs

SIZES = {"train_label": 60, "train_unlabel": 120, "test": 400}


def write_task(root: Path, name: str = "toy", sizes: dict | None = None) -> None:
    sizes = sizes or SIZES
    n = 2 * sum(sizes.values())
    rng = np.random.default_rng(1)
    rows = [
        {"review": f"review {i} {'great' if s else 'awful'}", "stars": 5 if s else 1}
        for i, s in enumerate(rng.random(n) < 0.5)
    ]
    (root / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (root / f"{name}.yaml").write_text(
        f"task: {name}\nversion: 1\ndescription: synthetic task for the service tests\ntags: [fixture]\n"
        f"source: {{type: local, path: {name}.jsonl}}\n"
        'text: "{review}"\nlabel: {field: stars, positive_if: "> 3"}\n'
        'prompt: "Review: {text}\\nSentiment:"\nlabel_words: [" negative", " positive"]\n'
        f"splits: {{train_label: {sizes['train_label']}, train_unlabel: {sizes['train_unlabel']}, "
        f"test: {sizes['test']}, seed: 0}}\n"
        "card: {source: generated in the test, citation: none, license: Apache-2.0}\n"
    )


class ServeToyInputs(RunInputs):
    """The inputs job on synthetic features drawn from each split's labels, `root/weak` and `root/strong` as
    the model folders (nothing reads them), and a fixed id per role, task and split in the stage keys."""

    def __init__(self, *args, root: Path):
        super().__init__(*args)
        self.root = root

    def features(self, role, task, split):
        y = np.array([e.label for e in getattr(self.splits(task), split)])
        seed = {"weak": 0, "strong": 1}[role] * 10 + ("train_label", "train_unlabel", "test").index(split)
        x = np.random.default_rng(seed).normal(size=(len(y), 4)).astype(np.float32)
        x[:, 0] += (0.35 if role == "weak" else 2.5) * (2 * y - 1)
        return x

    def inputs_id(self, role, task, split):
        return f"{role}-{task.name}-{split}"

    def compute_features(self, role):
        pass

    def model_dir(self, role):
        return self.root / role


def patch(root: Path, setattr_=setattr) -> None:
    """Synthetic features instead of the models (what test_sealed does), for every Pipeline this process builds:
    the harness-side seam engine.inputs.HARNESS_INPUTS (a test passes monkeypatch.setattr, restored after it)."""
    setattr_(inputs, "HARNESS_INPUTS", functools.partial(ServeToyInputs, root=root))


def campaign_yaml(root: Path, tokens: dict[str, str], **extra) -> Path:
    from w2sbench.serve.campaign import token_sha256

    agents = {name: {"token_sha256": token_sha256(t), "evaluations": 30} for name, t in tokens.items()}
    for name, budget in extra.pop("budgets", {}).items():
        agents[name].update(budget)
    doc = {
        "name": "toy-campaign",
        "setting": "tiny",
        "tasks": {"development": ["toy"], "include": [str(root)], **extra.pop("tasks", {})},
        "method_seeds": 2,
        "baseline_seeds": 2,
        "rule": extra.pop("rule", {"kind": "ladder", "step": 0.05}),
        "agents": agents,
        "state": str(root / "state"),
        "cache": str(root / "cache"),
        "listen": {"host": "127.0.0.1", "port": extra.pop("port", 0)},
        **extra,
    }
    path = root / "campaign.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


if __name__ == "__main__":
    root = Path(sys.argv[1])
    patch(root)
    from w2sbench.cli import main

    main(["serve", sys.argv[2]])
