"""The run as one value (w2sbench/engine/spec.py): one name per knob whichever way a run is described
(evaluate()'s keywords, a sweep file, a campaign file), older names read as aliases, every knob reachable
from each, bad values refused in one line naming the file and the field. No model runs here."""

from __future__ import annotations

import json

import pytest

from w2sbench.engine.run import setting_of, tasks_of
from w2sbench.engine.spec import ALIASES, ENGINE_KNOBS, KNOBS, RunOptions, RunSpec
from w2sbench.errors import ConfigError, W2SError
from w2sbench.serve.campaign import load_campaign
from w2sbench.sweep import FILE_KNOBS, load_sweep


def test_one_name_per_knob_and_aliases_for_the_old_ones():
    assert set(ENGINE_KNOBS) == {f for f in RunOptions.__dataclass_fields__}
    assert len(KNOBS) == len(set(KNOBS))
    assert all(new in KNOBS and old not in KNOBS for old, new in ALIASES.items())
    spec = RunSpec.build("evaluate()", {"seeds": 3, "method_timeout": 5, "limit": "10,20,30"})
    assert spec.options.method_seeds == 3 and spec.options.method_timeout_s == 5.0
    assert spec.options.limit == {"train_label": 10, "train_unlabel": 20, "test": 30}
    assert spec.knobs()["method_seeds"] == 3
    with pytest.raises(W2SError, match=r"evaluate\(\): method_seeds: given twice, as seeds and method_seeds"):
        RunSpec.build("evaluate()", {"seeds": 3, "method_seeds": 2})
    with pytest.raises(W2SError, match="unknown knob"):
        RunSpec.build("evaluate()", {"sizes": "1,2,3"})
    with pytest.raises(W2SError, match="tensor_parallel_size 2 needs the vllm backend"):
        RunSpec.build("evaluate()", {"tensor_parallel_size": 2, "backend": "hf"})
    # None keeps the base's value; with_knobs changes only what it is given
    base = RunSpec.build("x()", {"method_seeds": 4, "backend": "hf"})
    again = base.with_knobs("y()", method_seeds=None, n_boot=100)
    assert again.options.method_seeds == 4 and again.options.backend == "hf" and again.options.n_boot == 100


def test_a_sweep_file_reaches_every_knob_a_file_may_set(tmp_path):
    (tmp_path / "mine").mkdir()
    values = {
        "setting": "tiny",
        "tasks": ["rotten_tomatoes"],
        "include_path": ["mine"],
        "perturb_recipe": "lr=0.5",
        "executor": "ray",
        "ray_address": "auto",
        "cache": str(tmp_path / "c"),
        "backend": "vllm",
        "tensor_parallel_size": 2,
        "baseline_seeds": 2,
        "method_seeds": 3,
        "limit": "10,20,30",
        "n_boot": 300,
        "unsealed": True,
        "method_timeout_s": 60,
        "method_quota": "memory=4G",
        "allow_cpu": True,
    }
    assert set(values) == set(FILE_KNOBS)
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps({**values, "methods": ["vanilla"]}))
    spec = load_sweep(path).spec
    knobs = spec.knobs()
    assert knobs["include_path"] == (str(tmp_path / "mine"),)  # relative to the file
    assert knobs["tasks"] == ("rotten_tomatoes",)
    assert knobs["limit"] == {"train_label": 10, "train_unlabel": 20, "test": 30}
    for k in ("setting", "perturb_recipe", "executor", "ray_address", "cache", "backend", "method_quota"):
        assert knobs[k] == values[k]
    for k in ("tensor_parallel_size", "baseline_seeds", "method_seeds", "n_boot", "unsealed", "allow_cpu"):
        assert knobs[k] == values[k]
    assert knobs["method_timeout_s"] == 60.0
    # the command line's options over the file's
    assert spec.with_knobs("cli()", executor="inprocess", ray_address=None).executor == "inprocess"


