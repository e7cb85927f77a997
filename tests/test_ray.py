"""The Ray executor on a real local cluster (a head and a second worker node, `ray start`, in a loopback-only
network namespace: tests/ray_cluster.py), against the in-process executor on the default suite's real
models and data at small sizes:

- identical results, number for number, and a unit computed on Ray is a cache hit in-process;
- a worker killed (SIGKILL) while it holds a method unit: Ray retries the unit, the results are identical;
- a sweep of 2 methods x 2 hyperparameter values on Ray, interrupted, resumes from the cache and completes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import LoopbackCluster, skip_or_fail, unavailable_reason

from w2sbench import model_folders, paths

TASKS = "rotten_tomatoes,vader_nyt"
SMALL = "100,200,100"
METHOD_FILE = '''
import time

import numpy as np

from w2sbench.methods import LossMethod


class SlowVanilla(LossMethod):
    """Test method: vanilla, whose first seed on rotten_tomatoes takes a few seconds (time to kill its worker)."""

    name = "slow_vanilla_test"

    def targets(self, ctx):
        if ctx.task == "rotten_tomatoes" and ctx.seed == 0:
            time.sleep(8)
        return ctx.weak_unlabel, None


class Sharpen(LossMethod):
    """Test method with a hyperparameter (a typed class field): weak labels at a temperature."""

    name = "sharpen_test"
    temperature: float = 1.0

    def targets(self, ctx):
        time.sleep(1)  # leaves the sweep test time to interrupt a run midway
        p = np.clip(ctx.weak_unlabel, 1e-6, 1 - 1e-6)
        return (1 / (1 + np.exp(-np.log(p / (1 - p)) / self.temperature))).astype(np.float32), None
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    for model_id in ("sentence-transformers/all-MiniLM-L6-v2", "google/gemma-3-270m"):
        model_folders.resolve_model(model_id)  # converted once, outside the timed runs
    env = dict(os.environ)
    env["W2SBENCH_MODEL_DIR"] = str(paths.cache_dir() / "models")
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def method_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("methods") / "test_methods.py"
    path.write_text(METHOD_FILE)
    return path


@pytest.fixture(scope="module")
def methods(method_file) -> str:
    return f"vanilla,logconf,{method_file}:SlowVanilla"


def eval_argv(out: Path, methods: str, *extra: str) -> list[str]:
    # The hf backend: vLLM's engine start (20-40 s per feature unit on 2 cores) would make this test slow;
    # the units run the same code either way.
    return [
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
        "--backend",
        "hf",
        "--n-boot",
        "500",
        "--method",
        methods,
        "-o",
        str(out),
        *extra,
    ]


def numbers(doc: dict) -> dict:
    """Everything a results document says about the methods' performance."""
    return {k: doc.get(k) for k in ("tasks", "summary", "comparison")}


@pytest.fixture(scope="module")
def reference(env, methods, tmp_path_factory) -> dict:
    """The in-process executor, cold."""
    folder = tmp_path_factory.mktemp("inprocess")
    run_env = {**env, "W2SBENCH_CACHE": str(folder / "cache")}
    proc = subprocess.run(
        eval_argv(folder / "out.json", methods), env=run_env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "out.json").read_text())


@pytest.fixture(scope="module")
def cluster(env):
    why = unavailable_reason()
    if why:
        skip_or_fail(why)
    cluster = LoopbackCluster(env).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def ray_first(cluster, methods, tmp_path_factory) -> tuple[dict, str, Path]:
    """The Ray executor, cold, on its own cache."""
    folder = tmp_path_factory.mktemp("ray")
    run_env = {**cluster.env, "W2SBENCH_CACHE": str(folder / "cache")}
    argv = eval_argv(folder / "out.json", methods, "--executor", "ray", "--ray-address", cluster.address)
    proc = cluster.run(argv, env=run_env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "out.json").read_text()), proc.stderr, folder / "cache"


