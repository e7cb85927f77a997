"""The Python API (w2sbench.evaluate) and configured methods through the real pipeline: the method stage in
its sealed process, the cache, results and per-example logs. On the small local task of tests/support/toy.py with
synthetic features in place of models, so each run costs a sealed child start, not a model."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from configured_methods import Constant, OldStyle
from support.toy import N_TEST, make_pipeline, toy_arguments  # noqa: I001

import w2sbench
from w2sbench.api import EvalResult
from w2sbench.engine.spec import parse_limit
from w2sbench.errors import UnknownNameError, W2SError
from w2sbench.isolation import sandbox
from w2sbench.methods import load_method
from w2sbench.schema_io import validate
from w2sbench.scoring import accuracy

pytestmark = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")


@pytest.fixture
def toy(tmp_path, monkeypatch) -> dict:
    return toy_arguments(tmp_path, monkeypatch)


def test_configured_method_reaches_the_sealed_process_and_the_cache_key(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    probs, _, _ = pipe.run_method(task, Constant(p=0.25), 0)
    assert probs.tolist() == pytest.approx([0.25] * N_TEST)  # built in the child with p=0.25, not the default
    probs, _, _ = pipe.run_method(task, Constant(p=0.25, shift="up"), 1)
    assert probs.tolist() == pytest.approx([0.35] * N_TEST)
    assert pipe.run_method(task, Constant, 0)[0].tolist() == pytest.approx([0.5] * N_TEST)  # a class: defaults
    assert pipe.store.misses["method"] == 3
    pipe.run_method(task, Constant(p=0.25), 0)
    assert pipe.store.hits["method"] == 1 and pipe.store.misses["method"] == 3
    # an old-style method runs with its defaults; configured, its process could not rebuild it: refused
    assert pipe.run_method(task, OldStyle(), 0)[0].tolist() == pytest.approx([0.5] * N_TEST)
    with pytest.raises(W2SError, match="not declared as typed class fields"):
        pipe.run_method(task, OldStyle(p=0.3), 0)


def test_evaluate_two_configurations_and_a_changed_coefficient_reruns_only_that_method(toy):
    first = w2sbench.evaluate(["vanilla", "logconf"], **toy)
    assert isinstance(first, EvalResult)
    assert first.to_dict()["cache"]["misses"] == {"weak": 2, "ceiling": 2, "method": 4}
    second = w2sbench.evaluate("vanilla,logconf[aux_coef=0.25],logconf[aux_coef=0.75]", **toy)
    # only the two new logconf configurations ran (2 seeds each); vanilla and the shared stages were hits
    assert second.cache["misses"] == {"method": 4}
    # weak: its 2 seeds, and read again by each method seed (3 methods x 2); vanilla's 2 method seeds
    assert second.cache["hits"] == {"weak": 8, "ceiling": 2, "method": 2}
    names = ["vanilla", "logconf[aux_coef=0.25]", "logconf[aux_coef=0.75]"]
    assert list(second.methods) == names == list(second.tasks["toy"].methods) == list(second.summary)
    info = second.methods["logconf[aux_coef=0.25]"]
    assert info.name == "logconf" and info.config == {"aux_coef": 0.25, "warmup_frac": 0.2}
    assert second.methods["vanilla"].config == {} and first.methods["logconf"].config["aux_coef"] == 0.5
    assert second.tasks["toy"].methods["vanilla"] == first.tasks["toy"].methods["vanilla"]
    assert second.record.tasks[0].methods["logconf[aux_coef=0.75]"].config["aux_coef"] == 0.75
    # the same class twice under one name is refused before anything runs
    with pytest.raises(W2SError, match="given twice"):
        w2sbench.evaluate([load_method("logconf"), "logconf[aux_coef=0.5]"], **toy)


def _sealed_children() -> list[int]:
    """This process's method processes still alive (w2sbench.isolation.sealed, in or out of bubblewrap)."""
    import os

    from w2sbench.isolation.processes import descendants

    def cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return ""

    return [p for p in descendants(os.getpid()) if "w2sbench.isolation.sealed" in cmdline(p)]


def test_a_run_ends_its_method_processes_when_it_returns(toy):
    """Each run's sealed method processes end with the run, not with the interpreter: a long-lived caller (the
    scoring service runs every job in-process) kept one idle process per method and job, with any engine in it."""
    before = _sealed_children()
    w2sbench.evaluate(["vanilla", "logconf"], **toy)
    assert _sealed_children() == before
    w2sbench.evaluate(["vanilla", "logconf[aux_coef=0.25]"], **toy)  # a rerun starts what it needs afresh
    assert _sealed_children() == before