def _campaign(tmp_path, **extra):
    doc = {
        "name": "c",
        "tasks": {"development": ["rotten_tomatoes"], **extra.pop("tasks", {})},
        "agents": {"a": {"token_sha256": "0" * 64}},
        "state": "state",
        **extra,
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(json.dumps(doc))
    return load_campaign(path)


def test_a_campaign_reaches_the_knobs_and_draws_200_by_default(tmp_path):
    c = _campaign(tmp_path)
    assert c.spec.options.n_boot == 200 and c.setting == "tiny" and c.job_timeout_s is None
    c = _campaign(
        tmp_path,
        n_boot=500,
        method_seeds=2,
        tensor_parallel_size=2,
        backend="vllm",
        method_quota="memory=2G",
        allow_cpu=True,
        method_timeout_s=30,
        job_timeout_s=100,
        limit="1,2,3",
        include_path=["tasks"],
    )
    o = c.spec.options
    assert (o.n_boot, o.method_seeds, o.tensor_parallel_size, o.method_quota, o.allow_cpu) == (
        500,
        2,
        2,
        "memory=2G",
        True,
    )
    assert o.method_timeout_s == 30.0 and c.job_timeout_s == 100
    assert o.limit == {"train_label": 1, "train_unlabel": 2, "test": 3}
    assert c.spec.include_path == (str(tmp_path / "tasks"),)
    # the older places: seeds, tasks.limit and tasks.include
    old = _campaign(tmp_path, seeds=3, tasks={"limit": "4,5,6", "include": ["x"]})
    assert old.spec.options.method_seeds == 3 and old.spec.options.limit["test"] == 6
    assert old.spec.include_path == (str(tmp_path / "x"),)
    with pytest.raises(ConfigError, match="tasks.limit"):
        _campaign(tmp_path, limit="1,2,3", tasks={"limit": "4,5,6"})
    # a job's run: the campaign's options with its parts and deadline, its tasks and method
    run = c.run_spec(["rotten_tomatoes"], {"rotten_tomatoes": (0, 2)}, 123.0, methods=("vanilla",))
    assert run.options.test_parts == {"rotten_tomatoes": (0, 2)} and run.options.method_deadline == 123.0
    assert run.options.n_boot == 500 and run.methods == ("vanilla",) and run.tasks == ("rotten_tomatoes",)


def test_the_job_limit_is_per_seed_times_units_unless_the_campaign_gives_one(tmp_path):
    from w2sbench.serve.engine import job_limit

    assert job_limit(_campaign(tmp_path, job_timeout_s=77)) == 77.0
    assert job_limit(_campaign(tmp_path, method_timeout_s=10, method_seeds=3)) == 30.0
    setting = setting_of(RunSpec())
    assert job_limit(_campaign(tmp_path)) == setting.method_timeout_s * setting.method_seeds


def test_the_spec_resolves_its_setting_and_tasks():
    knobs = {"tasks": "rotten_tomatoes,sms_spam,rotten_tomatoes", "perturb_recipe": "lr=0.5"}
    spec = RunSpec.build("evaluate()", knobs)
    assert [t.name for t in tasks_of(spec)] == ["rotten_tomatoes", "sms_spam"]
    assert setting_of(spec).hash != setting_of(RunSpec()).hash
    with pytest.raises(W2SError, match="give KNOB=FACTOR"):
        setting_of(RunSpec(perturb_recipe="lr"))


def test_a_sweep_runs_through_run_spec_and_matches_evaluate(tmp_path, monkeypatch):
    """Two configurations of one sweep file (its knobs: tasks, seeds, draws, cache) through execute(spec): each
    results JSON holds the same numbers evaluate() gives that configuration alone, on the same cache."""
    from support.toy import toy_arguments

    import w2sbench
    from w2sbench.sweep import run_sweep

    toy = toy_arguments(tmp_path, monkeypatch)
    path = tmp_path / "sweep.yaml"
    path.write_text(
        json.dumps(
            {
                "tasks": "toy",
                "method_seeds": 2,
                "baseline_seeds": 2,
                "n_boot": 200,
                "cache": str(toy["cache"]),
                "methods": {"logconf": {"aux_coef": [0.25, 0.5]}},
            }
        )
    )
    summary = run_sweep(load_sweep(path), tmp_path / "out")
    assert [r["method"] for r in sorted(summary["ranking"], key=lambda r: r["configuration"])] == [
        "logconf[aux_coef=0.25]",
        "logconf",
    ]
    assert summary["seeds"] == {"baseline": 2, "method": 2} and summary["executor"] == "inprocess"
    for row in summary["ranking"]:
        swept = json.loads((tmp_path / "out" / row["results"].rpartition("/")[2]).read_text())
        alone = w2sbench.evaluate(row["configuration"], **toy).to_dict()
        assert swept["tasks"]["toy"]["methods"] == alone["tasks"]["toy"]["methods"]
        assert swept["summary"] == alone["summary"]
