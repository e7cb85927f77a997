"""The unit graph, executors, configured methods carried by units, and sweep files: no model runs here (the
Ray executor and sweeps end to end: tests/test_ray.py)."""

from __future__ import annotations

import json

import pytest

from w2sbench.engine.executors import InProcessExecutor, get_executor
from w2sbench.engine.pipeline import Pipeline, _config_json
from w2sbench.engine.ray_executor import unit_resources
from w2sbench.engine.units import MethodRef, Unit, dedupe, plan
from w2sbench.errors import ConfigError, MethodFailed, W2SError
from w2sbench.isolation.described import unit_spec
from w2sbench.isolation.resolve import resolve_methods
from w2sbench.settings import load_setting
from w2sbench.sweep import load_sweep, slug
from w2sbench.tasks import load_task

METHOD_FILE = """
from w2sbench.methods import LossMethod

class Tempered(LossMethod):
    name = "tempered_test"
    temperature: float = 1.0
    rounds: int = 1
"""


def test_plan_lists_every_unit_after_its_dependencies():
    tasks = [load_task("rotten_tomatoes"), load_task("vader_nyt")]
    refs = [MethodRef("a", "m:A"), MethodRef("b[k=1]", "m:B", '{"k": 1}')]
    units = plan(load_setting("tiny"), tasks, refs, baseline_seeds=3, method_seeds=2)
    kinds = [u.kind for u in units]
    assert kinds.count("features") == 4 and kinds.count("weak") == 6 and kinds.count("ceiling") == 6
    assert kinds.count("method") == 2 * 2 * 2 and kinds.count("score") == 2 * 2
    seen: set[str] = set()
    for unit in units:
        assert set(unit.deps) <= seen, unit.id
        seen.add(unit.id)
    assert len(seen) == len(units)  # ids are unique
    # method seed s learns from weak seed s mod baseline seeds; score reads every seed of all three
    method = next(u for u in units if u.kind == "method" and u.seed == 1 and u.task == "vader_nyt")
    assert "weak/vader_nyt/seed1" in method.deps and "features/vader_nyt/strong" in method.deps
    score = next(u for u in units if u.kind == "score" and u.task == "vader_nyt" and u.method == "b[k=1]")
    assert len(score.deps) == 3 + 3 + 2
    # ids name a method by its name in results; a method unit carries how to rebuild it elsewhere
    seed0 = next(u for u in units if u.kind == "method" and u.method == "b[k=1]" and u.seed == 0)
    assert seed0.id == "method/rotten_tomatoes/b[k=1]/seed0" and (seed0.spec, seed0.config) == ("m:B", '{"k": 1}')
    assert score.spec is None and score.describe() == "score b[k=1] vader_nyt"
    # the in-process order is the pipeline's: features stage-major, then task by task
    assert [u.id for u in units[:4]] == [
        "features/rotten_tomatoes/weak",
        "features/vader_nyt/weak",
        "features/rotten_tomatoes/strong",
        "features/vader_nyt/strong",
    ]
    assert dedupe(units + units[:3]) == units


def test_fine_tuning_regimes_have_no_feature_units():
    units = plan(load_setting("aar-qwen"), [load_task("rotten_tomatoes")], [MethodRef("a", "m:A")], 2, 1)
    assert {u.kind for u in units} == {"weak", "ceiling", "method", "score"}
    assert all(not u.deps for u in units if u.kind in ("weak", "ceiling"))


def test_resources_follow_the_setting():
    feats, head, method, score = (
        Unit("features", "t", role="weak"),
        Unit("weak", "t", seed=0),
        Unit("method", "t", seed=0, method="m"),
        Unit("score", "t", method="m"),
    )
    assert all(unit_resources(u, "frozen", 1, False) == {"num_cpus": 1, "num_gpus": 0} for u in (feats, method))
    assert unit_resources(feats, "frozen", 2, True)["num_gpus"] == 2
    assert unit_resources(head, "frozen", 1, True)["num_gpus"] == 0  # a linear head
    assert unit_resources(Unit("ceiling", "t", seed=0), "lora", 4, True)["num_gpus"] == 1  # training
    assert unit_resources(method, "lora", 1, True)["num_gpus"] == 1
    assert unit_resources(score, "lora", 1, True)["num_gpus"] == 0


def test_in_process_executor_skips_the_rest_of_a_failed_method_and_goes_on():
    class Failing:
        def __init__(self):
            self.ran, self.failed = [], []

        def run_unit(self, unit, inputs):
            self.ran.append(unit.id)
            if unit.method == "bad":
                raise MethodFailed("bad", f"method 'bad' failed on {unit.id}")
            return 1

        def method_failed(self, error):
            self.failed.append((error.method, str(error)))

        def unit_done(self, unit, value):
            pass

    units = [
        Unit("method", "t", seed=0, method="bad"),
        Unit("method", "t", seed=0, method="good"),
        Unit("method", "t", seed=1, method="bad"),
        Unit("score", "t", method="bad", deps=("method/t/bad/seed0", "method/t/bad/seed1")),
        Unit("score", "t", method="good", deps=("method/t/good/seed0",)),
    ]
    pipe = Failing()
    values = InProcessExecutor().run(pipe, units)
    assert pipe.ran == ["method/t/bad/seed0", "method/t/good/seed0", "score/t/good"]
    assert pipe.failed == [("bad", "method 'bad' failed on method/t/bad/seed0")]
    assert set(values) == {"method/t/good/seed0", "score/t/good"}