def test_a_process_a_method_leaves_behind_ends_with_its_run(toy):
    """Hostile: the method starts a detached, SIGTERM-ignoring process and returns. When evaluate() returns,
    the run's sandbox is gone and that process with it (before, it lived as long as the interpreter)."""
    import time

    from configured_methods import Lingering

    def lingering() -> list[str]:
        found = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and b"LINGER_MARK" in (p / "cmdline").read_bytes():
                    found.append(p.name)
            except OSError:
                pass
        return found

    result = w2sbench.evaluate([Lingering()], **toy)
    assert list(result.tasks["toy"].methods) == ["lingering_test"]  # it ran: its process was started
    deadline = time.monotonic() + 5
    while lingering() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lingering() == []


def isolation(**overrides):
    """A run's MethodIsolation with no models and nothing recorded; `overrides` replace its arguments."""
    from w2sbench.isolation.quotas import Quotas
    from w2sbench.isolation.wiring import MethodIsolation

    kwargs = dict(
        unsealed=False,
        timeout_s=60,
        setting_quotas=Quotas(),
        quota_override=None,
        model_dirs=list,
        sandbox_used=lambda *a: None,
    )
    return MethodIsolation(**{**kwargs, **overrides})


def test_a_shared_set_of_method_processes_is_left_to_its_owner():
    """A Ray worker's pipelines share one set of processes across a run: closing one pipeline's isolation
    must not end them; a pipeline's own set is ended and emptied."""

    class Runner:
        closed = 0
        name, console = "stub", ""

        def close(self):
            Runner.closed += 1

    shared = {"a": Runner(), "b": Runner()}
    isolation(runners=shared).close()
    assert Runner.closed == 0 and len(shared) == 2
    own = isolation()
    own.runners.update(shared)
    own.close()
    assert Runner.closed == 2 and own.runners == {}


def test_a_method_process_that_used_an_engine_ends_before_another_methods_job():
    """Two methods that prompt a model (strong_zeroshot, icm) each kept an engine up between their tasks:
    9 GiB each on `tiny`. Before a job of another method, a process whose jobs used an engine is ended, its
    console kept; one that used none is kept, and a method's own process is never ended for its own job."""
    from w2sbench.methods.builtin import Vanilla

    class Runner:
        def __init__(self, name, used_engine):
            self.name, self.used_engine, self.console, self.closed = name, used_engine, f"{name} printed", False

        def close(self):
            self.closed = True

    seen = []
    iso = isolation(unsealed=True, console_seen=lambda method, text: seen.append((method, text)))
    engine, plain = Runner("zs", True), Runner("plain", False)
    iso.runners.update({"zs-spec": engine, "plain-spec": plain})
    mine = iso.runner(Vanilla)
    assert engine.closed and not plain.closed
    assert seen == [("zs", "zs printed")] and set(iso.runners) == {"plain-spec", mine.code.spec()}
    mine.used_engine = True  # its own next job keeps it
    assert iso.runner(Vanilla) is mine and not plain.closed


def test_evaluate_runs_the_units_on_the_executor_it_is_given(toy):
    """An executor object (here the in-process one, counting): the units are named by the methods' names in
    results, and a second executor finds the first one's artifacts under the same keys."""
    from w2sbench.engine.executors import InProcessExecutor

    class Counting(InProcessExecutor):
        def run(self, pipeline, units):
            self.ids = [u.id for u in units]
            return super().run(pipeline, units)

    first = w2sbench.evaluate(["vanilla", "logconf[aux_coef=0.25]"], **toy)
    counting = Counting()
    again = w2sbench.evaluate(["vanilla", "logconf[aux_coef=0.25]"], executor=counting, **toy)
    assert "method/toy/logconf[aux_coef=0.25]/seed1" in counting.ids and "score/toy/vanilla" in counting.ids
    assert len(counting.ids) == 2 + 2 + 2 + 2 * (2 + 1)  # features x2, weak x2, ceiling x2, 2 x (seeds + score)
    assert again.cache["misses"] == {} and again.tasks == first.tasks and again.summary == first.summary


