"""What a run returns: the RunRecord (the numbers per task and the record of what produced them, everything
reports.results.build_results reads) and its assembly from the units' values.

Kept apart from the stages and the unit runner because it is plain data: the reports, the service and the
leaderboard read a RunRecord without ever building a pipeline, and a sweep assembles one record per
configuration from the values of one run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import ArtifactStore
from ..errors import MethodFailed
from ..isolation.wiring import MethodIsolation
from ..methods.base import Method
from ..methods.identity import MethodSource
from ..scoring import PGRResult, accuracy, auroc
from ..settings import Setting
from ..tasks import Splits, Task
from .ledger import RunLedger
from .spec import RunOptions
from .units import Unit

if TYPE_CHECKING:
    from .units import UnitValue


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


def task_values(values: dict[str, UnitValue], task: Task, baseline_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """The weak and ceiling test predictions of a task, [baseline seeds, n_test] each, from the units' values."""
    weak_test = np.stack([values[Unit("weak", task.name, seed=s).id]["test"] for s in range(baseline_seeds)])
    ceiling_test = np.stack([values[Unit("ceiling", task.name, seed=s).id] for s in range(baseline_seeds)])
    return weak_test, ceiling_test


def method_values(
    values: dict[str, UnitValue], task: Task, name: str, method_seeds: int
) -> list[tuple[np.ndarray, dict, int]]:
    """A method's unit values on a task, one per seed: (test predictions, compute record, weak seed)."""
    return [values[Unit("method", task.name, seed=s, method=name).id] for s in range(method_seeds)]


def assemble(
    methods: list[Method],
    values: dict[str, UnitValue],
    *,
    setting: Setting,
    tasks: list[Task],
    splits: Callable[[Task], Splits],
    models: dict[str, dict],
    baseline_seeds: int,
    method_seeds: int,
    options: RunOptions,
    store: ArtifactStore,
    ledger: RunLedger,
    isolation: MethodIsolation,
) -> RunRecord:
    """The RunRecord of `methods` (instances, as Pipeline.prepare returns them) from the units' values (a
    sweep makes one per configuration)."""
    failed = [m.run_name for m in methods if m.run_name in ledger.failed]
    if len(failed) == len(methods) and methods:
        # nothing left to report: the first failure is the error
        raise MethodFailed(failed[0], ledger.failed[failed[0]])
    methods = [m for m in methods if m.run_name not in ledger.failed]
    runs: list[TaskRun] = []
    for task in tasks:
        weak_test, ceiling_test = task_values(values, task, baseline_seeds)
        tr = TaskRun(task, splits(task), weak_test, ceiling_test)
        for method in methods:
            name = method.run_name  # the name plus any non-default hyperparameters: logconf[aux_coef=0.25]
            outs = method_values(values, task, name, method_seeds)
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
        isolation.source(type(method))  # named even when every method unit ran elsewhere or was cached
    names = {m.name for m in methods}
    sandbox_record = ledger.sandbox
    if sandbox_record is not None:  # the code of this record's methods (a sweep's pipeline holds them all)
        code = {k: v for k, v in sandbox_record["method_code"].items() if k in names}
        sandbox_record = {**sandbox_record, "method_code": code}
    return RunRecord(
        setting=setting,
        tasks=runs,
        models=dict(models),
        baseline_seeds=baseline_seeds,
        method_seeds=method_seeds,
        options=options,
        backend_used=dict(ledger.backend_used),
        notes=list(ledger.notes),
        timings=dict(ledger.timings),
        cache_hits=dict(store.hits),
        cache_misses=dict(store.misses),
        cache_recomputed=dict(store.corrupt),
        method_sources={k: v for k, v in isolation.sources.items() if k in names},
        sandbox=sandbox_record,
        failed={name: ledger.failed[name] for name in failed},
        consoles={m.name: ledger.consoles[m.name] for m in methods if m.name in ledger.consoles},
        devices={stage: sorted(used) for stage, used in ledger.devices.items()},
        unit_sandboxes={
            u: sb for u, sb in ledger.unit_sandboxes.items() if any(f"/{m.run_name}/" in u for m in methods)
        },
    )


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