def test_in_process_executor_runs_units_in_order():
    class Recorder:
        def __init__(self):
            self.ran, self.done = [], []

        def run_unit(self, unit, inputs):
            self.ran.append((unit.id, sorted(inputs)))
            return unit.id.upper()

        def unit_done(self, unit, value):
            self.done.append(value)

    units = [Unit("weak", "t", seed=0), Unit("method", "t", seed=0, method="m", deps=("weak/t/seed0",))]
    rec = Recorder()
    values = InProcessExecutor().run(rec, units)
    assert rec.ran == [("weak/t/seed0", []), ("method/t/m/seed0", ["weak/t/seed0"])]
    assert values == {"weak/t/seed0": "WEAK/T/SEED0", "method/t/m/seed0": "METHOD/T/M/SEED0"}
    assert rec.done == list(values.values())
    with pytest.raises(W2SError, match="unknown executor 'dask'.*inprocess, ray"):
        get_executor("dask")
    with pytest.raises(W2SError, match="needs --executor ray"):
        get_executor("inprocess", "127.0.0.1:6379")
    mine = InProcessExecutor()
    assert get_executor(mine) is mine  # an executor object, as evaluate(executor=...) takes it
    with pytest.raises(W2SError, match="or an object with run"):
        get_executor(3)


def test_a_method_unit_rebuilds_the_configured_method_elsewhere(tmp_path):
    """What a Ray worker does with a method unit: the class from its spec, the instance from its config."""
    path = tmp_path / "tempered.py"
    path.write_text(METHOD_FILE)
    plain, logconf, tempered = resolve_methods(f"vanilla,logconf[aux_coef=1],{path}:Tempered[temperature=2,rounds=3]")
    setting, task = load_setting("tiny"), load_task("rotten_tomatoes")
    pipeline = Pipeline.__new__(Pipeline)  # plan() and method_of() need no models: no __init__
    pipeline.setting, pipeline.tasks, pipeline.baseline_seeds, pipeline.method_seeds = setting, [task], 1, 1
    pipeline._methods = {}
    units = {u.id: u for u in pipeline.plan([plain, logconf, tempered])}
    unit = units["method/rotten_tomatoes/logconf[aux_coef=1.0]/seed0"]
    assert unit.spec == "w2sbench.methods.builtin:LogConf" and json.loads(unit.config) == {
        "aux_coef": 1.0,
        "warmup_frac": 0.2,
    }
    again = pipeline.method_of(unit)
    assert again is not logconf and again.run_name == logconf.run_name and again.config() == logconf.config()
    assert pipeline.method_of(unit) is again  # built once per process
    unit = units["method/rotten_tomatoes/tempered_test[temperature=2.0,rounds=3]/seed0"]
    assert unit.spec == unit_spec(type(tempered)) and json.loads(unit.spec.removeprefix("described:"))["origin"] == {
        "kind": "file",
        "path": str(path),
    }
    again = pipeline.method_of(unit)
    assert (again.temperature, again.rounds) == (2.0, 3) and again.config() == tempered.config()
    assert units["method/rotten_tomatoes/vanilla/seed0"].config == "{}"
    # code that differs on a node names itself rather than running another configuration
    forged = Unit("method", "t", seed=0, method="logconf[aux_coef=3.0]", spec=unit.spec, config="{}")
    with pytest.raises(W2SError, match="every node needs the same method code"):
        pipeline.method_of(forged)


def test_an_undeclared_configuration_cannot_travel():
    """A method from before declared fields, configured by overriding config(): in-process it fails on
    its first miss (its sealed process cannot rebuild it either); its unit carries no config."""
    from w2sbench.methods import Method

    class Old(Method):
        name = "old_test"

        def __init__(self, k=1):
            super().__init__()
            self.k = k

        def config(self):
            return {"k": self.k}

    assert _config_json(Old()) == "{}" and _config_json(Old(k=2)) is None
    pipeline = Pipeline.__new__(Pipeline)
    pipeline._methods = {}
    with pytest.raises(W2SError, match="cannot be rebuilt in another process"):
        pipeline.method_of(Unit("method", "t", seed=0, method="old_test", spec="x:Old", config=None))


