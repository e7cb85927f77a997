"""run(spec): the one way a run starts, whoever asks for it (api.evaluate and the CLI, sweeps, leaderboard
reproduction, the scoring service's jobs and finals). From a RunSpec (engine/spec.py) it resolves the setting,
the tasks and the methods (isolation/resolve.py: the one path by which a method is named, described and
sealed), builds the Pipeline over the cache, and has the spec's executor run the units.

    record = run(spec)                  # a RunRecord of every method
    done = execute(spec)                # the units' values, for a record of any of the methods (sweeps)
    pipeline = pipeline_of(spec)        # the inputs and shared stages without a run (the service's devkit)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cache import ArtifactStore
from ..errors import W2SError
from ..methods.base import Method
from ..settings import Setting, load_setting
from ..tasks import Task, resolve_tasks
from . import executors
from .pipeline import Pipeline
from .record import RunRecord
from .spec import RunSpec
from .units import Unit

if TYPE_CHECKING:
    from .units import UnitValue


def setting_of(spec: RunSpec) -> Setting:
    """The spec's setting, its recipe scaled by perturb_recipe where given."""
    setting = spec.setting if isinstance(spec.setting, Setting) else load_setting(str(spec.setting))
    if spec.perturb_recipe:
        knob, _, factor = spec.perturb_recipe.partition("=")
        try:
            setting = setting.perturbed(knob.strip(), float(factor))
        except ValueError:
            raise W2SError(f"perturb_recipe {spec.perturb_recipe!r}: give KNOB=FACTOR, e.g. lr=0.5") from None
    return setting


def tasks_of(spec: RunSpec) -> list[Task]:
    """The spec's tasks, names, suites and tags expanded (with its include_path), each once, in order."""
    include = [Path(p) for p in spec.include_path]
    out: dict[str, Task] = {}
    for item in spec.tasks:
        for task in [item] if isinstance(item, Task) else resolve_tasks(str(item), include):
            out.setdefault(task.name, task)
    if not out:
        raise W2SError("give at least one task")
    return list(out.values())


def store_of(spec: RunSpec) -> ArtifactStore:
    if spec.cache is not None:
        return ArtifactStore(Path(spec.cache), recompute=spec.recompute)
    return ArtifactStore(recompute=spec.recompute)


def pipeline_of(spec: RunSpec) -> Pipeline:
    """The spec's pipeline: its inputs, cache keys and stages, before any unit runs."""
    return Pipeline(setting_of(spec), tasks_of(spec), spec.options, store_of(spec))


@dataclass
class Executed:
    """A run's units and their values: `record()` is the RunRecord of all its methods, `record([m])` of one
    (a sweep writes one results JSON per configuration)."""

    pipeline: Pipeline
    methods: list[Method]
    units: list[Unit]
    values: dict[str, UnitValue]

    def record(self, methods: list[Method] | None = None) -> RunRecord:
        return self.pipeline.record(self.methods if methods is None else methods, self.values)


def execute(spec: RunSpec) -> Executed:
    """Run the spec: its methods resolved (isolation/resolve.py), the units planned and run by its executor."""
    from ..isolation.processes import guard
    from ..isolation.resolve import resolve_methods

    guard()  # whatever way this process ends, the engines and method processes it starts end with it
    pipeline = pipeline_of(spec)
    methods = resolve_methods(list(spec.methods), sealed=not spec.options.unsealed)
    runner = executors.get_executor(spec.executor, spec.ray_address)
    methods, units, values = executors.execute(pipeline, methods, runner)
    return Executed(pipeline, methods, units, values)


def run(spec: RunSpec) -> RunRecord:
    """One run: every method of the spec on its tasks; the RunRecord build_results reads."""
    return execute(spec).record()
