"""One real end-to-end run of the default pipeline on small splits: real packaged models, real data,
the default inference backend (vLLM where installed), the CLI as a user runs it. Then the cache: a rerun
recomputes nothing, a second method reuses every shared stage, and retraining from cached features gives
identical numbers (determinism)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from w2sbench import model_folders, paths
from w2sbench.schema_io import validate

TASKS = "rotten_tomatoes,vader_nyt"
SMALL = "100,300,200"
SECOND_METHOD = '''
import numpy as np
from w2sbench.methods import LossMethod

class HardLabels(LossMethod):
    """Test method: train on the weak labels thresholded at 0.5."""
    name = "hard_labels_test"
    def targets(self, ctx):
        return (ctx.weak_unlabel >= 0.5).astype(np.float32), None
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Artifacts in a fresh cache; models from the user's converted-model cache (converted once here)."""
    for model_id in ("sentence-transformers/all-MiniLM-L6-v2", "google/gemma-3-270m"):
        model_folders.resolve_model(model_id)
    env = dict(os.environ)
    env["W2SBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    env["W2SBENCH_MODEL_DIR"] = str(paths.cache_dir() / "models")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def run_eval(env: dict, out: Path, *extra: str) -> tuple[dict, str]:
    cmd = [
        sys.executable,
        "-m",
        "w2sbench.cli",
        "eval",
        "--tasks",
        TASKS,
        "--limit",
        SMALL,
        "--baseline-seeds",
        "2",
        "--seeds",
        "2",
        "--n-boot",
        "500",
        "-o",
        str(out),
        *extra,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope="module")
def first(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "first.json"
    return run_eval(env, out)


def test_first_run_prints_table_and_writes_valid_results(first):
    doc, stdout = first
    validate(doc, "results", "first.json")
    assert "PGR" in stdout and "rotten_tomatoes" in stdout and "vader_nyt" in stdout
    assert set(doc["tasks"]) == {"rotten_tomatoes", "vader_nyt"}
    for _name, task in doc["tasks"].items():
        assert task["n"] == {"train_label": 100, "train_unlabel": 300, "test": 200}
        assert task["weak"]["seeds"] == 2 and len(task["ceiling"]["accuracy_per_seed"]) == 2
        pgr = task["methods"]["vanilla"]["pgr"]
        w, c, s = pgr["weak_acc"], pgr["ceiling_acc"], pgr["w2s_acc"]
        assert w == pytest.approx(task["weak"]["accuracy"]) and c == pytest.approx(task["ceiling"]["accuracy"])
        if pgr["defined"]:
            assert pgr["pgr"] == pytest.approx((s - w) / (c - w))
            assert pgr["pgr_ci"][0] <= pgr["pgr"] <= pgr["pgr_ci"][1]
        else:
            assert pgr["pgr"] is None and "includes 0" in pgr["undefined_reason"]
            assert "undefined" in stdout
        # real models on real data: both clearly better than chance
        assert w > 0.6 and c > 0.6
    # 2 tasks: weak features on 3 splits, strong on 2; 2 seeds of weak (with its labels), ceiling, method
    assert doc["cache"]["misses"] == {"features_weak": 6, "features_strong": 4, "weak": 4, "ceiling": 4, "method": 4}
    prov = doc["provenance"]
    assert prov["w2sbench_version"] and prov["hardware"]["cpu_count"] >= 1 and prov["packages"]["torch"]
    expected = "vllm" if _vllm_installed() else "hf"
    assert doc["backend"]["used"] == {"features:weak": expected, "features:strong": expected}
    assert doc["sealed"]["sandboxed"] is True and doc["sealed"]["sandbox"]["network"] == "loopback only"
    assert (
        doc["methods"]["vanilla"]["code"]["kind"] == "package"
        and doc["tasks"]["vader_nyt"]["methods"]["vanilla"]["flags"] == []
    )


def _vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def test_rerun_recomputes_nothing(env, first, tmp_path):
    doc, _ = run_eval(env, tmp_path / "again.json")
    assert doc["cache"]["misses"] == {}
    assert doc["tasks"] == first[0]["tasks"]
    # every prediction came from the cache, and the cache only holds sealed runs' predictions: still sealed
    assert doc["sealed"]["sandboxed"] is True and set(doc["sealed"]["sandbox"]["method_code"]) == {"vanilla"}


def test_an_unsealed_run_never_feeds_a_sealed_one(env, first, tmp_path):
    """--unsealed predictions are cached under a key of their own: a later sealed run that found them would
    record a sandbox its method never ran in."""
    doc, _ = run_eval(env, tmp_path / "unsealed.json", "--unsealed")
    assert doc["cache"]["misses"] == {"method": 4} and doc["sealed"]["sandboxed"] is False
    assert doc["tasks"] == first[0]["tasks"]  # the same computation, outside the sandbox
    again, _ = run_eval(env, tmp_path / "sealed.json")
    assert again["cache"]["misses"] == {} and again["sealed"]["sandboxed"] is True


def test_second_method_reuses_every_shared_stage(env, first, tmp_path):
    method_file = tmp_path / "hard_labels.py"
    method_file.write_text(SECOND_METHOD)
    doc, stdout = run_eval(env, tmp_path / "second.json", "--method", f"{method_file}:HardLabels")
    assert doc["cache"]["misses"] == {"method": 4}
    assert doc["cache"]["hits"]["features_strong"] == 4 and doc["cache"]["hits"]["ceiling"] == 4
    for name, task in doc["tasks"].items():
        assert task["weak"] == first[0]["tasks"][name]["weak"]
        assert task["ceiling"] == first[0]["tasks"][name]["ceiling"]
    assert "hard_labels_test" in stdout


def test_a_perturbed_recipe_retrains_from_the_cached_features_and_feeds_robustness(env, first, tmp_path):
    """--perturb-recipe lr=2: the strong trainer moves (ceiling and methods retrain from the cached features,
    the weak model's numbers stay), under its own setting hash; `w2sbench robustness --perturbed` reads it."""
    ref, _ = run_eval(env, tmp_path / "ref.json", "--method", "vanilla,vanilla_hard")
    doc, _ = run_eval(env, tmp_path / "lr2.json", "--method", "vanilla,vanilla_hard", "--perturb-recipe", "lr=2")
    assert doc["setting"]["hash"] != ref["setting"]["hash"] and doc["setting"]["config"]["perturbed"] == {
        "strong": {"lr": 2.0}
    }
    assert "features_strong" not in doc["cache"]["misses"] and doc["cache"]["misses"]["ceiling"] == 4
    for name, task in doc["tasks"].items():
        assert task["weak"]["accuracy"] == ref["tasks"][name]["weak"]["accuracy"]
    assert any(doc["tasks"][t]["ceiling"] != ref["tasks"][t]["ceiling"] for t in doc["tasks"])
    cmd = [sys.executable, "-m", "w2sbench", "robustness", str(tmp_path / "ref.json"), "--resamples", "50"]
    cmd += ["--perturbed", f"lr x2={tmp_path / 'lr2.json'}", "-o", str(tmp_path / "rob.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "rob.json").read_text())
    assert report["perturbations"]["lr x2"]["draws"] > 0 and set(report["methods"]) == {"vanilla", "vanilla_hard"}
    assert "| lr x2 |" in proc.stdout


def test_retraining_from_cached_features_is_deterministic(env, first, tmp_path):
    cache = Path(env["W2SBENCH_CACHE"]) / "artifacts"
    fresh = tmp_path / "cache"
    (fresh / "artifacts").mkdir(parents=True)
    for stage in ("features_weak", "features_strong"):
        shutil.copytree(cache / stage, fresh / "artifacts" / stage)
    doc, _ = run_eval({**env, "W2SBENCH_CACHE": str(fresh)}, tmp_path / "retrained.json")
    assert set(doc["cache"]["misses"]) == {"weak", "ceiling", "method"}
    assert doc["tasks"] == first[0]["tasks"]


def test_a_changed_coefficient_reruns_only_that_method(env, first, tmp_path):
    """A hyperparameter set on the command line: only that method's stage runs (vanilla's and the shared
    stages are cache hits), under its own name, with its config and per-example logs recorded."""
    out = tmp_path / "configured.json"
    doc, stdout = run_eval(env, out, "--method", "vanilla,logconf[aux_coef=0.25]", "--log-samples")
    validate(doc, "results", str(out))
    assert doc["cache"]["misses"] == {"method": 4}  # 2 tasks x 2 seeds of logconf[aux_coef=0.25]
    assert doc["cache"]["hits"]["method"] == 4 and doc["cache"]["hits"]["ceiling"] == 4
    assert list(doc["methods"]) == ["vanilla", "logconf[aux_coef=0.25]"]
    assert doc["methods"]["logconf[aux_coef=0.25]"]["name"] == "logconf"
    assert doc["methods"]["logconf[aux_coef=0.25]"]["config"] == {"aux_coef": 0.25, "warmup_frac": 0.2}
    for name, task in doc["tasks"].items():
        assert task["methods"]["vanilla"] == first[0]["tasks"][name]["methods"]["vanilla"]
    assert "logconf[aux_coef=0.25]" in stdout and "samples:" in stdout
    files = doc["samples"]["files"]
    assert len(files) == 4 and {f["rows"] for f in files} == {200}
    row = json.loads((out.parent / files[0]["path"]).read_text().splitlines()[0])
    assert set(row) == {"index", "id", "text", "label", "weak_p", "w2s_p", "ceiling_p"}
    assert len(row["weak_p"]) == len(row["w2s_p"]) == len(row["ceiling_p"]) == 2
    plots = subprocess.run(
        [sys.executable, "-m", "w2sbench.cli", "plot", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert plots.returncode == 0, plots.stderr[-2000:]
    folder = out.parent / "configured.plots"
    assert {p.name for p in folder.iterdir()} == {
        f"{n}.{ext}" for n in ("pgr", "accuracy") for ext in ("png", "svg", "json")
    }
    assert "transfer: skipped" in plots.stdout


def readme_python_block() -> str:
    """The Python API's example (docs/python-api.md, linked from the README), as written."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "python-api.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_python_api_example_runs(env, first, tmp_path, monkeypatch):
    """The Python API's documented example, as written, in this process (its sizes and seeds are the first run's, so the
    shared stages come from the cache)."""
    for key in ("W2SBENCH_CACHE", "W2SBENCH_MODEL_DIR", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_python_block(), "docs/python-api.md", "exec"), scope)
    result = scope["result"]
    assert list(result.methods) == ["vanilla", "logconf[aux_coef=0.25]", "logconf[aux_coef=0.75]"]
    assert result.methods["logconf[aux_coef=0.75]"].config == {"aux_coef": 0.75, "warmup_frac": 0.2}
    doc = json.loads((tmp_path / "results" / "api.json").read_text())
    validate(doc, "results", "api.json")
    assert doc == result.to_dict()
    assert set(result.cache["misses"]) <= {"method"}  # the shared stages: the first run's
    vanilla = result.tasks["rotten_tomatoes"].methods["vanilla"].w2s.to_dict()
    # the same predictions; only the AUROC's interval differs, drawn with the example's 2,000 resamples, not 500
    same = first[0]["tasks"]["rotten_tomatoes"]["methods"]["vanilla"]["w2s"]
    assert {k: v for k, v in vanilla.items() if k != "auroc_ci"} == {k: v for k, v in same.items() if k != "auroc_ci"}
    assert len(scope["rows"]) == 200 and {f["method"] for f in doc["samples"]["files"]} == set(result.methods)


def test_a_sandboxed_method_runs_an_inference_engine_through_its_context(env, first, tmp_path):
    """strong_zeroshot asks the strong model for label probabilities: the engine (vLLM where installed)
    starts inside the method's sandbox, with loopback only and a private /tmp, and works."""
    doc, _ = run_eval(env, tmp_path / "zeroshot.json", "--method", "strong_zeroshot")
    assert doc["cache"]["misses"] == {"method": 4} and doc["sealed"]["sandboxed"] is True
    for task in doc["tasks"].values():
        row = task["methods"]["strong_zeroshot"]
        assert row["compute"][0]["inference_prompts"] == 200 and "strong model (inference)" in row["compute"][0]["saw"]
        assert 0.3 < row["w2s"]["accuracy"] < 0.9  # a base model prompted zero-shot: a real, imperfect answer
