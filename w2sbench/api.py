"""The Python API, for notebooks and agents: one call runs an evaluation and returns its results, typed.

    result = w2sbench.evaluate(["vanilla", "logconf[aux_coef=0.25]"], tasks="rotten_tomatoes", limit=(100, 300, 200))
    result.table()                                      # the table `w2sbench eval` prints
    result.summary["logconf[aux_coef=0.25]"].mean_pgr
    result.tasks["rotten_tomatoes"].methods["vanilla"].pgr.pgr_ci

`w2sbench eval` is this call plus printing. An EvalResult holds the content of the results JSON, typed
(`to_dict()` is that document, `EvalResult.load(path)` reads one back), and, after a run, the run's record
with every test prediction (`record`, `sample_rows()`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import UnknownNameError, W2SError

if TYPE_CHECKING:
    from .engine.executors import Executor
    from .engine.record import RunRecord
    from .engine.spec import RunSpec
    from .methods.registry import MethodLike
    from .settings import Setting
    from .tasks import Task


# ---- the typed result ----------------------------------------------------------------------------------------
@dataclass
class _Part:
    """A part of the results document: its known keys as typed fields; any other key (a newer schema's, or
    another tool's) kept in `extra`, so that from_dict(d).to_dict() == d."""

    extra: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _nested: ClassVar[dict[str, Callable[[Any], Any]]] = {}  # key -> how its value is read
    _optional: ClassVar[tuple[str, ...]] = ()  # keys that may be absent (omitted again when None)
    _local: ClassVar[tuple[str, ...]] = ()  # fields that are not part of the document

    @classmethod
    def _keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.init and f.name not in cls._local]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        keys = cls._keys()
        obj = cls(**{k: cls._nested.get(k, _same)(d[k]) for k in keys if k in d})
        obj.extra = {k: v for k, v in d.items() if k not in keys}
        return obj

    def to_dict(self) -> dict[str, Any]:
        """The document's JSON form (a new dict; nothing shared with this object)."""
        out = {
            k: _plain(getattr(self, k)) for k in self._keys() if not (k in self._optional and getattr(self, k) is None)
        }
        return {**out, **_plain(self.extra)}


