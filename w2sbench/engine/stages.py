"""The stages over a run's inputs: weak (and its soft labels), ceiling and the sealed method job, each a pure
function of its inputs cached in the ArtifactStore under a key that hashes them.

Every stage but `method` is shared by all methods of a setting, so a second method (or a rerun after an
interruption) recomputes nothing it already has. The stages read their inputs (splits, features, model
folders, the ids that go into each key) from a RunInputs (engine/inputs.py), record what they did in the
run's ledger (engine/ledger.py) and run each method through the run's isolation (isolation/wiring.py): they
never load a model folder or a task file themselves, which is what lets a test give them other inputs.
Which unit runs which stage, with which seeds, is the unit runner's (engine/pipeline.py).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import ArtifactStore, hash_array
from ..errors import W2SError
from ..inference.devices import release_memory
from ..isolation import sealed
from ..isolation.wiring import MethodIsolation
from ..methods.base import Method
from ..methods.identity import harness_source
from ..settings import Setting
from ..tasks import Task
from ..training.students import FineTuneTrainer, FrozenTrainer, Trainer
from .inputs import ROLE_SPLITS, RunInputs
from .ledger import RunLedger
from .spec import RunOptions


class Stages:
    """The stages of one setting. `runners`: method processes to share with other pipelines of the same run
    (a Ray worker's)."""

    def __init__(
        self,
        setting: Setting,
        options: RunOptions,
        inputs: RunInputs,
        store: ArtifactStore,
        ledger: RunLedger,
        runners: dict[str, sealed.SealedRunner] | None = None,
    ):
        self.setting, self.options, self.inputs, self.store, self.ledger = setting, options, inputs, store, ledger
        self.isolation = MethodIsolation(
            unsealed=options.unsealed,
            timeout_s=options.method_timeout_s or setting.method_timeout_s,
            setting_quotas=setting.quotas,
            quota_override=options.method_quota,
            model_dirs=lambda: [str(self.inputs.model_dir(r)) for r in ("weak", "strong")],
            sandbox_used=ledger.sandbox_used,
            runners=runners,
            console_seen=ledger.console_seen,
        )

    # ---- the fixed trainer, per role ------------------------------------------------------------------
    def trainer(self, role: str, task: Task) -> Trainer:
        """The setting's regime for a role on a task: cached features + head, or fine-tuning."""
        recipe = self.setting.recipes[role]
        if self.setting.regime == "frozen":
            return FrozenTrainer({s: self.inputs.features(role, task, s) for s in ROLE_SPLITS[role]}, recipe)
        spec = self.inputs.spec(role)
        return FineTuneTrainer(
            str(self.inputs.model_dir(role)),
            {s: self.inputs.model_inputs(role, task, s) for s in ROLE_SPLITS[role]},
            recipe,
            spec.pooling,
            spec.max_length,
            tuple(task.label_words),
            self.inputs.device(),  # every student of the run, the method's included, trains where the baselines did
        )

    # ---- the key of a trained stage --------------------------------------------------------------------
    def stage_key(self, stage: str, task: Task, seed: int, role: str) -> dict:
        return {
            "stage": stage,
            "setting": self.setting.hash,
            "task": task.hash,
            "seed": seed,
            "train": self.setting.recipes[role].key(),
            "regime": self.setting.regime,
            "inputs": {s: self.inputs.inputs_id(role, task, s) for s in ROLE_SPLITS[role]},
            "splits": self.inputs.split_hashes(task),
            **self.inputs.device_key(),
        }

    # ---- weak (+ its labels), ceiling ---------------------------------------------------------------------
    def weak_labels(self, task: Task, seed: int) -> dict[str, np.ndarray]:
        """Stage weak: the weak model trained on train_label ground truth; its artifact holds the weak
        soft labels p(label=1) on train_unlabel and test that every method of the setting shares. In a
        fine-tuning regime the labels are served through the inference backend, as the AAR sandbox does
        (label_tokens: the merged model's label-word probabilities; linear: its pooled state into the head).
        The student is released and the GPU memory handed back before the engine starts."""
        splits = self.inputs.splits(task)

        def train_weak():
            device = self.inputs.device()
            student = self.trainer("weak", task).fit(
                "train_label", np.array([e.label for e in splits.train_label], dtype=np.float32), seed
            )
            try:
                if self.setting.regime == "frozen":  # the features already came through the inference backend
                    return {s: student.predict(s) for s in ("train_unlabel", "test")}, {}
                from ..inference.served import served_predictions

                with tempfile.TemporaryDirectory(prefix="w2sbench-weak-") as tmp:
                    labels, used = served_predictions(  # releases the student before its engine starts
                        student,
                        ("train_unlabel", "test"),
                        self.options.backend,
                        Path(tmp),
                        self.options.tensor_parallel_size,
                    )
                return labels, {"backend": used, "device": device, "labels_device": device}
            finally:
                _release(student)

        with self.ledger.timed("weak"):
            art = self.store.get_or_compute("weak", self.stage_key("weak", task, seed, "weak"), train_weak)
        if "backend" in art["meta"]:  # fresh or cached, the artifact says which backend labelled
            self.ledger.backend_used["labels:weak"] = art["meta"]["backend"]
        frozen = self.setting.regime == "frozen"  # a head on cached features: the CPU (training.head)
        self.ledger.device_used("weak", "cpu" if frozen else art["meta"].get("device"))
        if not frozen:
            self.ledger.device_used("labels:weak", art["meta"].get("labels_device"))
        return {"train_unlabel": art["train_unlabel"], "test": art["test"]}

    def ceiling(self, task: Task, seed: int) -> np.ndarray:
        """Stage ceiling: the strong model trained on train_unlabel ground truth, scored on test; the student
        is released and the GPU memory handed back once it has predicted."""
        splits = self.inputs.splits(task)

        def train_ceiling():
            device = self.inputs.device()
            student = self.trainer("strong", task).fit(
                "train_unlabel", np.array([e.label for e in splits.train_unlabel], dtype=np.float32), seed
            )
            try:
                return {"test": student.predict("test")}, (
                    {} if self.setting.regime == "frozen" else {"device": device}
                )
            finally:
                _release(student)

        with self.ledger.timed("ceiling"):
            art = self.store.get_or_compute("ceiling", self.stage_key("ceiling", task, seed, "strong"), train_ceiling)
        self.ledger.device_used("ceiling", "cpu" if self.setting.regime == "frozen" else art["meta"].get("device"))
        return art["test"]

    # ---- method ---------------------------------------------------------------------------------------------
    def run_method(
        self, task: Task, method_cls: type[Method] | Method, seed: int, weak_seed: int
    ) -> tuple[np.ndarray, dict, int]:
        """One method seed, run sealed: in a separate process that gets plain data only (texts, weak soft
        labels, strong features, trainer config; no Task, no labels), see w2sbench/isolation/sealed.py. The returned
        predictions are checked here. Seed s learns from the weak labels of `weak_seed` (the unit runner's:
        s mod baseline_seeds). A class runs with its default hyperparameters, an instance with its own."""
        from ..isolation.resolve import resolve_methods

        weak = self.weak_labels(task, weak_seed)
        (method,) = resolve_methods([method_cls], sealed=not self.options.unsealed)  # a built-in or a stand-in
        method_cls = type(method)
        splits = self.inputs.splits(task)
        source = self.isolation.source(method_cls)
        key = {
            **self.stage_key("method", task, seed, "strong"),
            "method": method_cls.name,
            "method_version": method_cls.version,
            "method_config": method.config(),
            "method_source": source.sha256,
            "harness": harness_source()["sha256"],  # the trainer, the inference code and their libraries
            "weak_seed": weak_seed,
            "weak_labels": [hash_array(weak["train_unlabel"]), hash_array(weak["test"])],
            "protocol": sealed.PROTOCOL,
            "prompt": task.prompt_template,
            "label_words": list(task.label_words),
        }
        if self.options.unsealed:  # never served to a sealed run, whose results say its methods were sandboxed
            key["unsealed"] = True

        def compute():
            device = self.inputs.device()
            job = sealed.MethodJob(
                task=task.name,
                setting=self.setting.name,
                seed=seed,
                unlabel_texts=[e.text for e in splits.train_unlabel],
                test_texts=[e.text for e in splits.test],
                weak_unlabel=weak["train_unlabel"],
                weak_test=weak["test"],
                trainer=self.trainer("strong", task),
                label_words=list(task.label_words),
                prompt_template=task.prompt_template,
                model_dirs={r: str(self.inputs.model_dir(r)) for r in ("weak", "strong")},
                backend=self.options.backend,
                tensor_parallel_size=self.options.tensor_parallel_size,
                method_config=method.hyperparameter_values(),
            )
            runner = self.isolation.runner(method_cls)
            if self.options.method_deadline is not None:  # what is left of the run's limit, never more
                left = self.options.method_deadline - time.time()
                if left <= 0:
                    raise W2SError(
                        f"method {method_cls.name!r} did not finish on task {task.name!r} seed {seed} within "
                        "its time limit: stopped"
                    )
                runner.timeout_s = min(self.isolation.timeout_s, left)
            probs, record = runner.run(job)
            if isinstance(probs, str):
                raise W2SError(f"method {method_cls.name!r} returned predictions that are not numbers ({probs})")
            probs = check_predictions(probs, len(splits.test), method_cls.name)
            if not method_cls.uses_weak_labels and any(s.startswith("weak soft labels") for s in record["saw"]):
                raise W2SError(f"method {method_cls.name!r} declares uses_weak_labels=False but read the weak labels")
            # the device the harness gave the method process (its trainer's, which its process checked it has),
            # never one the method names: nothing the method chooses reaches the results but its predictions
            return {"test": probs}, {"compute": record, "device": device}

        with self.ledger.timed("method"):
            art = self.store.get_or_compute("method", key, compute)
        self.ledger.device_used("method", art["meta"].get("device"))
        return art["test"], art["meta"].get("compute", {}), weak_seed


def _release(student: Any) -> None:
    """A fitted student's last use is over: its model goes (FineTunedStudent.release; a head on features has
    nothing to release) and the GPU memory it held goes back to the driver."""
    release = getattr(student, "release", None)
    if release is not None:
        release()
    release_memory()


def check_predictions(probs: Any, n_test: int, method: str) -> np.ndarray:
    """A method must return p(label=1) for each test text, in order: [n_test] floats in [0, 1]."""
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise W2SError(
            f"method {method!r} returned predictions that are not numbers ({type(probs).__name__})"
        ) from None
    if arr.shape != (n_test,):
        raise W2SError(
            f"method {method!r} returned predictions of shape {arr.shape}; "
            f"expected ({n_test},): p(label=1) per test text"
        )
    if not np.all(np.isfinite(arr)):
        raise W2SError(
            f"method {method!r} returned NaN or infinite predictions ({int((~np.isfinite(arr)).sum())} of {n_test})"
        )
    if arr.min() < 0 or arr.max() > 1:
        raise W2SError(
            f"method {method!r} returned predictions outside [0, 1] (min {arr.min():.3g}, max {arr.max():.3g})"
        )
    return arr.astype(np.float32)
