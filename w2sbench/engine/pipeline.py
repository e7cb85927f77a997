"""The evaluation pipeline of one setting over a list of tasks, stage by stage: features -> weak (and its
soft labels) -> ceiling -> method -> score. The features stage exists in the frozen regime only; the
fine-tuning regimes train on texts.

A Pipeline is the composition of a run's three jobs, each in its own module: its inputs and their keys
(engine/inputs.py, RunInputs), the stages over them (engine/stages.py, Stages: cached, each a pure function
of its inputs) and the record it returns (engine/record.py, RunRecord). What stays here is the unit runner
an executor drives (engine/units.py, UnitRunner; engine/executors.py): prepare the methods, plan the units
(engine/units.py), run one unit, score a method on a task, and note a failure. Stages run stage-major across
tasks so each inference engine starts once per model per run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cache import ArtifactStore
from ..errors import MethodFailed, W2SError
from ..isolation import described, sealed
from ..methods.base import Method
from ..scoring import PGRResult, bootstrap_pgr
from ..settings import Setting
from ..tasks import Splits, Task
from ..training.students import Trainer
from .inputs import ROLE_SPLITS, InputsFactory, RunInputs, harness_inputs
from .ledger import RunLedger
from .record import RunRecord, assemble, method_values, task_values
from .spec import RunOptions
from .stages import Stages
from .suspicion import flag_method, flag_summary
from .units import MethodRef, Unit
from .units import plan as plan_units

if TYPE_CHECKING:
    from .units import UnitValue

log = logging.getLogger("w2sbench")


class Pipeline:
    """One setting over a list of tasks. What the run records beside its numbers is its `ledger`
    (w2sbench.engine.ledger); how it isolates methods, its `isolation` (w2sbench.isolation.wiring).
    `runners`: method processes to share with other pipelines of the same run (a Ray worker's).
    `inputs`: the factory of its RunInputs (default: engine.inputs.harness_inputs(), the real models and
    data); a harness-side argument only, which tests use to give synthetic features and model folders."""

    def __init__(
        self,
        setting: Setting,
        tasks: list[Task],
        options: RunOptions,
        store: ArtifactStore | None = None,
        runners: dict[str, sealed.SealedRunner] | None = None,
        *,
        inputs: InputsFactory | None = None,
    ):
        self.setting, self.tasks, self.options = setting, tasks, options
        self.store = store or ArtifactStore()
        self.ledger = RunLedger(self.store)
        self.inputs: RunInputs = (inputs or harness_inputs())(setting, tasks, options, self.store, self.ledger)
        self.stages = Stages(setting, options, self.inputs, self.store, self.ledger, runners)
        self.isolation = self.stages.isolation
        self.baseline_seeds = setting.baseline_seeds if options.baseline_seeds is None else options.baseline_seeds
        self.method_seeds = setting.method_seeds if options.method_seeds is None else options.method_seeds
        for flag, n in (("--baseline-seeds", self.baseline_seeds), ("--seeds", self.method_seeds)):
            if n < 1:
                raise W2SError(f"{flag} {n}: give at least 1 seed")
        self._methods: dict[str, Method] = {}  # name in results (run_name) -> the configured method
        self._n_methods = 0
        self.log_tasks = True  # say each task's work as it starts (executors running units elsewhere turn it off)

    # ---- the inputs' and the stages' entry points, for callers holding a Pipeline ---------------------
    @property
    def model_records(self) -> dict[str, dict]:
        return self.inputs.model_records

    def device(self) -> str:
        return self.inputs.device()

    def splits(self, task: Task) -> Splits:
        return self.inputs.splits(task)

    def model_dir(self, role: str) -> Path:
        return self.inputs.model_dir(role)

    def features(self, role: str, task: Task, split: str) -> np.ndarray:
        return self.inputs.features(role, task, split)

    def trainer(self, role: str, task: Task) -> Trainer:
        return self.stages.trainer(role, task)

    def weak_labels(self, task: Task, seed: int) -> dict[str, np.ndarray]:
        return self.stages.weak_labels(task, seed)

    def ceiling(self, task: Task, seed: int) -> np.ndarray:
        return self.stages.ceiling(task, seed)

    def run_method(self, task: Task, method: type[Method] | Method, seed: int) -> tuple[np.ndarray, dict, int]:
        """One method seed (Stages.run_method); seed s learns from the labels of weak seed s mod baseline_seeds."""
        return self.stages.run_method(task, method, seed, seed % self.baseline_seeds)

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

    def run_unit(self, unit: Unit, inputs: dict[str, UnitValue]) -> UnitValue:
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

    def score(self, task: Task, name: str, inputs: dict[str, UnitValue]) -> tuple[PGRResult, list[dict]]:
        """Unit score: PGR with its intervals and the flags of one method (by its name in results) on one
        task."""
        weak_test, ceiling_test = task_values(inputs, task, self.baseline_seeds)
        outs = method_values(inputs, task, name, self.method_seeds)
        probs, compute = np.stack([o[0] for o in outs]), [o[1] for o in outs]
        labels = np.array([e.label for e in self.splits(task).test])
        with self.ledger.timed("score"):
            score = bootstrap_pgr(labels, weak_test, ceiling_test, probs, n_boot=self.options.n_boot, task=task.name)
            n_unlabel = len(self.splits(task).train_unlabel)
            flags = flag_method(labels, weak_test, ceiling_test, probs, score, compute, n_unlabel)
        return score, flags

    def method_failed(self, error: MethodFailed) -> None:
        """Called by the executor when a method unit fails: the method is left out of the results, with a note
        and its one line said now."""
        if error.method not in self.ledger.failed:
            self.ledger.failed[error.method] = str(error)
            log.error(str(error))

    def unit_done(self, unit: Unit, value: UnitValue) -> None:
        """Called by the executor, in this process, as each unit finishes: a scored method's flags are said."""
        if unit.kind == "score":
            for line in flag_summary({unit.task: {unit.method: value[1]}}):
                log.warning(line)

    def record(self, methods: list[Method], values: dict[str, UnitValue]) -> RunRecord:
        """The RunRecord of `methods` (instances, as prepare() returns them) from the units' values (a sweep
        makes one per configuration): engine.record.assemble over this pipeline's parts."""
        return assemble(
            methods,
            values,
            setting=self.setting,
            tasks=self.tasks,
            splits=self.splits,
            models=self.model_records,
            baseline_seeds=self.baseline_seeds,
            method_seeds=self.method_seeds,
            options=self.options,
            store=self.store,
            ledger=self.ledger,
            isolation=self.isolation,
        )


def _config_json(method: Method) -> str | None:
    """The values a process elsewhere rebuilds the method from (JSON); None when it cannot be rebuilt (a
    configured method whose hyperparameters are not declared fields: its sealed process could not either,
    so it fails on its first miss, as in-process)."""
    try:
        return json.dumps(method.hyperparameter_values(), sort_keys=True)
    except W2SError:
        return None
