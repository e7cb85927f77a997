"""One run, as one value: what to run (methods, tasks, setting), how (the engine's options) and where (the
executor, the cache), frozen, built once by whichever caller asks for a run and handed to `run(spec)`
(w2sbench/engine/run.py):

    the CLI (`w2sbench eval`)      -> api.evaluate(**knobs)   -> RunSpec.build("evaluate()", knobs)
    a sweep file (sweep.py)        -> RunSpec.build(path, the file's fields)   (then one method per configuration)
    a campaign file (serve/)       -> Campaign.spec, built by RunSpec.build(path, the file's fields)
    a submission's results         -> leaderboard/reproduce.py: RunSpec(..., options=RunOptions(...))

Every knob has ONE name, the same in evaluate()'s keywords, a sweep file and a campaign file (KNOBS lists
them); the CLI's flag is the name with dashes (`--method-seeds`, `--method-timeout-s`, ...). Older names are
kept as aliases (ALIASES) and say so where they are documented. The spec holds methods as the caller named
them (texts, origins, or the caller's own class objects, which the caller imported), never a class loaded
from a method file: isolation/resolve.py resolves them inside run(), the one path for every caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, W2SError
from ..tasks.sources import SPLIT_NAMES as SPLITS

BACKENDS = ("auto", "vllm", "hf")
EXECUTOR_NAMES = ("inprocess", "ray")


@dataclass(frozen=True)
class RunOptions:
    """The spec's engine-facing part: how the stages run, all the Pipeline reads of a run. Frozen: the pipeline
    reads them once, when it is built (dataclasses.replace makes another)."""

    backend: str = "auto"
    tensor_parallel_size: int = 1  # GPUs per vLLM engine, for models that do not fit one
    baseline_seeds: int | None = None  # default: the setting's
    method_seeds: int | None = None  # default: the setting's
    limit: Mapping[str, int] | None = None  # split sizes over the tasks' (tests, quick looks; not comparable)
    n_boot: int = 2000  # bootstrap draws for every interval
    unsealed: bool = False  # run methods without the OS sandbox (results say so; the leaderboard refuses them)
    method_timeout_s: float | None = None  # per method seed; default: the setting's limits.method_timeout_s
    method_quota: str | None = None  # 'memory=8G,processes=512,...' over the setting's quotas (quotas.override)
    allow_cpu: bool = False  # run a setting that needs a GPU (setting.needs_gpu) on the CPU where there is none
    # The scoring service's seams (w2sbench/serve): which examples of a task's test split this run uses, in
    # order (its jobs: the validation part; its finals: the final part), so that a method is given and
    # scored on those texts only; and the time (time.time()) by which every method unit must have ended
    # (a job's limit for all its tasks and seeds together). None: the whole split, no deadline.
    test_parts: Mapping[str, tuple[int, ...]] | None = None
    method_deadline: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run: methods on tasks under a setting, with its options, executor and cache.

    methods: names as on the command line ('vanilla', 'logconf[aux_coef=0.25]', 'path/file.py:Class'), or the
        caller's Method classes or configured instances; resolved in run() by isolation/resolve.py.
    tasks: names, suites, tags or YAML paths (a text may be comma-separated), or Task objects.
    setting: a setting's name or YAML path, or a Setting; perturb_recipe ('lr=0.5') scales its recipe.
    include_path: extra folders of task YAMLs.
    executor / ray_address: where the units run ('inprocess', 'ray', or an executor object).
    cache: the folder of cached artifacts (default: $W2SBENCH_CACHE/artifacts); recompute: stages whose cached
        artifacts are not reused (reproduction reruns 'method').
    options: the engine's part (RunOptions)."""

    methods: tuple[Any, ...] = ("vanilla",)
    tasks: tuple[Any, ...] = ("default",)
    setting: Any = "tiny"
    include_path: tuple[str, ...] = ()
    perturb_recipe: str | None = None
    executor: Any = "inprocess"  # a name, or an object with executors.Executor's run()
    ray_address: str | None = None
    cache: str | None = None
    recompute: frozenset[str] = frozenset()
    options: RunOptions = field(default_factory=RunOptions)

    @classmethod
    def build(cls, where: str, knobs: Mapping[str, Any], base: RunSpec | None = None) -> RunSpec:
        """A spec from one flat mapping of knob names (KNOBS; ALIASES accepted), over `base` (default: the
        defaults). Each knob is checked; a problem is one line naming `where` and the knob. A knob given
        as None keeps the base's value."""
        base = base or cls()
        run: dict[str, Any] = {}
        engine: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for given, value in knobs.items():
            name = ALIASES.get(given, given)
            if name not in KNOBS:
                raise _error(where, given, f"unknown knob; the knobs of a run are: {', '.join(KNOBS)}")
            if value is None:
                continue
            if name in seen:
                raise _error(where, given, f"given twice, as {seen[name]} and {given}")
            seen[name] = given
            value = _check(where, given, name, value)
            (engine if name in ENGINE_KNOBS else run)[name] = value
        spec = replace(base, **run, options=replace(base.options, **engine))
        opts = spec.options
        if opts.tensor_parallel_size > 1 and opts.backend == "hf":
            raise _error(
                where,
                "tensor_parallel_size",
                f"tensor_parallel_size {opts.tensor_parallel_size} needs the vllm backend, not backend 'hf'",
            )
        return spec

    def with_knobs(self, where: str, **knobs: Any) -> RunSpec:
        """This spec with some knobs changed (None: unchanged), checked as build() checks them."""
        return RunSpec.build(where, knobs, base=self)

    def knobs(self) -> dict[str, Any]:
        """The spec as the flat mapping build() reads (one name per knob)."""
        out = {k: getattr(self, k) for k in RUN_KNOBS}
        out.update({k: getattr(self.options, k) for k in ENGINE_KNOBS})
        return out