def _same(value: Any) -> Any:
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, _Part):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _dict_of(cls: type[_Part]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda d: {k: cls.from_dict(v) for k, v in d.items()}


@dataclass
class ProbsSummary(_Part):
    """Accuracy (and AUROC) of one model's test predictions: the mean over seeds and each seed's."""

    accuracy: float
    accuracy_per_seed: list[float]
    auroc: float | None
    auroc_per_seed: list[float | None]
    seeds: int


@dataclass
class PGR(_Part):
    """PGR = (w2s - weak) / (ceiling - weak) on one task, with its 95% bootstrap interval; None where the
    ceiling-weak gap's interval includes 0 (`undefined_reason` says so)."""

    weak_acc: float
    ceiling_acc: float
    w2s_acc: float
    gap: float
    gap_ci: list[float]
    pgr: float | None
    pgr_ci: list[float] | None
    w2s_ci: list[float] | None
    pgr_per_seed: list[float] | None
    defined: bool
    undefined_reason: str | None
    n_test: int
    n_boot: int


@dataclass
class TaskMethodResult(_Part):
    """One method on one task: its w2s accuracy, PGR, what it computed, its flags."""

    w2s: ProbsSummary
    pgr: PGR
    weak_seed_of_method_seed: list[int]
    compute: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    _nested = {"w2s": ProbsSummary.from_dict, "pgr": PGR.from_dict}


@dataclass
class TaskResult(_Part):
    """One task: its hash and sizes, the shared weak and ceiling models, and each method."""

    task_hash: str
    version: int
    n: dict[str, int]
    weak: ProbsSummary
    ceiling: ProbsSummary
    methods: dict[str, TaskMethodResult]
    tags: list[str] | None = None
    test_positive_rate: float | None = None
    _nested = {
        "weak": ProbsSummary.from_dict,
        "ceiling": ProbsSummary.from_dict,
        "methods": _dict_of(TaskMethodResult),
    }
    _optional = ("tags", "test_positive_rate")


@dataclass
class MethodInfo(_Part):
    """A method of the run: its registered `name` (the key adds any non-default hyperparameters), its
    hyperparameters (`config`), version and code."""

    version: int | str
    description: str
    config: dict[str, Any]
    teacher_free: bool
    source: str
    code: dict[str, Any]
    name: str | None = None
    _optional = ("name",)


@dataclass
class MethodSummary(_Part):
    """A method over the run's tasks: mean PGR with its interval (None if PGR is undefined on any task)."""

    mean_pgr: float | None
    mean_pgr_ci: list[float] | None
    tasks_defined: int
    tasks: int
    mean_w2s_accuracy: float
    flagged_tasks: list[str]


@dataclass
class SettingInfo(_Part):
    name: str
    version: int
    hash: str
    config: dict[str, Any]


@dataclass
class Seeds(_Part):
    baseline: int
    method: int


@dataclass
class EvalResult(_Part):
    """One run's results: the results JSON's content, typed. `record` (after a run, not after load())
    holds the run itself: every test prediction per seed, the splits, the method instances."""

    schema_version: int
    setting: SettingInfo
    models: dict[str, dict[str, Any]]
    seeds: Seeds
    methods: dict[str, MethodInfo]
    sealed: dict[str, Any]
    tasks: dict[str, TaskResult]
    summary: dict[str, MethodSummary]
    backend: dict[str, Any]
    timings_s: dict[str, float]
    cache: dict[str, Any]
    provenance: dict[str, Any]
    comparison: dict[str, Any] | None = None  # each method's paired difference to vanilla, when it ran
    samples: dict[str, Any] | None = None  # the per-example files written beside the results JSON
    failed_methods: dict[str, str] | None = None  # methods left out, each with the line that stopped it
    record: RunRecord | None = field(default=None, repr=False, compare=False)
    path: Path | None = field(default=None, repr=False, compare=False)  # where save() or load() put it
    _nested = {
        "setting": SettingInfo.from_dict,
        "seeds": Seeds.from_dict,
        "methods": _dict_of(MethodInfo),
        "tasks": _dict_of(TaskResult),
        "summary": _dict_of(MethodSummary),
    }
    _optional = ("comparison", "samples", "failed_methods")
    _local = ("record", "path")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], record: RunRecord | None = None) -> EvalResult:
        obj = super().from_dict(d)
        obj.record = record
        return obj

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        """A results JSON written by `w2sbench eval` or save(), checked against its schema."""
        from .schema_io import read_json, validate

        doc = read_json(path)
        validate(doc, "results", str(path))
        obj = cls.from_dict(doc)
        obj.path = Path(path)
        return obj

    def save(self, path: str | Path, log_samples: bool = False) -> Path:
        """Write the results JSON (schema-checked, atomically); with log_samples, first the per-example
        files beside it (`<stem>.samples/<task>/<method>.jsonl`), which the JSON then lists with their
        sha256."""
        from .reports.results import write_results

        path = Path(path)
        if log_samples:
            if self.record is None:
                raise W2SError("log_samples needs the run's predictions: a result loaded from a file has none")
            from .reports.samples import write_samples

            self.samples = write_samples(self.record, path)
        write_results(self.to_dict(), path)
        self.path = path
        return path

    def table(self) -> str:
        """The table `w2sbench eval` prints: accuracies and PGR with intervals per task and method (and each
        method's difference to vanilla, when vanilla ran)."""
        from .reports.table import comparison_table, summary_table

        doc = self.to_dict()
        text = summary_table(doc)
        if self.comparison:
            text += "\n\n" + comparison_table(self.comparison)
        return text

    def sample_rows(self, task: str, method: str) -> list[dict[str, Any]]:
        """One row per test example of `task`: id, text, label, and p(label=1) of the weak model, the
        ceiling and `method` per seed (what `log_samples` writes)."""
        if self.record is None:
            raise W2SError("sample_rows needs the run's predictions: a result loaded from a file has none")
        from .reports.samples import rows

        for tr in self.record.tasks:
            if tr.task.name == task:
                if method not in tr.methods:
                    raise UnknownNameError("method", method, tr.methods)
                return list(rows(tr, method))
        raise UnknownNameError("task", task, [tr.task.name for tr in self.record.tasks])