def test_ray_executor_gives_identical_results(reference, ray_first, env, methods, tmp_path):
    doc, stderr, cache = ray_first
    assert numbers(doc) == numbers(reference)
    assert doc["cache"]["misses"] == reference["cache"]["misses"]  # every unit computed once
    total = 2 * 2 + 2 * (2 + 2) + 2 * 3 * (2 + 1)  # features; weak and ceiling; 3 methods x (2 seeds + score)
    assert f"ray: {total}/{total} units done" in stderr
    assert doc["sealed"]["sandboxed"] and doc["sealed"]["sandbox"]["network"] == "loopback only"
    nodes = {u["node"] for u in doc["sealed"]["units"]}  # each method unit names the Ray node that ran it
    assert nodes and all(isinstance(n, str) and len(n) == 56 for n in nodes), nodes
    # A unit computed on Ray is a cache hit in-process: the keys are the same.
    again = subprocess.run(
        eval_argv(tmp_path / "again.json", methods),
        env={**env, "W2SBENCH_CACHE": str(cache.parent / "cache")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((tmp_path / "again.json").read_text())
    assert rerun["cache"]["misses"] == {} and numbers(rerun) == numbers(reference)


def _claims(cache: Path) -> list[dict]:
    out = []
    for path in (cache / "artifacts" / ".runs").glob("*/*/*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # being written
            pass
    return out


def test_killed_worker_is_retried_with_identical_results(cluster, ray_first, reference, methods, tmp_path):
    cache = tmp_path / "cache"
    (cache / "artifacts").mkdir(parents=True)
    for stage in ("features_weak", "features_strong"):  # the weak, ceiling and method units run again
        shutil.copytree(ray_first[2] / "artifacts" / stage, cache / "artifacts" / stage)
    run_env = {**cluster.env, "W2SBENCH_CACHE": str(cache)}
    argv = eval_argv(tmp_path / "out.json", methods, "--executor", "ray", "--ray-address", cluster.address)
    driver = cluster.popen(argv, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = "method/rotten_tomatoes/slow_vanilla_test/seed0"  # units are named by the method's name in results
    victim = None
    deadline = time.time() + 600
    while victim is None and time.time() < deadline and driver.poll() is None:
        held = [c for c in _claims(cache) if c["unit"] == target]
        if held:
            victim = held[0]["pid"]
        time.sleep(0.2)
    assert victim is not None, "the slow method unit never started"
    time.sleep(3)  # inside the unit: its sealed method process is running
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=900)
    assert driver.returncode == 0, stderr[-3000:]
    assert "attempt 2: a worker died before" in stderr
    assert not Path(f"/proc/{victim}").exists()
    doc = json.loads((tmp_path / "out.json").read_text())
    assert numbers(doc) == numbers(reference)
    assert not (cache / "artifacts" / ".runs").exists()  # claims are the run's, gone with it
    # every artifact in place is whole (written to a temporary folder, then moved)
    assert all((a / "meta.json").exists() for a in (cache / "artifacts" / "method").iterdir() if a.name[0] != ".")


def test_sweep_on_ray_completes_and_resumes(cluster, ray_first, reference, method_file, tmp_path):
    cache = tmp_path / "cache"
    (cache / "artifacts").mkdir(parents=True)
    for stage in ("features_weak", "features_strong", "weak", "ceiling"):
        shutil.copytree(ray_first[2] / "artifacts" / stage, cache / "artifacts" / stage)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "setting: tiny\n"
        "tasks: [rotten_tomatoes]\n"
        f"limit: {SMALL}\n"
        "baseline_seeds: 2\n"
        "seeds: 2\n"
        "backend: hf\n"
        "n_boot: 500\n"
        "methods:\n"
        "  logconf: {aux_coef: [0.25, 0.5]}\n"
        f"  {method_file}:Sharpen: {{temperature: [0.5, 2]}}\n"
    )
    out = tmp_path / "sweep"
    run_env = {**cluster.env, "W2SBENCH_CACHE": str(cache)}
    argv = [sys.executable, "-m", "w2sbench.cli", "sweep", str(spec), "-o", str(out), "--executor", "ray"]
    argv += ["--ray-address", cluster.address]
    first = cluster.popen(
        argv,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's Ctrl-C finds it
    )
    deadline = time.time() + 600
    while (
        time.time() < deadline and first.poll() is None and not list((cache / "artifacts").glob("method/*/meta.json"))
    ):
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and not (out / "summary.json").exists()
    done_before = len(list((cache / "artifacts").glob("method/*/meta.json")))
    assert 1 <= done_before <= 8

    again = cluster.run(argv, env=run_env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    # the shared stages and the method seeds finished before the interruption are reused
    assert summary["cache"]["misses"] == ({"method": 8 - done_before} if done_before < 8 else {})
    assert summary["cache"]["hits"]["method"] == done_before
    ranked = [row["configuration"] for row in summary["ranking"]]
    assert sorted(ranked) == sorted(
        ["logconf[aux_coef=0.25]", "logconf[aux_coef=0.5]", f"{method_file}:Sharpen[temperature=0.5]"]
        + [f"{method_file}:Sharpen[temperature=2]"]
    )
    # each configuration's name in results: the values that differ from the method's defaults
    assert sorted(row["method"] for row in summary["ranking"]) == sorted(
        ["logconf[aux_coef=0.25]", "logconf", "sharpen_test[temperature=0.5]", "sharpen_test[temperature=2.0]"]
    )
    assert len(list(out.glob("*.json"))) == 5 and "| 1 |" in (out / "summary.md").read_text()
    # logconf at its default aux_coef is the evaluation's logconf: the same numbers on the same task
    doc = json.loads((out / "logconf_aux_coef-0.5.json").read_text())
    assert doc["methods"]["logconf"]["config"]["aux_coef"] == 0.5
    mine, theirs = doc["tasks"]["rotten_tomatoes"], reference["tasks"]["rotten_tomatoes"]
    for part in ("w2s", "pgr"):
        assert mine["methods"]["logconf"][part] == theirs["methods"]["logconf"][part]
    sharp = json.loads((out / "sharpen_test_temperature-2.json").read_text())
    assert sharp["methods"]["sharpen_test[temperature=2.0]"]["config"] == {"temperature": 2.0}


SERVE_SCRIPT = """
import json, logging, sys, time
from w2sbench.serve.campaign import load_campaign
from w2sbench.serve.engine import Service
from w2sbench.serve.http_api import LocalClient

logging.basicConfig(level=logging.INFO)
service = Service(load_campaign(sys.argv[1]))
try:
    client = LocalClient(service, "agent-token")
    code = open(sys.argv[2]).read()
    job = client.call("submit_method", {"files": {"__init__.py": code}})["job"]
    deadline = time.time() + 900
    while (view := client.call("job", {"job": job}))["status"] not in ("done", "failed") and time.time() < deadline:
        time.sleep(1)
    print(json.dumps(view))
finally:
    service.stop()
"""


def test_a_service_job_runs_on_ray_and_no_worker_imports_the_agents_code(cluster, ray_first, tmp_path):
    """`executor: ray` in a campaign: the job's units run on the cluster's workers, which rebuild the agent's
    method from its checked description (w2sbench.isolation.described) instead of importing it, so top-level code that
    would write a file on the host leaves no trace (in the sandbox it writes to a private /tmp)."""
    from w2sbench.serve.campaign import token_sha256

    cache = tmp_path / "cache"
    (cache / "artifacts").mkdir(parents=True)
    for stage in ("features_weak", "features_strong", "weak", "ceiling"):
        shutil.copytree(ray_first[2] / "artifacts" / stage, cache / "artifacts" / stage)
    marker = tmp_path / "imported-outside-the-sandbox"
    code = tmp_path / "agent.py"
    code.write_text(
        f"try:\n    open({str(marker)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
        "from w2sbench.methods import LossMethod\n\n\n"
        "class Plain(LossMethod):\n    name = 'plain'\n"
    )
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        json.dumps(
            {
                "name": "ray-campaign",
                "setting": "tiny",
                "tasks": {"development": ["rotten_tomatoes"], "limit": SMALL},
                "validation_fraction": 0.9,
                "seeds": 2,
                "baseline_seeds": 2,
                "backend": "hf",
                "rule": {"kind": "ladder", "step": 0.02},
                "agents": {"agent": {"token_sha256": token_sha256("agent-token"), "evaluations": 3}},
                "state": str(tmp_path / "state"),
                "cache": str(cache),
                "executor": "ray",
                "ray_address": cluster.address,
            }
        )
    )
    script = tmp_path / "serve_job.py"
    script.write_text(SERVE_SCRIPT)
    run_env = {**cluster.env, "W2SBENCH_CACHE": str(cache)}
    proc = cluster.run([sys.executable, str(script), str(campaign), str(code)], env=run_env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    view = json.loads(proc.stdout.strip().splitlines()[-1])
    assert view["status"] == "done", view
    done = re.findall(r"ray: (\d+)/(\d+) units done \((.*?) rotten_tomatoes", proc.stderr)
    assert done and done[-1][0] == done[-1][1]  # every unit of the job ran on the cluster
    assert {what for _, _, what in done} >= {"method plain", "score plain"}
    assert not marker.exists()  # neither the service nor a worker imported the code outside the sandbox
    exec(compile(code.read_text(), str(code), "exec"), {})  # the control: importing it here does write the file
    assert marker.exists()