def test_sweep_file_expands_the_grid(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(
        "tasks: [rotten_tomatoes, vader_nyt]\n"
        "seeds: 2\n"
        "methods:\n"
        "  vanilla:\n"
        "  logconf: {aux_coef: [0.25, 0.5], warmup_frac: 0.1}\n"
        "  window: {radius: [0.1, 0.2]}\n"
    )
    sweep = load_sweep(spec)
    assert sweep.configurations == [
        "vanilla",
        "logconf[aux_coef=0.25,warmup_frac=0.1]",
        "logconf[aux_coef=0.5,warmup_frac=0.1]",
        "window[radius=0.1]",
        "window[radius=0.2]",
    ]
    assert sweep.spec.tasks == ("rotten_tomatoes,vader_nyt",) and sweep.spec.setting == "tiny"
    assert sweep.spec.options.method_seeds == 2  # `seeds`, the older name of method_seeds
    assert str(sweep.output).endswith("sweep_grid")
    assert slug("logconf[aux_coef=0.25,warmup_frac=0.1]", "logconf") == "logconf_aux_coef-0.25_warmup_frac-0.1"
    # each configuration is a method text as --method takes it: its name in results drops the defaults
    methods = [m for c in sweep.configurations for m in resolve_methods(c)]
    assert [m.run_name for m in methods] == [
        "vanilla",
        "logconf[aux_coef=0.25,warmup_frac=0.1]",
        "logconf[warmup_frac=0.1]",
        "window[radius=0.1]",
        "window[radius=0.2]",
    ]

    # the same grid as method texts (| sweeps), and fixed values in a method's brackets
    spec.write_text("methods: [vanilla, 'logconf[aux_coef=0.25|0.5,warmup_frac=0.1]', 'window[radius=0.1|0.2]']\n")
    assert load_sweep(spec).configurations == sweep.configurations
    spec.write_text(
        "methods:\n  vanilla:\n  logconf[warmup_frac=0.1]: {aux_coef: [0.25, 0.5]}\n  window: {radius: [0.1, 0.2]}\n"
    )
    assert load_sweep(spec).configurations == [
        "vanilla",
        "logconf[warmup_frac=0.1,aux_coef=0.25]",
        "logconf[warmup_frac=0.1,aux_coef=0.5]",
        "window[radius=0.1]",
        "window[radius=0.2]",
    ]


def test_two_texts_of_one_configuration_are_refused(tmp_path):
    from w2sbench.sweep import run_sweep

    spec = tmp_path / "same.yaml"
    spec.write_text("tasks: rotten_tomatoes\nmethods:\n  logconf:\n  'logconf[aux_coef=0.5]':\n")
    sweep = load_sweep(spec)
    assert sweep.configurations == ["logconf", "logconf[aux_coef=0.5]"]
    with pytest.raises(W2SError, match=r"logconf and logconf\[aux_coef=0.5\] are one configuration \(logconf\)"):
        run_sweep(sweep, tmp_path / "out", executor=InProcessExecutor())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text, field",
    [
        ("methods: []\n", "methods"),
        ("methods: {vanilla: [1]}\n", "methods.vanilla"),
        ("methods: {'logconf[aux_coef=1]': {aux_coef: [2]}}\n", "methods.logconf[aux_coef=1].aux_coef"),
        ("methods: {'logconf[aux_coef': }\n", "methods.logconf[aux_coef"),
        ("methods: {logconf: {aux_coef: []}}\n", "methods.logconf.aux_coef"),
        ("methods: {logconf: {aux_coef: [[1]]}}\n", "methods.logconf.aux_coef"),
        ("methods: {window: {name: ['a,b']}}\n", "methods.window.name"),
        ("methods: {vanilla: }\nseeds: 0\n", "seeds"),
        ("methods: {vanilla: }\ngrid: 1\n", "grid"),
        ("methods: {vanilla: }\nseeds: 2\nmethod_seeds: 2\n", "method_seeds"),
        ("methods: {vanilla: }\ntensor_parallel_size: 2\nbackend: hf\n", "tensor_parallel_size"),
        ("methods: {vanilla: }\nmethod_timeout_s: -1\n", "method_timeout_s"),
        ("methods: {vanilla: }\nallow_cpu: 1\n", "allow_cpu"),
    ],
)
def test_sweep_file_errors_name_the_field(tmp_path, text, field):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_sweep(spec)
    assert info.value.field == field and str(spec) in str(info.value)


def test_two_writers_racing_on_one_artifact_leave_one_whole(tmp_path, monkeypatch):
    """A unit retried while its first attempt still runs: both save the same key. The second to rename finds
    the first's folder in place (after its own exists() check said no) and keeps it."""
    import pathlib

    import numpy as np

    from w2sbench.cache import ArtifactStore

    store = ArtifactStore(root=tmp_path)
    key = {"stage": "method", "seed": 0}
    store.save("method", key, {"test": np.arange(4, dtype=np.float32)}, {"n": 1})
    folder = store.folder("method", key)
    real_exists = pathlib.Path.exists
    monkeypatch.setattr(pathlib.Path, "exists", lambda self: False if self == folder else real_exists(self))
    store.save("method", key, {"test": np.arange(4, dtype=np.float32)}, {"n": 1})  # the loser: no error
    monkeypatch.undo()
    found = ArtifactStore(root=tmp_path).load("method", key)
    assert found is not None and found["test"].tolist() == [0, 1, 2, 3]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