# ---- the call ----------------------------------------------------------------------------------------------
def evaluate(
    methods: MethodLike | Sequence[MethodLike] = "vanilla",
    tasks: str | Task | Sequence[str | Task] = "default",
    setting: str | Setting = "tiny",
    *,
    method_seeds: int | None = None,
    baseline_seeds: int | None = None,
    limit: str | Sequence[int] | Mapping[str, int] | None = None,
    executor: str | Executor = "inprocess",
    ray_address: str | None = None,
    backend: str = "auto",
    tensor_parallel_size: int = 1,
    n_boot: int = 2000,
    unsealed: bool = False,
    method_timeout_s: float | None = None,
    method_quota: str | None = None,
    include_path: Sequence[str | Path] = (),
    cache: str | Path | None = None,
    perturb_recipe: str | None = None,
    allow_cpu: bool = False,
    output: str | Path | None = None,
    log_samples: bool = False,
    seeds: int | None = None,
    method_timeout: float | None = None,
) -> EvalResult:
    """Run the stages (cached) for `methods` on `tasks` under `setting` and return the results.

    Every keyword but output and log_samples is a knob of the run, with the name it has everywhere (a sweep
    file, a campaign file, RunSpec: w2sbench/engine/spec.py); evaluate() builds one RunSpec from them and
    runs it (evaluate_spec).

    methods: names as on the command line ('vanilla', 'logconf[aux_coef=0.25]', 'path/file.py:Class',
        'logconf[aux_coef=0.1|0.5]' for a sweep; a comma-separated string or a list), Method classes
        (their defaults) or configured instances (`LogConf(aux_coef=0.25)`).
    tasks: names, tags or YAML paths (a comma-separated string or a list), or Task objects.
    setting: a setting's name or YAML path, or a Setting.
    method_seeds / baseline_seeds: seeds per method / for weak and ceiling (default: the setting's).
    limit: split sizes train_label, train_unlabel, test ((200, 400, 200), '200,400,200' or a dict): quick
        looks, not comparable with full-size results.
    executor: where the stages run: 'inprocess' (this process; the method stage in its sealed process; the
        default), 'ray' (a Ray cluster: `ray_address`, default $RAY_ADDRESS, else a local one), or an executor
        object (w2sbench/engine/executors.py).
    method_timeout_s: seconds one method seed may take (default: the setting's limits.method_timeout_s).
    output: also write the results JSON there; log_samples: and the per-example files beside it.
    cache: the folder of cached artifacts (default: $W2SBENCH_CACHE/artifacts).
    perturb_recipe: 'lr=0.5' or 'epochs=2': the strong recipe scaled within the setting's declared range
        (Setting.perturbed), for rank robustness; its results have their own setting hash.
    allow_cpu: run a setting that needs a GPU (it declares device: cuda, bf16 or 8-bit AdamW) on the CPU where
        there is none, instead of refusing: in float32, cached apart from GPU runs, and the results say so.
    seeds, method_timeout: older names of method_seeds and method_timeout_s (aliases; give one name or the
        other).
    The other arguments are `w2sbench eval`'s options of the same names.
    """
    from .engine.spec import RunSpec

    knobs = dict(
        methods=methods,
        tasks=tasks,
        setting=setting,
        method_seeds=method_seeds,
        seeds=seeds,
        baseline_seeds=baseline_seeds,
        limit=limit,
        executor=executor,
        ray_address=ray_address,
        backend=backend,
        tensor_parallel_size=tensor_parallel_size,
        n_boot=n_boot,
        unsealed=unsealed,
        method_timeout_s=method_timeout_s,
        method_timeout=method_timeout,
        method_quota=method_quota,
        include_path=include_path,
        cache=cache,
        perturb_recipe=perturb_recipe,
        allow_cpu=allow_cpu,
    )
    return evaluate_spec(RunSpec.build("evaluate()", knobs), output=output, log_samples=log_samples)


def evaluate_spec(spec: RunSpec, output: str | Path | None = None, log_samples: bool = False) -> EvalResult:
    """Run one RunSpec (engine/run.py: run) and return its results; `output` and `log_samples` as evaluate()."""
    from .engine.run import run
    from .reports.results import build_results

    if log_samples and output is None:
        raise W2SError("log_samples writes its files beside the results JSON: give output= too")
    record = run(spec)
    result = EvalResult.from_dict(build_results(record), record=record)
    if output is not None:
        result.save(output, log_samples=log_samples)
    return result


def default_output(result: EvalResult) -> Path:
    """results/<setting>_<methods>_<time>.json"""
    names = "+".join(re.sub(r"[^\w.=,-]+", "_", name).strip("_") for name in result.methods)
    return Path("results") / f"{result.setting.name}_{names}_{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
