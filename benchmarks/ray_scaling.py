"""Scaling on this machine: the in-process executor against Ray with 1 and 2 worker nodes, and Ray's own
overhead per unit. Results: benchmarks/RESULTS.md, section 7.

Scenarios (each on its own cache, every Ray run on a real local cluster started with `ray start` inside a
loopback-only network namespace, as the tests do: tests/ray_cluster.py):

- `compute`: the default suite with several methods, the features already cached (copied from one
  in-process run): every weak, ceiling, method and score unit is computed. This is the part of a run whose
  units are independent of one another; the frozen features (one engine per model) are measured apart.
- `cached`: the same command again on the same cache: every unit is a cache hit, so the wall time is the
  executor's own cost (start, scheduling, loading artifacts), divided by the units for a per-unit cost.
- `cold`: the whole command cold on two tasks, in-process (one engine per model for all tasks) against
  Ray with 2 nodes (one engine per model and task, in parallel), with the numbers compared.
- `noop`: Ray's bare per-task cost: empty tasks shaped like units (two returns, one dependency).

    python benchmarks/ray_scaling.py --out benchmarks/ray-scaling.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from ray_cluster import LoopbackCluster  # noqa: E402

NOOP = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
@ray.remote(num_returns=2, num_cpus=1)
def unit(ctx, *deps):
    return None, {"ok": True}
n = int(sys.argv[2])
ctx = ray.put({"x": 1})
ray.get([unit.remote(ctx)[1] for _ in range(8)])  # warm the workers
start = time.perf_counter()
prev = None
records = []
for i in range(n):
    value, record = unit.remote(ctx, *([prev] if prev is not None and i % 4 else []))
    prev = value
    records.append(record)
ray.get(records)
print((time.perf_counter() - start) / n)
"""


def eval_argv(args, out: Path, executor: str, address: str | None) -> list[str]:
    argv = [sys.executable, "-m", "w2sbench.cli", "eval", "--tasks", args.tasks, "--method", args.methods]
    argv += ["--seeds", str(args.seeds), "--baseline-seeds", str(args.seeds), "--backend", args.backend]
    argv += ["-o", str(out), "-q"]
    if args.limit:
        argv += ["--limit", args.limit]
    if executor == "ray":
        argv += ["--executor", "ray", "--ray-address", address]
    return argv


def timed(run, argv, env) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = run(argv, env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-3000:]}")
    return wall, json.loads(Path(argv[argv.index("-o") + 1]).read_text())


def seed_cache(src: Path, dst: Path, stages: tuple[str, ...]) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "artifacts").mkdir(parents=True)
    for stage in stages:
        if (src / "artifacts" / stage).exists():
            shutil.copytree(src / "artifacts" / stage, dst / "artifacts" / stage)


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="default")
    parser.add_argument("--methods", default="vanilla,logconf,entropy,bootstrap,confident_only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--limit", default=None)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--features-tasks", default="rotten_tomatoes,vader_nyt")
    parser.add_argument("--noop", type=int, default=200)
    parser.add_argument(
        "--only", default="inprocess,inprocess-cold,ray-1,ray-2", help="which groups to run (a rerun after a failure)"
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per measurement")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="w2s-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)

    def record(**row) -> None:
        row.update(load_avg=round(load(), 2), when=time.strftime("%Y-%m-%d %H:%M:%S"))
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")

    def local(argv, run_env):
        return subprocess.run(argv, env=run_env, capture_output=True, text=True)

    # The features, once, in-process: every compute scenario starts from a copy of them.
    base = work / "base"
    if not (base / "artifacts" / "features_strong").exists():
        wall, doc = timed(
            local, eval_argv(args, work / "base.json", "inprocess", None), {**env, "W2SBENCH_CACHE": str(base)}
        )
        record(scenario="prepare (in-process, cold)", wall_s=round(wall, 1), timings=doc["timings_s"])

    def scenario(executor: str, label: str, run, address: str | None) -> None:
        cache = work / f"cache-{label}"
        seed_cache(base, cache, ("features_weak", "features_strong"))
        run_env = {**env, "W2SBENCH_CACHE": str(cache)}
        wall, doc = timed(run, eval_argv(args, work / f"{label}.json", executor, address), run_env)
        units = sum(doc["cache"]["misses"].values())  # every unit computed (features were hits)
        misses = doc["cache"]["misses"]
        record(scenario="compute", executor=label, wall_s=round(wall, 1), misses=misses, timings=doc["timings_s"])
        wall2, doc2 = timed(run, eval_argv(args, work / f"{label}-cached.json", executor, address), run_env)
        n_units = _count_units(doc2)
        record(
            scenario="cached",
            executor=label,
            wall_s=round(wall2, 1),
            units=n_units,
            per_unit_ms=round(1000 * wall2 / n_units, 1),
            computed=units,
        )
        return doc

    only = set(args.only.split(","))
    if "inprocess" in only:
        ref = scenario("inprocess", "inprocess", local, None)
    else:  # from the earlier run's results
        ref = json.loads((work / "inprocess.json").read_text())
    feats = argparse.Namespace(**{**vars(args), "tasks": args.features_tasks})
    fcache = work / "features-inprocess"
    if "inprocess-cold" not in only:
        cold_ref = json.loads((work / "f-in.json").read_text())
    else:
        shutil.rmtree(fcache, ignore_errors=True)
        wall, cold_ref = timed(
            local, eval_argv(feats, work / "f-in.json", "inprocess", None), {**env, "W2SBENCH_CACHE": str(fcache)}
        )
        record(
            scenario="cold",
            executor="inprocess",
            tasks=args.features_tasks,
            wall_s=round(wall, 1),
            timings=cold_ref["timings_s"],
        )
    for nodes in (1, 2):
        if f"ray-{nodes}" not in only:
            continue
        cluster = LoopbackCluster(env, nodes=nodes, cpus_per_node=1).start()
        try:
            run = lambda argv, run_env, c=cluster: c.run(argv, env=run_env, timeout=7200)  # noqa: E731
            doc = scenario("ray", f"ray-{nodes}", run, cluster.address)
            same = all(doc[k] == ref[k] for k in ("tasks", "summary"))
            record(scenario="identical to in-process", executor=f"ray-{nodes}", identical=same)
            if nodes == 2:
                out = cluster.run([sys.executable, "-c", NOOP, cluster.address, str(args.noop)], timeout=900)
                per_task = round(1000 * float(out.stdout), 2)
                record(scenario="noop", executor="ray-2", tasks=args.noop, per_task_ms=per_task)
                fcache = work / "features-ray"
                shutil.rmtree(fcache, ignore_errors=True)
                f_argv = eval_argv(feats, work / "f-ray.json", "ray", cluster.address)
                wall, fdoc = timed(run, f_argv, {**env, "W2SBENCH_CACHE": str(fcache)})
                same = all(fdoc[k] == cold_ref[k] for k in ("tasks", "summary"))
                record(
                    scenario="cold",
                    executor="ray-2",
                    tasks=args.features_tasks,
                    wall_s=round(wall, 1),
                    timings=fdoc["timings_s"],
                    identical=same,
                )
        finally:
            cluster.stop()


def _count_units(doc: dict) -> int:
    tasks = len(doc["tasks"])
    seeds_b, seeds_m = doc["seeds"]["baseline"], doc["seeds"]["method"]
    methods = len(doc["summary"])
    features = 2 * tasks if doc["setting"]["config"]["regime"] == "frozen" else 0
    return features + tasks * (2 * seeds_b + methods * (seeds_m + 1))


if __name__ == "__main__":
    main()
