"""Executors: who runs the units of an evaluation (w2sbench/engine/units.py).

- `inprocess` (the default): this process runs the units one after another, in the order the stages have
  always run, sharing one Pipeline (its inference engines, splits and the method processes).
- `ray`: each unit is a Ray task on a cluster (w2sbench/engine/ray_executor.py; `pip install 'w2sbench[ray]'`).

An executor's contract: `run(runner, units)` drives a units.UnitRunner (the Pipeline is one: a typed
protocol, so that no executor reaches past it into the inputs or the stages) and returns every unit's value
by unit id, the value the runner's own `run_unit` returns for it, and calls `runner.unit_done(unit, value)`
in this process as each unit finishes. A unit that raises MethodFailed is reported with
`runner.method_failed(error)`, and the rest of that method's units are skipped: the other methods go on
(the Ray executor does not yet: there a failed method ends the run). Units write their artifacts to the
pipeline's store under the keys the stages compute, so whichever executor ran a unit, any other finds it in
the cache. An executor that runs
units elsewhere (Ray) sends what a remote Pipeline is rebuilt from (setting, tasks, options, the store's
root and recompute set, the seeds) and merges each unit's share of the bookkeeping into `runner.ledger`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import MethodFailed, UnknownNameError, W2SError
from ..isolation.launch import shown
from .progress import UnitProgress, plan_line
from .units import Unit, dedupe

if TYPE_CHECKING:
    from ..methods.base import Method
    from .pipeline import Pipeline
    from .record import RunRecord
    from .units import UnitRunner, UnitValue

log = logging.getLogger("w2sbench")

EXECUTORS = ("inprocess", "ray")


class Executor(Protocol):
    """Who runs a run's units: `run` returns every unit's value by unit id (runner.run_unit's value), calling
    runner.unit_done(unit, value) in this process as each finishes and runner.method_failed(error) for a
    method that failed (the module's docstring says the whole contract)."""

    name: str

    def run(self, runner: UnitRunner, units: list[Unit]) -> dict[str, UnitValue]: ...


class InProcessExecutor:
    name = "inprocess"

    def run(self, runner: UnitRunner, units: list[Unit]) -> dict[str, UnitValue]:
        values: dict[str, UnitValue] = {}
        failed: set[str] = set()
        progress = UnitProgress(len(units))
        for i, unit in enumerate(units, 1):
            if unit.method is not None and unit.method in failed:
                continue  # the method failed on an earlier seed or task: its other units are not run
            try:
                values[unit.id] = runner.run_unit(unit, {d: values[d] for d in unit.deps})
            except MethodFailed as e:
                failed.add(e.method)
                runner.method_failed(e)
                continue
            finally:
                progress.unit_done()
            runner.unit_done(unit, values[unit.id])
            log.debug(f"{i}/{len(units)} units done ({unit.describe()})")
        return values


def execute(
    pipeline: Pipeline, methods: list, executor: Executor | None = None
) -> tuple[list[Method], list[Unit], dict[str, UnitValue]]:
    """The one run above the stages, which engine.run (every caller's run(spec)) uses: prepare (names, sandbox,
    tasks, models), plan the units (once each: a sweep's configurations share their baselines), have
    `executor` run them (default: in this process). Returns (the method instances, the units, their values);
    `pipeline.record(methods, values)` makes a RunRecord of any of the methods. Above the stages, so that the
    pipeline never imports who runs it."""
    started = time.perf_counter()
    executor = executor or InProcessExecutor()
    if getattr(executor, "name", None) == InProcessExecutor.name:
        pipeline.device()  # the units compute here: a setting that needs a GPU refuses the CPU before any work
    try:
        methods = pipeline.prepare(methods)
        units = dedupe(pipeline.plan(methods))
        log.info(plan_line([u.kind for u in units]))
        values = executor.run(pipeline, units)
    finally:
        pipeline.isolation.close()  # the run's method processes end with it, not with the interpreter
        for name, text in pipeline.ledger.consoles.items():  # what methods printed, marked as theirs
            log.info(
                f"method {name!r} printed ({len(text.splitlines())} line(s), kept in the results):\n"
                + shown(name, text)
            )
    pipeline.ledger.timings["total"] = time.perf_counter() - started
    return methods, units, values


def run_pipeline(pipeline: Pipeline, methods: list, executor: Executor | None = None) -> RunRecord:
    """`execute`, then the RunRecord of all its methods: for a Pipeline built by hand (tests, benchmarks).
    Every run the harness starts goes through engine.run.run(spec) instead."""
    methods, _, values = execute(pipeline, methods, executor)
    return pipeline.record(methods, values)


def get_executor(name: str | Executor = "inprocess", ray_address: str | None = None) -> Executor:
    """An executor by name; `ray_address` is for the ray executor (default: RAY_ADDRESS, else a local cluster).
    An executor object (anything with run(runner, units)) is returned as it is."""
    if not isinstance(name, str):
        if not callable(getattr(name, "run", None)):
            raise W2SError(f"executor {name!r}: give a name ({', '.join(EXECUTORS)}) or an object with run()")
        if ray_address:
            raise W2SError(f"--ray-address {ray_address}: give it to the executor object instead")
        return name
    if name == "inprocess":
        if ray_address:
            raise W2SError(f"--ray-address {ray_address}: it needs --executor ray")
        return InProcessExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=ray_address)
    raise UnknownNameError("executor", name, EXECUTORS)
