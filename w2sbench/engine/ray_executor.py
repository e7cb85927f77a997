"""The Ray executor: each unit of an evaluation (w2sbench/engine/units.py) runs as a Ray task on a cluster.

- Dependencies are Ray object references: a unit starts once the units it reads have finished.
- Resources come from the setting: on a cluster with GPUs, the units that run a model on one (features,
  fine-tuning weak and ceiling, every method) ask for `tensor_parallel_size` GPUs (1 to train); heads and
  scoring ask for one CPU. On a cluster without GPUs every unit asks for one CPU.
- A unit that asks for GPUs runs in a fresh worker process (max_calls=1: the worker exits after it), as Ray
  does by default only for functions declared with GPUs; GPUs asked for through .options() skip that
  default. A reused worker would keep the CUDA allocator's cache and the method processes of its last
  unit, and the card it first initialised even when Ray assigns it another (Ray issue 3245).
- A unit whose worker died (killed, out of memory, node lost) is retried by Ray (`max_retries`); an error
  of the unit itself (a bad method, a sandbox denial) is not retried and ends the run with its message.
- The artifact store is the shared folder every node mounts (`$W2SBENCH_CACHE`, the same path on every
  node): units write their artifacts there with the store's atomic write-then-rename, so two attempts
  racing on one unit leave one whole artifact, and the units' values travel back as Ray objects.
- Methods still run sealed: a method unit starts the method's sandboxed process on the worker (from the
  worker's main thread, which lives as long as the worker: PR_SET_PDEATHSIG / bwrap --die-with-parent
  take the sandbox down with it). A worker keeps one method process per method for the units it runs.
  Each method unit reports the sandbox of the node that ran it (host, node, mechanism); the results list
  them (`sealed.units`), and a run with a unit that did not affirm a sandbox says sandboxed: false, which
  the leaderboard refuses. The driver's own policy is not taken as the nodes'.
- Known gap: an inference engine a unit starts outside the sandbox (vLLM for features or the served weak
  labels) is not tied to the worker's life; a worker killed with SIGKILL can leave it running (seen once
  on the CPU benchmark). Ray's own retry is unaffected; the stray engine needs ending by hand.
- Each attempt leaves a claim (`<store>/.runs/<run>/<unit>/<host>-<pid>.json`) while the run lasts: the
  progress line says when a unit took more than one attempt, and an operator can see who holds a unit.

Network: with no address, the one-machine cluster Ray starts is bound to 127.0.0.1 and usage stats are
off (RAY_USAGE_STATS_ENABLED=0). Ray itself still looks outward at start, whatever those settings: the
head's dashboard process asks the cloud metadata address (169.254.169.254, metadata.google.internal)
which cloud it runs on (ray 2.60, usage_lib.get_cluster_config_to_report), and a driver given a loopback
address looks for the machine's outward address. Where nothing may leave the machine, run the cluster
and the command in a loopback-only network namespace, as tests/ray_cluster.py does.

Workers get the driver's w2sbench settings through the job's runtime environment: PYTHONPATH and the
W2SBENCH_*, HF_*, TRANSFORMERS_* and VLLM_* variables. The code itself is not shipped: every node has
the same Python environment (a shared install or the same image), as with any Ray job on a fleet.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingPackageError, W2SError
from .units import Unit

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .units import UnitRunner, UnitValue

log = logging.getLogger("w2sbench")

ENV_FORWARD = ("PYTHONPATH", "TOKENIZERS_PARALLELISM", "XDG_CACHE_HOME", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
ENV_FORWARD_PREFIXES = ("W2SBENCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "VLLM_")
RUNS_FOLDER = ".runs"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingPackageError("ray", "--executor ray", "pip install 'w2sbench[ray]'") from None
    return ray


def forwarded_env() -> dict[str, str]:
    """The driver's variables that decide what a unit computes or where it finds things."""
    return {
        k: v
        for k, v in os.environ.items()
        if (k in ENV_FORWARD or k.startswith(ENV_FORWARD_PREFIXES)) and isinstance(v, str)
    }


