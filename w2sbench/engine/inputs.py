"""What the stages read, and the keys that name it: a run's inputs (RunInputs).

The splits of each task, the two model folders (resolved once, with their records), the texts each model
reads, the frozen regime's features, and the ids of all of these that every stage key hashes; also where
the stages compute (device) and what that adds to a key. It is kept apart from the stages (engine/stages.py)
because it is the one part of a run that touches the models' files and the task data: a test gives a
Pipeline other inputs (synthetic features, toy model folders) through the harness-side seam below, and the
stages, their cache keys and the method's sealed process run unchanged around them.

The seam: `Pipeline(..., inputs=factory)`, where a factory is called as
`factory(setting, tasks, options, store, ledger)` and returns a RunInputs (a subclass overrides what it
replaces); a pipeline built inside `engine.run` (evaluate(), the CLI, the service) takes
`HARNESS_INPUTS`, which harness code sets for this process (`use_inputs(factory)`, or a test's
monkeypatch). Both are Python objects of the harness: no run spec, campaign, sweep file, method or agent
reaches them (a method runs in its sealed process; tests/test_inputs.py checks no knob names them).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import model_folders
from ..cache import ArtifactStore, hash_of, hash_texts
from ..errors import W2SError
from ..inference import get_backend
from ..inference.devices import release_memory
from ..settings import ModelSpec, Setting
from ..tasks import Splits, Task
from ..tasks.sources import SPLIT_NAMES as SPLITS
from .ledger import RunLedger
from .progress import FeatureProgress
from .spec import RunOptions

log = logging.getLogger("w2sbench")
# Which splits each model needs: the weak model learns on train_label and labels the other two; the
# strong model (ceiling and every method) trains on train_unlabel and is scored on test.
ROLE_SPLITS = {"weak": SPLITS, "strong": ("train_unlabel", "test")}


class RunInputs:
    """One setting's inputs over a list of tasks, each computed (or loaded from the store) once per run."""

    def __init__(
        self, setting: Setting, tasks: list[Task], options: RunOptions, store: ArtifactStore, ledger: RunLedger
    ):
        self.setting, self.tasks, self.options, self.store, self.ledger = setting, tasks, options, store, ledger
        self.model_dirs: dict[str, Path] = {}
        self.model_records: dict[str, dict] = {}
        self._splits: dict[str, Splits] = {}
        self._features: dict[tuple[str, str, str], np.ndarray] = {}
        self._feature_ids: dict[tuple[str, str, str], str] = {}
        self._inputs: dict[tuple[str, str, str], list[str]] = {}
        self._split_ids: dict[str, dict[str, str]] = {}
        self._device: str | None = None  # where the stages compute: "cuda" or "cpu" (self.device())

    # ---- where the stages run ----------------------------------------------------------------------
    def device(self) -> str:
        """Where this process computes the stages: "cuda" where torch sees a GPU, else "cpu". A setting that
        needs a GPU (setting.needs_gpu: device cuda, bf16, 8-bit AdamW) refuses the CPU with one line unless
        the run allows it (--allow-cpu), and then says so in the results' notes. Resolved on first use, in
        the process that computes (a Ray worker resolves its own)."""
        if self._device is None:
            from ..inference.devices import cuda_unavailable_reason

            why = cuda_unavailable_reason()
            need = self.setting.needs_gpu
            if why is not None and need and not self.options.allow_cpu:
                raise W2SError(
                    f"setting {self.setting.name!r} {need}, but there is no GPU here: {why}. Run it on a CUDA "
                    "machine, or pass --allow-cpu (evaluate(allow_cpu=True)) to run it on the CPU anyway"
                )
            self._device = "cpu" if why else "cuda"
            if why and need:
                self.ledger.note(
                    f"setting {self.setting.name} {need}, but its stages ran on the CPU (--allow-cpu): in float32, "
                    "cached apart from GPU runs and not comparable with them"
                )
        return self._device

    def device_key(self) -> dict[str, str]:
        """What a stage key adds for where it computes: nothing, except for a setting that needs a GPU run on
        the CPU (--allow-cpu), whose artifacts must never be served to a GPU run (nor the other way round)."""
        return {"device": "cpu"} if self.setting.needs_gpu and self.device() == "cpu" else {}

    # ---- splits and models ---------------------------------------------------------------------------
    def splits(self, task: Task) -> Splits:
        if task.name not in self._splits:
            with self.ledger.timed("data"):
                splits = task.load_splits(self.options.limit)
                part = (self.options.test_parts or {}).get(task.name)
                if part is not None:  # the whole run (features, weak, ceiling, method, score) sees only these
                    splits = dataclasses.replace(splits, test=[splits.test[i] for i in part])
                self._splits[task.name] = splits
        return self._splits[task.name]

    def spec(self, role: str) -> ModelSpec:
        return self.setting.spec(role)

    def model_dir(self, role: str) -> Path:
        spec = self.spec(role)
        if role not in self.model_dirs:
            with self.ledger.timed(f"resolve_{role}"):
                self.model_dirs[role] = model_folders.resolve_model(spec.model, spec.revision)
                self.model_records[role] = {
                    "id": spec.model,
                    "revision": spec.revision,
                    **model_folders.model_info(spec.model, spec.revision),
                }
        return self.model_dirs[role]

    def split_hashes(self, task: Task) -> dict[str, str]:
        if task.name not in self._split_ids:
            splits = self.splits(task)
            self._split_ids[task.name] = {s: hash_texts([e.uid for e in getattr(splits, s)]) for s in SPLITS}
        return self._split_ids[task.name]

    # ---- what each model reads -------------------------------------------------------------------------
    def model_inputs(self, role: str, task: Task, split: str) -> list[str]:
        """What the role's model reads: the bare text or the task's prompt, the latter as the user turn of
        the model's chat template when the setting says so (a chat model, as the AAR weak model). Built
        once per run: every stage key of every seed hashes them."""
        if (role, task.name, split) not in self._inputs:
            self._inputs[(role, task.name, split)] = self._build_inputs(role, task, split)
        return self._inputs[(role, task.name, split)]

    def _build_inputs(self, role: str, task: Task, split: str) -> list[str]:
        examples = getattr(self.splits(task), split)
        spec = self.spec(role)
        if spec.input == "text":
            return [e.text for e in examples]
        prompts = [task.prompt(e.text) for e in examples]
        if not spec.chat_template:
            return prompts
        from ..inference.base import load_tokenizer

        tokenizer = load_tokenizer(self.model_dir(role))
        if not getattr(tokenizer, "chat_template", None):
            raise W2SError(
                f"setting {self.setting.name!r}: {spec.model} has no chat template, but the setting's "
                f"{role}.chat_template is true"
            )
        return [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]

    def inputs_id(self, role: str, task: Task, split: str) -> str:
        """What the role's model reads on a split: the feature artifact, or the model and its texts."""
        if self.setting.regime == "frozen":
            self.features(role, task, split)
            return self._feature_ids[(role, task.name, split)]
        self.model_dir(role)
        record = self.model_records[role]
        return hash_of(
            {
                "model": record["id"],
                "source": record.get("source"),
                "conversion": record.get("conversion"),
                "texts": hash_texts(self.model_inputs(role, task, split)),
            }
        )

    # ---- features (frozen backbones) -------------------------------------------------------------------
    def feature_key(self, role: str, task: Task, split: str, backend_name: str) -> dict:
        spec = self.spec(role)
        texts = self.model_inputs(role, task, split)
        return {
            "model": spec.model,
            "revision": spec.revision,
            "source": self.model_records[role].get("source"),
            "conversion": self.model_records[role].get("conversion"),
            "pooling": spec.pooling,
            "input": spec.input,
            "max_length": spec.max_length,
            "texts": hash_texts(texts),
            "n": len(texts),
            "backend": backend_name,
            "dtype": "float32",
            **self.device_key(),
        }

    def compute_features(self, role: str) -> None:
        """Features of every split the role needs, for every task; one engine start for the model."""
        model_dir = self.model_dir(role)
        release_memory()  # whatever an earlier stage left on the GPU, before the engine sizes itself
        backend, note = get_backend(
            self.options.backend, model_dir, purpose="features", tensor_parallel_size=self.options.tensor_parallel_size
        )
        self.ledger.backend_used[f"features:{role}"] = backend.name
        if note:
            self.ledger.note(note)
            log.info(note)
        spec = self.spec(role)
        started: list[bool] = []
        stage = f"features_{role}"
        keys = {(t.name, s): self.feature_key(role, t, s, backend.name) for t in self.tasks for s in ROLE_SPLITS[role]}
        todo = [k["n"] for k in keys.values() if not self.store.folder(stage, k).exists()]
        progress = FeatureProgress(role, spec.model, backend.name, todo, len(keys) - len(todo))
        try:
            for task in self.tasks:
                for split in ROLE_SPLITS[role]:
                    key = keys[(task.name, split)]

                    def compute(task=task, split=split):
                        self.device()  # a setting that needs a GPU refuses the CPU here
                        texts = self.model_inputs(role, task, split)
                        begun = time.perf_counter()
                        if not started:
                            started.append(True)
                            log.info(
                                f"{role} model {spec.model}: computing features on {backend.name}"
                                + (
                                    " (starting the engine takes up to a minute on a CPU)"
                                    if backend.name == "vllm"
                                    else ""
                                )
                            )
                        feats = backend.features(
                            model_dir, texts, spec.pooling, spec.max_length, desc=f"{role} features {task.name}/{split}"
                        )
                        progress.split_done(len(texts), time.perf_counter() - begun)
                        return {"features": np.asarray(feats, dtype=np.float32)}, {"backend": backend.describe()}

                    with self.ledger.timed(stage):
                        art = self.store.get_or_compute(stage, key, compute)
                    self.ledger.device_used(f"features:{role}", art["meta"].get("backend", {}).get("device"))
                    self._features[(role, task.name, split)] = art["features"]
                    self._feature_ids[(role, task.name, split)] = hash_of(key)
        finally:
            backend.close()  # free the engine before the next model's starts
            release_memory()

    def features(self, role: str, task: Task, split: str) -> np.ndarray:
        if (role, task.name, split) not in self._features:
            self.compute_features(role)
        return self._features[(role, task.name, split)]


# ---- the harness-side seam ------------------------------------------------------------------------------
InputsFactory = Callable[[Setting, list[Task], RunOptions, ArtifactStore, RunLedger], RunInputs]
# The factory of a Pipeline built without `inputs` in this process (evaluate(), the service's jobs): set only
# by harness code (a test's monkeypatch.setattr, use_inputs), read when each Pipeline is built.
HARNESS_INPUTS: InputsFactory = RunInputs


def harness_inputs() -> InputsFactory:
    return HARNESS_INPUTS


@contextmanager
def use_inputs(factory: InputsFactory) -> Iterator[None]:
    """Within the block, a Pipeline built without `inputs` in this process takes `factory`'s: how a test runs
    the real entry points on synthetic inputs."""
    global HARNESS_INPUTS
    before, HARNESS_INPUTS = HARNESS_INPUTS, factory
    try:
        yield
    finally:
        HARNESS_INPUTS = before