RUN_KNOBS = tuple(f.name for f in fields(RunSpec) if f.name != "options")
ENGINE_KNOBS = tuple(f.name for f in fields(RunOptions))
KNOBS = RUN_KNOBS + ENGINE_KNOBS
# Older names, still read (evaluate()'s keywords, the CLI's flags, sweep and campaign fields); each is
# documented as the alias it is.
ALIASES = {"seeds": "method_seeds", "method_timeout": "method_timeout_s", "include": "include_path"}


def parse_limit(value: Any, option: str = "limit") -> dict[str, int] | None:
    """'200,200,100', (200, 200, 100) or a dict -> split sizes train_label, train_unlabel, test."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Mapping):
        sizes = [value.get(s) for s in SPLITS] if set(value) == set(SPLITS) else []
    elif isinstance(value, str):
        try:
            sizes = [int(p) for p in value.split(",")]
        except ValueError:
            sizes = []
    else:
        sizes = list(value)
    if len(sizes) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise W2SError(
            f"{option} {value!r}: expected three positive integers 'train_label,train_unlabel,test', e.g. 200,200,100"
        )
    return dict(zip(SPLITS, sizes))


def _error(where: str, knob: str, message: str) -> W2SError:
    """In a file, the file and its field; in a call (where ends with ')'), the keyword."""
    if where.endswith(")"):
        return W2SError(f"{where}: {knob}: {message}")
    return ConfigError(where, knob, message)


def _positive_int(where: str, knob: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _error(where, knob, f"expected a positive integer, got {value!r}")
    return value


def _check(where: str, given: str, name: str, value: Any) -> Any:
    """One knob's value, checked and in the spec's form."""
    if name in ("methods", "tasks"):
        items = [value] if isinstance(value, str) or not isinstance(value, Sequence) else list(value)
        if not items:
            raise _error(where, given, f"give at least one of the {name}")
        return tuple(items)
    if name == "include_path":
        items = [value] if isinstance(value, (str, Path)) else list(value)
        return tuple(str(p) for p in items)
    if name == "limit":
        try:
            return parse_limit(value, given)
        except W2SError as e:
            raise _error(where, given, str(e).removeprefix(f"{given} ")) from None
    if name in ("baseline_seeds", "method_seeds", "n_boot", "tensor_parallel_size"):
        return _positive_int(where, given, value)
    if name == "method_timeout_s" or name == "method_deadline":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise _error(where, given, f"expected a positive number of seconds, got {value!r}")
        return float(value)
    if name in ("unsealed", "allow_cpu"):
        if not isinstance(value, bool):
            raise _error(where, given, f"expected true or false, got {value!r}")
        return value
    if name == "backend":
        if value not in BACKENDS:
            raise _error(where, given, f"{value!r}: one of {', '.join(BACKENDS)}")
        return value
    if name == "executor":  # a name is checked by get_executor, when the run starts
        if not isinstance(value, str) and not callable(getattr(value, "run", None)):
            raise _error(where, given, f"{value!r}: give a name ({', '.join(EXECUTOR_NAMES)}) or an object with run()")
        return value
    if name == "recompute":
        return frozenset(value)
    if name in ("setting", "cache", "ray_address", "perturb_recipe", "method_quota"):
        if name in ("cache", "ray_address", "perturb_recipe", "method_quota") and not isinstance(value, (str, Path)):
            raise _error(where, given, f"expected a text, got {value!r}")
        return str(value) if isinstance(value, Path) else value
    return value  # test_parts: the service's own seam
