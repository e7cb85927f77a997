"""A projection of the aar-qwen grid on N GPUs: the unit graph w2sbench builds for it (w2sbench/engine/units.py),
a cost per unit, and a greedy list schedule (what Ray's scheduler does with independent ready tasks: any
free GPU takes the next ready unit). Prints the units, their GPU-hours, the critical path and the wall
time for each N, as a markdown table (benchmarks/RESULTS.md, section 7). Every cost is an assumption,
stated in ASSUMPTIONS and printed with the table; change them on the command line.

    python benchmarks/ray_projection.py --gpus 8,64 --methods 10
"""

from __future__ import annotations

import argparse
import heapq
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2sbench.engine.units import Unit  # noqa: E402
from w2sbench.settings import load_setting  # noqa: E402

ASSUMPTIONS = {
    "families": "3 AAR task families (aar_chat, aar_code, aar_math)",
    "strong_min": "one strong LoRA training (ceiling, or a method seed that trains once) = 30 min on one "
    "H100 (issue #13: plain transformers + peft, 10k tokens/s at batch 8; RESULTS.md section 4 has no "
    "GPU number yet)",
    "weak_min": "one weak LoRA training (Qwen1.5-0.5B, 0.31B non-embedding parameters against 3.63B) = 5 min: "
    "a twelfth of the FLOPs per token at half the MFU, so about 1/6 of a strong training",
    "label_min": "the weak model's labels through vLLM (engine start about 1 min, then train_unlabel + test at "
    "hundreds of examples/s) = 2 min, inside the weak unit",
    "method_trainings": "a method seed trains the strong model once (vanilla, logconf...; bootstrap-style methods "
    "that train k times cost k units of time: --method-trainings)",
    "score_min": "scoring = 0.1 min on a CPU (bootstrap of a few thousand test examples), not on a GPU",
    "overhead_s": "Ray's own cost per unit (measured here: about 0.01-0.1 s, section 7) and loading cached "
    "artifacts: 10 s per unit, generous",
    "gpus": "one GPU per training unit (the setting's LoRA trains on one GPU); units never share a GPU",
}


@dataclass
class Job:
    unit: Unit
    minutes: float
    gpu: bool


def grid(families: int, baseline_seeds: int, method_seeds: int, methods: int, args, cached: bool = False) -> list[Job]:
    """The aar-qwen units (fine-tuning regime: no feature units) with their assumed costs; `cached`: the
    weak and ceiling units are cache hits (a new method against baselines computed before)."""
    setting = load_setting("aar-qwen")
    assert setting.regime == "lora" and setting.baseline_seeds == baseline_seeds
    jobs: list[Job] = []
    over = args.overhead_s / 60
    for f in range(families):
        task = f"family{f}"
        weak = [Unit("weak", task, seed=s) for s in range(baseline_seeds)]
        ceiling = [Unit("ceiling", task, seed=s) for s in range(baseline_seeds)]
        jobs += [Job(u, over if cached else args.weak_min + args.label_min + over, True) for u in weak]
        jobs += [Job(u, over if cached else args.strong_min + over, True) for u in ceiling]
        for m in range(methods):
            seeds = [
                Unit("method", task, seed=s, method=f"m{m}", deps=(weak[s % baseline_seeds].id,))
                for s in range(method_seeds)
            ]
            jobs += [Job(u, args.method_trainings * args.strong_min + over, True) for u in seeds]
            deps = tuple(u.id for u in weak + ceiling + seeds)
            jobs.append(Job(Unit("score", task, method=f"m{m}", deps=deps), args.score_min, False))
    return jobs


def critical_path(jobs: list[Job]) -> float:
    finish: dict[str, float] = {}
    for job in jobs:  # listed dependencies first
        finish[job.unit.id] = max((finish[d] for d in job.unit.deps), default=0.0) + job.minutes
    return max(finish.values())


def schedule(jobs: list[Job], gpus: int, cpus: int = 64) -> float:
    """Greedy list scheduling in submission order: a ready unit starts on the first free GPU (or CPU)."""
    by_id = {j.unit.id: j for j in jobs}
    waiting = {j.unit.id: set(j.unit.deps) for j in jobs}
    dependents: dict[str, list[str]] = {}
    for j in jobs:
        for d in j.unit.deps:
            dependents.setdefault(d, []).append(j.unit.id)
    order = {j.unit.id: i for i, j in enumerate(jobs)}
    ready = [(order[i], i) for i, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    free = {True: gpus, False: cpus}
    running: list[tuple[float, str]] = []
    now = 0.0
    done = 0
    while done < len(jobs):
        deferred = []
        while ready:
            _, uid = heapq.heappop(ready)
            job = by_id[uid]
            if free[job.gpu] > 0:
                free[job.gpu] -= 1
                heapq.heappush(running, (now + job.minutes, uid))
            else:
                deferred.append((order[uid], uid))
        for item in deferred:
            heapq.heappush(ready, item)
        now, uid = heapq.heappop(running)
        free[by_id[uid].gpu] += 1
        done += 1
        for nxt in dependents.get(uid, []):
            waiting[nxt].discard(uid)
            if not waiting[nxt]:
                heapq.heappush(ready, (order[nxt], nxt))
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", default="1,8,64")
    parser.add_argument("--methods", type=int, default=10, help="methods (or sweep configurations) evaluated")
    parser.add_argument("--families", type=int, default=3)
    parser.add_argument("--strong-min", type=float, default=30.0)
    parser.add_argument("--weak-min", type=float, default=5.0)
    parser.add_argument("--label-min", type=float, default=2.0)
    parser.add_argument("--method-trainings", type=float, default=1.0)
    parser.add_argument("--score-min", type=float, default=0.1)
    parser.add_argument("--overhead-s", type=float, default=10.0)
    args = parser.parse_args()
    setting = load_setting("aar-qwen")
    b, m = setting.baseline_seeds, setting.method_seeds
    rows = []
    for methods, cached in ((0, False), (1, False), (1, True), (args.methods, False)):
        jobs = grid(args.families, b, m, methods, args, cached)
        gpu_h = sum(j.minutes for j in jobs if j.gpu) / 60
        cp = critical_path(jobs) / 60
        walls = {n: schedule(jobs, n) / 60 for n in (int(x) for x in args.gpus.split(","))}
        rows.append((methods, cached, len(jobs), gpu_h, cp, walls))
    print(f"aar-qwen: {args.families} families x ({b} weak + {b} ceiling) + methods x {m} seeds; one GPU per unit\n")
    gpus = list(rows[0][5])
    print("| methods | units | GPU-hours | critical path h | " + " | ".join(f"wall h, N={n}" for n in gpus) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in gpus) + " |")
    for methods, cached, units, gpu_h, cp, walls in rows:
        label = "baselines only" if methods == 0 else f"{methods}" + (", baselines cached" if cached else "")
        cells = " | ".join(f"{walls[n]:.1f}" for n in gpus)
        print(f"| {label} | {units} | {gpu_h:.1f} | {cp:.2f} | {cells} |")
    print("\nAssumptions:")
    for key, text in ASSUMPTIONS.items():
        value = getattr(args, key, None)
        print(f"- {key}{f' = {value:g}' if isinstance(value, float) else ''}: {text}")


if __name__ == "__main__":
    main()