def _threads() -> int:
    """The intra-op threads every unit uses: the driver's (what an in-process run here uses), unless
    OMP_NUM_THREADS says otherwise. On a CPU, matrix products and so features and heads change in their
    last bits with the thread count; Ray would give each task one thread (its num_cpus), so the units set
    this count themselves and their numbers equal the in-process run's bit for bit."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    import torch

    return torch.get_num_threads()


def unit_resources(unit: Unit, regime: str, tensor_parallel_size: int, cluster_has_gpus: bool) -> dict[str, float]:
    """Ray resource requests for a unit (see the module docstring)."""
    if not cluster_has_gpus or unit.kind == "score":
        return {"num_cpus": 1, "num_gpus": 0}
    if unit.kind in ("weak", "ceiling") and regime == "frozen":  # a linear head on cached features
        return {"num_cpus": 1, "num_gpus": 0}
    if unit.kind == "ceiling":  # fine-tuning trains on one GPU
        return {"num_cpus": 1, "num_gpus": 1}
    # features and the fine-tuned weak model's labels go through an engine; a method may train or start one
    return {"num_cpus": 1, "num_gpus": tensor_parallel_size}


def unit_remotes(ray: Any) -> dict[bool, Any]:
    """The Ray remote functions a unit runs as, by whether it asks for GPUs: {False: reused workers,
    True: a fresh worker per unit (max_calls=1)}. max_calls is the function's, not the call's: .options()
    cannot set it, so a GPU unit needs a function of its own."""
    return {False: ray.remote(execute_unit), True: ray.remote(max_calls=1)(execute_unit)}


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 3):
        self.address, self.max_retries = address, max_retries

    # ---- the cluster ---------------------------------------------------------------------------------------
    def connect(self) -> tuple[Any, bool]:
        """(ray, whether this call started the connection). With no address and no RAY_ADDRESS, Ray starts a
        one-machine cluster, bound to 127.0.0.1 so that nothing leaves the machine."""
        ray = import_ray()
        if ray.is_initialized():
            return ray, False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env = {**forwarded_env(), "OMP_NUM_THREADS": str(_threads())}
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": env},
            "logging_level": logging.WARNING,
            "log_to_driver": log.isEnabledFor(logging.DEBUG),
        }
        address = self.address or os.environ.get("RAY_ADDRESS")
        try:
            if address:
                host = address.rpartition(":")[0] if ":" in address else address
                if host in ("127.0.0.1", "localhost"):  # a cluster on loopback: so is this driver
                    kwargs["_node_ip_address"] = "127.0.0.1"
                ray.init(address=address, **kwargs)
            else:
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise W2SError(f"--executor ray: cannot connect to {where}: {e}") from None
        return ray, True

    # ---- the run -------------------------------------------------------------------------------------------
    def run(self, runner: UnitRunner, units: list[Unit]) -> dict[str, UnitValue]:
        ray, owned = self.connect()
        try:
            return self._run(ray, runner, units)
        finally:
            if owned:
                ray.shutdown()

    def _run(self, ray: Any, runner: UnitRunner, units: list[Unit]) -> dict[str, UnitValue]:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        runs_dir = Path(runner.store.root) / RUNS_FOLDER / run_id
        context = ray.put(
            {
                "setting": runner.setting,
                "tasks": {t.name: t for t in runner.tasks},
                "options": runner.options,
                "store_root": str(runner.store.root),
                "recompute": sorted(runner.store.recompute),
                "method_seeds": runner.method_seeds,
                "baseline_seeds": runner.baseline_seeds,
                "runs_dir": str(runs_dir),
                "key": run_id,
                "threads": _threads(),
            }
        )
        remotes = unit_remotes(ray)
        value_refs: dict[str, Any] = {}
        pending: dict[Any, Unit] = {}
        for unit in units:
            options = unit_resources(unit, runner.setting.regime, runner.options.tensor_parallel_size, gpus)
            task_fn = remotes[options["num_gpus"] > 0]  # a GPU unit: a fresh worker
            value_ref, record_ref = task_fn.options(
                num_returns=2, max_retries=self.max_retries, retry_exceptions=False, name=unit.id, **options
            ).remote(context, unit, *[value_refs[d] for d in unit.deps])
            value_refs[unit.id] = value_ref
            pending[record_ref] = unit
        where = self.address or os.environ.get("RAY_ADDRESS") or "a local cluster"
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        log.info(f"ray: {len(units)} units submitted to {where} ({nodes} node(s), {'GPUs' if gpus else 'CPUs only'})")
        values: dict[str, UnitValue] = {}
        done = 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    unit = pending.pop(ref)
                    record = self._get(ray, ref, unit)
                    runner.ledger.merge(record["ledger"], record.get("unit"), record.get("method_sandbox"))
                    values[unit.id] = self._get(ray, value_refs[unit.id], unit)
                    runner.unit_done(unit, values[unit.id])
                    done += 1
                    retried = f", attempt {record['attempts']}: a worker died before" if record["attempts"] > 1 else ""
                    log.info(
                        f"ray: {done}/{len(units)} units done ({unit.describe()}, {record['seconds']:.1f} s "
                        f"on {record['host']}{retried})"
                    )
        finally:  # on an interrupt the units still running are not cancelled here: cancelling a task whose
            # reply is arriving trips a check in Ray's core worker (seen with Ray 2.60: the driver dies
            # with "An unexpected system state" instead of exiting cleanly); Ray ends a job's tasks when its
            # driver disconnects, and a unit that finished meanwhile is cached for the resume
            _remove_tree(runs_dir)
        return values

    @staticmethod
    def _get(ray: Any, ref: Any, unit: Unit) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, W2SError):
                raise cause from None
            raise W2SError(f"unit {unit.id} failed on the Ray cluster: {type(cause).__name__}: {cause}") from e
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as e:
            raise W2SError(f"unit {unit.id}: its worker died on every attempt ({type(e).__name__}): {e}") from None


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # .runs/, when no other run is using it
    except OSError:
        pass


# ---- on the worker ------------------------------------------------------------------------------------------
_PIPELINES: dict[tuple[str, str], Pipeline] = {}  # (run, task) -> the Pipeline this worker keeps for it
_RUNNERS: dict[str, dict] = {}  # run -> method spec -> SealedRunner, shared by the run's pipelines here
_LAUNCHER: list[ThreadPoolExecutor] = []


def execute_unit(context: dict, unit: Unit, *dep_values: UnitValue) -> tuple[UnitValue, dict]:
    """A Ray task: one unit, on this worker; returns (its value, its bookkeeping)."""
    if threading.current_thread() is threading.main_thread():
        return _execute(context, unit, dep_values)
    # The method sandbox dies with the thread that started it: run where that thread lives as long as we do.
    if not _LAUNCHER:
        _LAUNCHER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="w2sbench-units"))
    return _LAUNCHER[0].submit(_execute, context, unit, dep_values).result()


def _worker_logging() -> None:
    logger = logging.getLogger("w2sbench")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[w2sbench worker] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _pipeline(context: dict, task_name: str) -> Pipeline:
    from ..cache import ArtifactStore
    from .pipeline import Pipeline

    key = (context["key"], task_name)
    if key not in _PIPELINES:
        store = ArtifactStore(root=Path(context["store_root"]), recompute=frozenset(context["recompute"]))
        options = context["options"]
        runners = _RUNNERS.setdefault(context["key"], {})
        pipeline = Pipeline(context["setting"], [context["tasks"][task_name]], options, store, runners)
        pipeline.baseline_seeds, pipeline.method_seeds = context["baseline_seeds"], context["method_seeds"]
        pipeline.log_tasks = False
        _PIPELINES[key] = pipeline
    return _PIPELINES[key]


def _claim(context: dict, unit: Unit) -> int:
    """Record this attempt; returns how many attempts the unit has had in this run (this one included)."""
    from ..cache import hash_of

    folder = Path(context["runs_dir"]) / hash_of(unit.id, 24)
    folder.mkdir(parents=True, exist_ok=True)
    claim = {"unit": unit.id, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    (folder / f"{socket.gethostname()}-{os.getpid()}-{time.monotonic_ns()}.json").write_text(json.dumps(claim))
    return len(list(folder.glob("*.json")))


def _execute(context: dict, unit: Unit, dep_values: tuple[UnitValue, ...]) -> tuple[UnitValue, dict]:
    from ..isolation import sandbox

    _worker_logging()
    _set_threads(context["threads"])
    started = time.perf_counter()
    attempts = _claim(context, unit)
    pipeline = _pipeline(context, unit.task)
    if unit.kind == "method" and not pipeline.options.unsealed:
        why = sandbox.unavailable_reason()
        if why:
            raise W2SError(f"the method sandbox cannot start on Ray node {socket.gethostname()} ({why})")
    before = pipeline.ledger.snapshot()
    value = pipeline.run_unit(unit, dict(zip(unit.deps, dep_values)))
    record = {
        "ledger": pipeline.ledger.share_since(before),  # the driver merges it into its own
        "seconds": time.perf_counter() - started,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "attempts": attempts,
    }
    if unit.kind == "method":  # where this method unit ran, and how: the results say it of every unit
        record["unit"] = unit.id
        record["method_sandbox"] = {
            "host": socket.gethostname(),
            "node": _node_id(),
            "sealed": not pipeline.options.unsealed,
            "mechanism": None if pipeline.options.unsealed else sandbox.version(),
        }
        if not pipeline.options.unsealed:
            from ..isolation import quotas

            limits = pipeline.isolation.quotas
            record["method_sandbox"]["quotas"] = limits.record(quotas.enforcement(limits))
    return value, record


def _node_id() -> str | None:
    """This worker's Ray node; None outside a connected Ray process (a unit run the way a worker runs it, in
    a test). Asks only a Ray that is already initialised: ray.get_runtime_context() would otherwise start a
    cluster of its own in this process, bound to every interface, and leave it running."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def _set_threads(threads: int) -> None:
    """This worker's torch threads, and the method processes' it starts (they inherit the variable)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
