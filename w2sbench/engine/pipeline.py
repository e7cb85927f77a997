"""The evaluation pipeline, stage by stage: features -> weak (and its soft labels) -> ceiling -> method
-> score. The features stage exists in the frozen regime only; the fine-tuning regimes train on texts.

Every stage but `method` is shared by all methods of a setting: each is a pure function of its inputs,
cached in the ArtifactStore under a key that hashes those inputs, so a second method (or a rerun after an
interruption) recomputes nothing it already has. Stages run stage-major across tasks so each inference
engine starts once per model per run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import model_folders
from ..cache import ArtifactStore, hash_array, hash_of, hash_texts
from ..errors import MethodFailed, W2SError
from ..inference import get_backend
from ..inference.devices import release_memory
from ..isolation import described, sealed
from ..isolation.wiring import MethodIsolation
from ..methods.base import Method
from ..methods.identity import MethodSource, harness_source
from ..scoring import PGRResult, accuracy, auroc, bootstrap_pgr
from ..settings import ModelSpec, Setting
from ..tasks import Splits, Task
from ..tasks.sources import SPLIT_NAMES as SPLITS
from ..training.students import FineTuneTrainer, FrozenTrainer, Trainer
from .ledger import RunLedger
from .progress import FeatureProgress
from .spec import RunOptions
from .suspicion import flag_method, flag_summary
from .units import MethodRef, Unit
from .units import plan as plan_units

log = logging.getLogger("w2sbench")
# Which splits each model needs: the weak model learns on train_label and labels the other two; the
# strong model (ceiling and every method) trains on train_unlabel and is scored on test.
ROLE_SPLITS = {"weak": SPLITS, "strong": ("train_unlabel", "test")}


@dataclass
class MethodRun:
    method: type[Method]
    test_probs: np.ndarray  # [seeds, n_test]
    compute: list[dict]
    weak_seed_of: list[int]
    config: dict[str, Any] | None = None  # the method's hyperparameters (None: its class's defaults)


@dataclass
class TaskRun:
    task: Task
    splits: Splits
    weak_test: np.ndarray  # [baseline seeds, n_test]
    ceiling_test: np.ndarray  # [baseline seeds, n_test]
    methods: dict[str, MethodRun] = field(default_factory=dict)
    scores: dict[str, PGRResult] = field(default_factory=dict)
    flags: dict[str, list[dict]] = field(
        default_factory=dict
    )  # method -> suspicious-result flags (w2sbench.engine.suspicion)


@dataclass
class RunRecord:
    """What an evaluation returns (engine.run.run): the numbers per task and the record of what produced them,
    everything build_results needs."""

    setting: Setting
    tasks: list[TaskRun]
    models: dict[str, dict]  # role -> id, revision, source, conversion, parameters...
    baseline_seeds: int
    method_seeds: int
    options: RunOptions
    backend_used: dict[str, str]
    notes: list[str]
    timings: dict[str, float]
    cache_hits: dict[str, int]
    cache_misses: dict[str, int]
    cache_recomputed: dict[str, int]  # artifacts that failed their content check and were recomputed
    method_sources: dict[str, MethodSource]
    sandbox: dict | None  # what the method processes could reach (sandbox.describe); None: unsealed
    failed: dict[str, str] = field(default_factory=dict)  # methods left out: name -> the line that stopped it
    devices: dict[str, list[str]] = field(default_factory=dict)  # stage -> the devices it ran on ("cpu", "cuda")
    unit_sandboxes: dict[str, dict | None] = field(default_factory=dict)  # method unit run on Ray -> its sandbox
    consoles: dict[str, str] = field(default_factory=dict)  # method name -> what its process printed (captured)


class Pipeline:
    """One setting over a list of tasks: the stages and their cache keys. What the run records beside its
    numbers is its `ledger` (w2sbench.engine.ledger); how it isolates methods, its `isolation`
    (w2sbench.isolation.wiring).
    `runners`: method processes to share with other pipelines of the same run (a Ray worker's)."""

    def __init__(
        self,
        setting: Setting,
        tasks: list[Task],
        options: RunOptions,
        store: ArtifactStore | None = None,
        runners: dict[str, sealed.SealedRunner] | None = None,
    ):
        self.setting, self.tasks, self.options = setting, tasks, options
        self.store = store or ArtifactStore()
        self.ledger = RunLedger(self.store)
        self.isolation = MethodIsolation(
            unsealed=options.unsealed,
            timeout_s=options.method_timeout_s or setting.method_timeout_s,
            setting_quotas=setting.quotas,
            quota_override=options.method_quota,
            model_dirs=lambda: [str(self.model_dir(r)) for r in ("weak", "strong")],
            sandbox_used=self.ledger.sandbox_used,
            runners=runners,
            console_seen=self.ledger.console_seen,
        )
        self.baseline_seeds = setting.baseline_seeds if options.baseline_seeds is None else options.baseline_seeds
        self.method_seeds = setting.method_seeds if options.method_seeds is None else options.method_seeds
        for flag, n in (("--baseline-seeds", self.baseline_seeds), ("--seeds", self.method_seeds)):
            if n < 1:
                raise W2SError(f"{flag} {n}: give at least 1 seed")
        self.model_dirs: dict[str, Any] = {}
        self.model_records: dict[str, dict] = {}
        self._splits: dict[str, Splits] = {}
        self._features: dict[tuple[str, str, str], np.ndarray] = {}
        self._feature_ids: dict[tuple[str, str, str], str] = {}
        self._inputs: dict[tuple[str, str, str], list[str]] = {}
        self._split_ids: dict[str, dict[str, str]] = {}
        self._methods: dict[str, Method] = {}  # name in results (run_name) -> the configured method
        self._n_methods = 0
        self._device: str | None = None  # where the stages compute: "cuda" or "cpu" (self.device())
        self.log_tasks = True  # say each task's work as it starts (executors running units elsewhere turn it off)

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

    def _device_key(self) -> dict[str, str]:
        """What a stage key adds for where it computes: nothing, except for a setting that needs a GPU run on
        the CPU (--allow-cpu), whose artifacts must never be served to a GPU run (nor the other way round)."""
        return {"device": "cpu"} if self.setting.needs_gpu and self.device() == "cpu" else {}

    # ---- inputs: splits and models -----------------------------------------------------------------
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

    def model_dir(self, role: str):
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

    # ---- stage: features (frozen backbones) ---------------------------------------------------------
    def _feature_key(self, role: str, task: Task, split: str, backend_name: str) -> dict:
        spec = self.spec(role)
        texts = self._model_inputs(role, task, split)
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
            **self._device_key(),
        }

    def _model_inputs(self, role: str, task: Task, split: str) -> list[str]:
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
        keys = {(t.name, s): self._feature_key(role, t, s, backend.name) for t in self.tasks for s in ROLE_SPLITS[role]}
        todo = [k["n"] for k in keys.values() if not self.store.folder(stage, k).exists()]
        progress = FeatureProgress(role, spec.model, backend.name, todo, len(keys) - len(todo))
        try:
            for task in self.tasks:
                for split in ROLE_SPLITS[role]:
                    key = keys[(task.name, split)]

                    def compute(task=task, split=split):
                        self.device()  # a setting that needs a GPU refuses the CPU here
                        texts = self._model_inputs(role, task, split)
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

    # ---- the fixed trainer, per role ------------------------------------------------------------------
    def trainer(self, role: str, task: Task) -> Trainer:
        """The setting's regime for a role on a task: cached features + head, or fine-tuning."""
        recipe = self.setting.recipes[role]
        if self.setting.regime == "frozen":
            return FrozenTrainer({s: self.features(role, task, s) for s in ROLE_SPLITS[role]}, recipe)
        spec = self.spec(role)
        return FineTuneTrainer(
            str(self.model_dir(role)),
            {s: self._model_inputs(role, task, s) for s in ROLE_SPLITS[role]},
            recipe,
            spec.pooling,
            spec.max_length,
            tuple(task.label_words),
            self.device(),  # every student of the run, the method's included, trains where the baselines did
        )

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
                "texts": hash_texts(self._model_inputs(role, task, split)),
            }
        )

    def _stage_key(self, stage: str, task: Task, seed: int, role: str) -> dict:
        return {
            "stage": stage,
            "setting": self.setting.hash,
            "task": task.hash,
            "seed": seed,
            "train": self.setting.recipes[role].key(),
            "regime": self.setting.regime,
            "inputs": {s: self.inputs_id(role, task, s) for s in ROLE_SPLITS[role]},
            "splits": self._split_hashes(task),
            **self._device_key(),
        }

    def _split_hashes(self, task: Task) -> dict[str, str]:
        if task.name not in self._split_ids:
            splits = self.splits(task)
            self._split_ids[task.name] = {s: hash_texts([e.uid for e in getattr(splits, s)]) for s in SPLITS}
        return self._split_ids[task.name]

    # ---- stages: weak (+ its labels), ceiling -----------------------------------------------------------
    def weak_labels(self, task: Task, seed: int) -> dict[str, np.ndarray]:
        """Stage weak: the weak model trained on train_label ground truth; its artifact holds the weak
        soft labels p(label=1) on train_unlabel and test that every method of the setting shares. In a
        fine-tuning regime the labels are served through the inference backend, as the AAR sandbox does
        (label_tokens: the merged model's label-word probabilities; linear: its pooled state into the head).
        The student is released and the GPU memory handed back before the engine starts."""
        splits = self.splits(task)

        def train_weak():
            device = self.device()
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
            art = self.store.get_or_compute("weak", self._stage_key("weak", task, seed, "weak"), train_weak)
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
        splits = self.splits(task)

        def train_ceiling():
            device = self.device()
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
            art = self.store.get_or_compute("ceiling", self._stage_key("ceiling", task, seed, "strong"), train_ceiling)
        self.ledger.device_used("ceiling", "cpu" if self.setting.regime == "frozen" else art["meta"].get("device"))
        return art["test"]

    # ---- stage: method -----------------------------------------------------------------------------
    def run_method(self, task: Task, method_cls: type[Method] | Method, seed: int) -> tuple[np.ndarray, dict, int]:
        """One method seed, run sealed: in a separate process that gets plain data only (texts, weak soft
        labels, strong features, trainer config; no Task, no labels), see w2sbench/isolation/sealed.py. The returned
        predictions are checked here. Seed s learns from the weak labels of weak seed s mod baseline_seeds.
        A class runs with its default hyperparameters, an instance with its own."""
        from ..isolation.resolve import resolve_methods

        weak_seed = seed % self.baseline_seeds
        weak = self.weak_labels(task, weak_seed)
        (method,) = resolve_methods([method_cls], sealed=not self.options.unsealed)  # a built-in or a stand-in
        method_cls = type(method)
        splits = self.splits(task)
        source = self.isolation.source(method_cls)
        key = {
            **self._stage_key("method", task, seed, "strong"),
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
            device = self.device()
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
                model_dirs={r: str(self.model_dir(r)) for r in ("weak", "strong")},
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

    # ---- the whole run, as a graph of units (w2sbench/engine/units.py) run by an executor --------------------------
    def prepare(self, methods: list[type[Method] | Method]) -> list[Method]:
        """What must hold before any work: the names in results are distinct, the sandbox can start, every
        task loads, both models resolve; each method's code is hashed and its sandbox recorded. Returns the
        method instances (a class: its default hyperparameters), each a built-in or the stand-in of a method
        whose code only the sandbox imports (isolation.resolve: nothing of a method's runs in this process)."""
        from ..isolation.resolve import resolve_methods

        methods = resolve_methods(methods, sealed=not self.options.unsealed) if methods else []
        if len({m.run_name for m in methods}) < len(methods):
            raise W2SError(f"methods {[m.run_name for m in methods]}: one is given twice (same name in results)")
        self.isolation.check_available()
        for task in self.tasks:
            self.splits(task)
        for role in ("weak", "strong"):
            self.model_dir(role)  # a missing model fails here, before any work
        for method in methods:  # hashed now, next to when the code was imported, not when it first runs
            self.isolation.source(type(method))
            self.isolation.policy(type(method))  # recorded even when every stage of the method is a cache hit
        self._n_methods = len(methods)
        for method in methods:
            self._methods[method.run_name] = method
        return methods

    def plan(self, methods: list[Method]) -> list[Unit]:
        refs = [MethodRef(m.run_name, described.unit_spec(type(m)), _config_json(m)) for m in methods]
        return plan_units(self.setting, self.tasks, refs, self.baseline_seeds, self.method_seeds)

    def method_of(self, unit: Unit) -> Method:
        """The configured method a method unit runs: the instance given to run() or prepare() in this
        process, else (a worker elsewhere) its class rebuilt from the unit's spec (imported, or for an agent's
        method the stand-in of its description: w2sbench.isolation.described) and built from its config."""
        if unit.method not in self._methods:
            if unit.spec is None or unit.config is None:
                raise W2SError(
                    f"method {unit.method!r} cannot be rebuilt in another process: its hyperparameters are not "
                    "declared as typed class fields (CONTRIBUTING.md, 'Adding a method')"
                )
            method = described.load_unit_spec(unit.spec)(**json.loads(unit.config))
            if method.run_name != unit.method:
                raise W2SError(
                    f"method {unit.method!r} loads here as {method.run_name!r} (from {unit.spec}): every node "
                    "needs the same method code"
                )
            self._methods[unit.method] = method
        return self._methods[unit.method]

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"task {name!r} is not in this pipeline")

    def run_unit(self, unit: Unit, inputs: dict[str, Any]) -> Any:
        """One unit's value: the stage's artifact (from the cache or computed), or the task's score. `inputs`
        holds the values of the units it depends on (only the score unit reads them)."""
        task = self.task(unit.task)
        if unit.kind == "features":
            for split in ROLE_SPLITS[unit.role]:
                self.features(unit.role, task, split)
            return None
        if unit.kind == "weak":
            if unit.seed == 0 and self.log_tasks:
                k = self.baseline_seeds
                log.info(f"{task.name}: weak x{k}, ceiling x{k}, {self._n_methods} method(s) x{self.method_seeds}")
            return self.weak_labels(task, unit.seed)
        if unit.kind == "ceiling":
            return self.ceiling(task, unit.seed)
        if unit.kind == "method":
            try:
                return self.run_method(task, self.method_of(unit), unit.seed)
            except MethodFailed:
                raise
            except W2SError as e:  # the method's fault, never the harness's: that method stops, the run goes on
                raise MethodFailed(unit.method, str(e)) from None
        if unit.kind == "score":
            return self.score(task, unit.method, inputs)
        raise ValueError(f"unknown unit kind {unit.kind!r}")

    def score(self, task: Task, name: str, inputs: dict[str, Any]) -> tuple[PGRResult, list[dict]]:
        """Unit score: PGR with its intervals and the flags of one method (by its name in results) on one
        task."""
        weak_test, ceiling_test, probs, compute = self._task_values(task, name, inputs)
        labels = np.array([e.label for e in self.splits(task).test])
        with self.ledger.timed("score"):
            score = bootstrap_pgr(labels, weak_test, ceiling_test, probs, n_boot=self.options.n_boot, task=task.name)
            n_unlabel = len(self.splits(task).train_unlabel)
            flags = flag_method(labels, weak_test, ceiling_test, probs, score, compute, n_unlabel)
        return score, flags

    def _task_values(self, task: Task, name: str | None, values: dict[str, Any]) -> tuple:
        k = self.baseline_seeds
        weak_test = np.stack([values[Unit("weak", task.name, seed=s).id]["test"] for s in range(k)])
        ceiling_test = np.stack([values[Unit("ceiling", task.name, seed=s).id] for s in range(k)])
        if name is None:
            return weak_test, ceiling_test
        outs = [values[Unit("method", task.name, seed=s, method=name).id] for s in range(self.method_seeds)]
        return weak_test, ceiling_test, np.stack([o[0] for o in outs]), [o[1] for o in outs]

    def method_failed(self, error: MethodFailed) -> None:
        """Called by the executor when a method unit fails: the method is left out of the results, with a note
        and its one line said now."""
        if error.method not in self.ledger.failed:
            self.ledger.failed[error.method] = str(error)
            log.error(str(error))

    def unit_done(self, unit: Unit, value: Any) -> None:
        """Called by the executor, in this process, as each unit finishes: a scored method's flags are said."""
        if unit.kind == "score":
            for line in flag_summary({unit.task: {unit.method: value[1]}}):
                log.warning(line)

    def record(self, methods: list[Method], values: dict[str, Any]) -> RunRecord:
        """The RunRecord of `methods` (instances, as prepare() returns them) from the units' values (a sweep
        makes one per configuration)."""
        ledger = self.ledger
        failed = [m.run_name for m in methods if m.run_name in ledger.failed]
        if len(failed) == len(methods) and methods:
            # nothing left to report: the first failure is the error
            raise MethodFailed(failed[0], ledger.failed[failed[0]])
        methods = [m for m in methods if m.run_name not in ledger.failed]
        runs: list[TaskRun] = []
        for task in self.tasks:
            weak_test, ceiling_test = self._task_values(task, None, values)
            tr = TaskRun(task, self.splits(task), weak_test, ceiling_test)
            for method in methods:
                name = method.run_name  # the name plus any non-default hyperparameters: logconf[aux_coef=0.25]
                outs = [values[Unit("method", task.name, seed=s, method=name).id] for s in range(self.method_seeds)]
                tr.methods[name] = MethodRun(
                    type(method),
                    np.stack([o[0] for o in outs]),
                    [o[1] for o in outs],
                    [o[2] for o in outs],
                    method.config(),
                )
                tr.scores[name], tr.flags[name] = values[Unit("score", task.name, method=name).id]
            runs.append(tr)
        for method in methods:
            self.isolation.source(type(method))  # named even when every method unit ran elsewhere or was cached
        names = {m.name for m in methods}
        sandbox_record = ledger.sandbox
        if sandbox_record is not None:  # the code of this record's methods (a sweep's pipeline holds them all)
            code = {k: v for k, v in sandbox_record["method_code"].items() if k in names}
            sandbox_record = {**sandbox_record, "method_code": code}
        return RunRecord(
            setting=self.setting,
            tasks=runs,
            models=dict(self.model_records),
            baseline_seeds=self.baseline_seeds,
            method_seeds=self.method_seeds,
            options=self.options,
            backend_used=dict(ledger.backend_used),
            notes=list(ledger.notes),
            timings=dict(ledger.timings),
            cache_hits=dict(self.store.hits),
            cache_misses=dict(self.store.misses),
            cache_recomputed=dict(self.store.corrupt),
            method_sources={k: v for k, v in self.isolation.sources.items() if k in names},
            sandbox=sandbox_record,
            failed={name: ledger.failed[name] for name in failed},
            consoles={m.name: ledger.consoles[m.name] for m in methods if m.name in ledger.consoles},
            devices={stage: sorted(used) for stage, used in ledger.devices.items()},
            unit_sandboxes={
                u: sb for u, sb in ledger.unit_sandboxes.items() if any(f"/{m.run_name}/" in u for m in methods)
            },
        )


def _release(student: Any) -> None:
    """A fitted student's last use is over: its model goes (FineTunedStudent.release; a head on features has
    nothing to release) and the GPU memory it held goes back to the driver."""
    release = getattr(student, "release", None)
    if release is not None:
        release()
    release_memory()


def _config_json(method: Method) -> str | None:
    """The values a process elsewhere rebuilds the method from (JSON); None when it cannot be rebuilt (a
    configured method whose hyperparameters are not declared fields: its sealed process could not either,
    so it fails on its first miss, as in-process)."""
    try:
        return json.dumps(method.hyperparameter_values(), sort_keys=True)
    except W2SError:
        return None


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


def summarise_probs(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Per-seed and mean accuracy/AUROC of [seeds, n] predictions."""
    accs = [accuracy(p, labels) for p in probs]
    aucs = [auroc(p, labels) for p in probs]
    return {
        "accuracy": float(np.mean(accs)),
        "accuracy_per_seed": accs,
        "auroc": None if any(a is None for a in aucs) else float(np.mean(aucs)),
        "auroc_per_seed": aucs,
        "seeds": len(accs),
    }