def test_units_run_as_on_a_ray_worker_give_the_same_results(toy, monkeypatch):
    """The Ray executor's worker side without a cluster: each unit (pickled, as Ray sends it) runs through
    ray_executor.execute_unit in a pipeline of its own that rebuilds each configured method from the unit's
    spec and config; the numbers equal the in-process run's and the keys are the same (all hits after)."""
    import pickle

    from w2sbench.engine import ray_executor

    monkeypatch.setattr(ray_executor, "_worker_logging", lambda: None)  # the test process's logging stays
    monkeypatch.setattr(ray_executor, "_set_threads", lambda threads: None)

    class WorkerSide:
        name = "worker-side"

        def __init__(self, silent: str | None = None):
            self.silent = silent  # a method unit whose worker says nothing of its sandbox (an old node)

        def run(self, pipeline, units):
            root = pipeline.store.root
            context = {
                "setting": pipeline.setting,
                "tasks": {t.name: t for t in pipeline.tasks},
                "options": pipeline.options,
                "store_root": str(root),
                "recompute": sorted(pipeline.store.recompute),
                "method_seeds": pipeline.method_seeds,
                "baseline_seeds": pipeline.baseline_seeds,
                "runs_dir": str(root / ray_executor.RUNS_FOLDER / "test"),
                "key": f"test-{id(self)}",
                "threads": 1,
            }
            values = {}
            for unit in units:
                unit = pickle.loads(pickle.dumps(unit))
                value, record = ray_executor.execute_unit(context, unit, *[values[d] for d in unit.deps])
                if unit.id == self.silent:
                    del record["method_sandbox"]
                pipeline.ledger.merge(record["ledger"], record.get("unit"), record.get("method_sandbox"))
                values[unit.id] = pickle.loads(pickle.dumps(value))
                pipeline.unit_done(unit, values[unit.id])
            return values

    methods = "vanilla,logconf[aux_coef=0.25]"
    try:
        remote = w2sbench.evaluate(methods, executor=WorkerSide(), **toy)
        built = [p._methods for k, p in ray_executor._PIPELINES.items() if k[0].startswith("test-")]
    finally:
        for key in [k for k in ray_executor._PIPELINES if k[0].startswith("test-")]:
            del ray_executor._PIPELINES[key]
    # the worker side asked no Ray for its node: a bare ray.get_runtime_context() would have started a
    # cluster in this process, on every interface, whose raylet then writes into later tests' output
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert [type(m).__name__ for m in built[0].values()] == ["Vanilla", "LogConf"]  # rebuilt from the units
    assert built[0]["logconf[aux_coef=0.25]"].aux_coef == 0.25
    assert remote.cache["misses"] == {"weak": 2, "ceiling": 2, "method": 4}
    assert remote.sealed["sandboxed"] and sorted(remote.sealed["sandbox"]["method_code"]) == ["logconf", "vanilla"]
    (node,) = remote.sealed["units"]  # every method unit, with the sandbox of the node that ran it
    assert node["sealed"] and node["mechanism"].startswith("bubblewrap") and len(node["units"]) == 4
    try:
        silent = "method/toy/vanilla/seed0"
        quiet = w2sbench.evaluate(methods, executor=WorkerSide(silent=silent), **toy)
    finally:
        for key in [k for k in ray_executor._PIPELINES if k[0].startswith("test-")]:
            del ray_executor._PIPELINES[key]
    assert not quiet.sealed["sandboxed"] and silent in quiet.sealed["why_unsealed"]
    assert [u["units"] for u in quiet.sealed["units"] if not u["sealed"]] == [[silent]]
    local = w2sbench.evaluate(methods, **toy)
    assert local.cache["misses"] == {}
    assert (local.tasks, local.summary, local.comparison) == (remote.tasks, remote.summary, remote.comparison)


def test_evaluate_result_is_the_results_json_typed(toy, tmp_path):
    result = w2sbench.evaluate([Constant(p=0.7), "vanilla"], **toy)
    doc = result.to_dict()
    validate(doc, "results", "api result")
    assert EvalResult.from_dict(doc).to_dict() == doc  # typed, and nothing lost
    assert "record" not in doc and "path" not in doc
    labels = np.array([r["label"] for r in result.sample_rows("toy", "vanilla")])
    pgr = result.tasks["toy"].methods["constant_test[p=0.7]"].pgr
    # constant 0.7 predicts 1 everywhere: its accuracy is the positive rate; PGR from the three accuracies
    assert pgr.w2s_acc == pytest.approx(labels.mean()) == pytest.approx(result.tasks["toy"].test_positive_rate)
    if pgr.defined:
        assert pgr.pgr == pytest.approx((pgr.w2s_acc - pgr.weak_acc) / (pgr.ceiling_acc - pgr.weak_acc))
    assert result.seeds.method == 2 and result.setting.name == "tiny"
    assert result.summary["vanilla"].tasks == 1
    assert "constant_test[p=0.7]" in result.table() and "vanilla" in result.table()
    out = result.save(tmp_path / "r.json")
    loaded = EvalResult.load(out)
    assert loaded.to_dict() == doc and loaded.record is None and loaded.path == out
    # unknown keys (a newer schema's) survive a round trip
    doc2 = {**doc, "transfer": {"heldout": []}}
    doc2["tasks"]["toy"]["new_field"] = 1
    assert EvalResult.from_dict(doc2).to_dict() == doc2


