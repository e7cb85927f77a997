"""The evaluation as a graph of units, each a pure function of its inputs, cached under the key its stage
computes (w2sbench/engine/stages.py), so an executor may run independent units at once and a unit
computed by one executor is a cache hit for any other.

Units, per setting:
- features(role, task): the frozen backbone's features of every split the role reads (frozen regime only);
- weak(task, seed): the weak model trained on train_label, with its soft labels on train_unlabel and test;
- ceiling(task, seed): the strong model trained on train_unlabel ground truth, scored on test;
- method(task, method, seed): one method seed, sealed; it learns from weak(task, seed mod baseline seeds);
- score(task, method): PGR with its intervals and the flags, from the weak, ceiling and method units.

A method is named in unit ids by its name in results (`Method.run_name`, e.g. `logconf[aux_coef=0.25]`),
and a method unit carries what a fresh process needs to build the same configured method: the class's spec
(described.unit_spec: an importable name, or an agent's checked description) and its hyperparameter values as
JSON, `load_unit_spec(spec)(**json.loads(config))`.

`plan()` lists them in the order the in-process executor runs them, which is the order the pipeline has
always run its stages in (features stage-major, then task by task), so its numbers, cache keys and cache
counts do not move. A unit's `deps` are the units whose values (or artifacts) it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..settings import Setting
from ..tasks import Task

if TYPE_CHECKING:
    import numpy as np

    from ..cache import ArtifactStore
    from ..errors import MethodFailed
    from ..scoring import PGRResult
    from .ledger import RunLedger
    from .spec import RunOptions

    # A unit's value, by kind: features None (the artifacts stay in the store); weak its soft labels
    # {"train_unlabel", "test"}; ceiling its test predictions; method (test predictions, compute record, weak
    # seed); score (PGRResult, flags).
    UnitValue = None | dict[str, np.ndarray] | np.ndarray | tuple[np.ndarray, dict, int] | tuple[PGRResult, list[dict]]


class MethodRef(NamedTuple):
    """A configured method as the units carry it: plain strings, so that a unit can travel to another process."""

    name: str  # its name in results (Method.run_name): unit ids and results are keyed by it
    spec: str  # how a fresh process rebuilds its class (described.unit_spec)
    config: str | None = "{}"  # its hyperparameter values, JSON (None: it cannot be rebuilt elsewhere)


@dataclass(frozen=True)
class Unit:
    kind: str
    task: str
    role: str | None = None  # features
    seed: int | None = None  # weak, ceiling, method
    method: str | None = None  # method, score: the method's name in results (Method.run_name)
    deps: tuple[str, ...] = ()
    spec: str | None = None  # method: how a fresh process rebuilds its class (described.unit_spec)
    config: str | None = None  # method: the method's hyperparameter values, JSON

    @property
    def id(self) -> str:
        parts = [self.kind, self.task]
        if self.role is not None:
            parts.append(self.role)
        if self.method is not None:
            parts.append(self.method)
        if self.seed is not None:
            parts.append(f"seed{self.seed}")
        return "/".join(parts)

    def describe(self) -> str:
        """A short human name for progress lines."""
        what = {"features": f"{self.role} features", "method": "method", "score": "score"}.get(self.kind, self.kind)
        name = f" {self.method}" if self.method else ""
        seed = f" seed {self.seed}" if self.seed is not None else ""
        return f"{what}{name} {self.task}{seed}"


def plan(
    setting: Setting, tasks: list[Task], methods: list[MethodRef], baseline_seeds: int, method_seeds: int
) -> list[Unit]:
    """Every unit of an evaluation, dependencies first, in the in-process order."""
    frozen = setting.regime == "frozen"
    units: list[Unit] = []
    feats: dict[tuple[str, str], str] = {}
    if frozen:
        for role in ("weak", "strong"):
            for task in tasks:
                unit = Unit("features", task.name, role=role)
                feats[(role, task.name)] = unit.id
                units.append(unit)

    def needs(role: str, task: Task) -> tuple[str, ...]:
        return (feats[(role, task.name)],) if frozen else ()

    for task in tasks:
        weak = [Unit("weak", task.name, seed=s, deps=needs("weak", task)) for s in range(baseline_seeds)]
        ceiling = [Unit("ceiling", task.name, seed=s, deps=needs("strong", task)) for s in range(baseline_seeds)]
        units += weak + ceiling
        for ref in methods:
            seeds = [
                Unit(
                    "method",
                    task.name,
                    seed=s,
                    method=ref.name,
                    deps=(weak[s % baseline_seeds].id, *needs("strong", task)),
                    spec=ref.spec,
                    config=ref.config,
                )
                for s in range(method_seeds)
            ]
            units += seeds
            score_deps = (*(u.id for u in weak), *(u.id for u in ceiling), *(u.id for u in seeds))
            units.append(Unit("score", task.name, method=ref.name, deps=score_deps))
    return units


def dedupe(units: list[Unit]) -> list[Unit]:
    """One unit per id, first occurrence kept (a sweep's configurations share their baselines)."""
    seen: dict[str, Unit] = {}
    for unit in units:
        seen.setdefault(unit.id, unit)
    return list(seen.values())


class UnitRunner(Protocol):
    """What an executor drives (engine.pipeline.Pipeline is one): a unit's value, and the driver-side calls as
    units finish or fail; and what an executor running units elsewhere sends a worker to rebuild a runner
    there (setting, tasks, options, store, seeds) and merges each unit's bookkeeping into (ledger)."""

    setting: Setting
    tasks: list[Task]
    options: RunOptions
    store: ArtifactStore
    ledger: RunLedger
    baseline_seeds: int
    method_seeds: int

    def run_unit(self, unit: Unit, inputs: dict[str, UnitValue]) -> UnitValue: ...

    def unit_done(self, unit: Unit, value: UnitValue) -> None: ...

    def method_failed(self, error: MethodFailed) -> None: ...