def test_log_samples_rows_files_and_hashes(toy, tmp_path):
    out = tmp_path / "runs" / "r.json"
    result = w2sbench.evaluate(["vanilla", "logconf[aux_coef=0.25]"], output=out, log_samples=True, **toy)
    doc = json.loads(out.read_text())
    validate(doc, "results", str(out))
    assert doc["samples"]["dir"] == "r.samples" and result.samples == doc["samples"]
    files = {(f["task"], f["method"]): f for f in doc["samples"]["files"]}
    assert set(files) == {("toy", "vanilla"), ("toy", "logconf[aux_coef=0.25]")}
    tr = result.record.tasks[0]
    for (task, method), f in files.items():
        path = out.parent / f["path"]
        assert path == out.parent / "r.samples" / task / f"{method}.jsonl"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(rows) == f["rows"] == N_TEST
        assert [r["id"] for r in rows] == [e.uid for e in tr.splits.test]
        assert [r["text"] for r in rows] == [e.text for e in tr.splits.test]
        labels = np.array([r["label"] for r in rows])
        assert labels.tolist() == [e.label for e in tr.splits.test]
        # the rows rebuild the results' numbers: accuracy per seed of each model from its column
        w2s = np.array([r["w2s_p"] for r in rows]).T  # [seeds, n]
        weak = np.array([r["weak_p"] for r in rows]).T
        ceiling = np.array([r["ceiling_p"] for r in rows]).T
        entry = doc["tasks"][task]
        assert [accuracy(p, labels) for p in w2s] == entry["methods"][method]["w2s"]["accuracy_per_seed"]
        assert [accuracy(p, labels) for p in weak] == entry["weak"]["accuracy_per_seed"]
        assert [accuracy(p, labels) for p in ceiling] == entry["ceiling"]["accuracy_per_seed"]
        assert w2s.shape == (2, N_TEST) and weak.shape == (2, N_TEST)
    # a rerun to the same path replaces the folder whole
    (out.parent / "r.samples" / "stale.txt").write_text("old")
    w2sbench.evaluate("vanilla", output=out, log_samples=True, **toy)
    assert sorted(p.name for p in (out.parent / "r.samples" / "toy").iterdir()) == ["vanilla.jsonl"]
    assert not (out.parent / "r.samples" / "stale.txt").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_evaluate_refuses_bad_arguments(toy):
    with pytest.raises(UnknownNameError, match="unknown executor 'dask'.*Known executors: inprocess, ray"):
        w2sbench.evaluate("vanilla", executor="dask", **toy)
    with pytest.raises(W2SError, match="needs --executor ray"):
        w2sbench.evaluate("vanilla", ray_address="127.0.0.1:6379", **toy)
    with pytest.raises(W2SError, match="log_samples writes its files beside the results JSON"):
        w2sbench.evaluate("vanilla", log_samples=True, **toy)
    with pytest.raises(W2SError, match="needs the vllm backend"):
        w2sbench.evaluate("vanilla", backend="hf", tensor_parallel_size=2, **toy)
    with pytest.raises(W2SError, match="did you mean 'aux_coef'"):
        w2sbench.evaluate("logconf[aux_cof=1]", **toy)
    with pytest.raises(W2SError, match="give a name, a Method subclass or a Method instance"):
        w2sbench.evaluate([3], **toy)


def test_parse_limit():
    expected = {"train_label": 200, "train_unlabel": 400, "test": 100}
    assert parse_limit("200,400,100") == parse_limit((200, 400, 100)) == parse_limit(expected) == expected
    assert parse_limit(None) is None
    for bad in ("10,20", (1, 2, 0), {"test": 3}, (1.5, 2, 3), "a,b,c"):
        with pytest.raises(W2SError, match="expected three positive integers"):
            parse_limit(bad)


def test_package_import_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, w2sbench; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
        "print(w2sbench.evaluate.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "w2sbench.api"


def test_readme_documents_the_api():
    root = Path(__file__).resolve().parents[1]
    assert "(docs/python-api.md)" in (root / "README.md").read_text()
    text = (root / "docs" / "python-api.md").read_text()
    assert text.startswith("# Python API") and "w2sbench.evaluate(" in text
