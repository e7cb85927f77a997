"""What the method sandbox costs: process start, and the wall time of one more method on a warm cache.

Two measurements, sandboxed (bubblewrap) and --unsealed alternated in one run, so the machine's load
falls on both alike:
- start: a SealedRunner's first job on tiny synthetic data (a fresh interpreter that imports w2sbench and
  torch, unpickles the job and trains a 2-feature head), from process start to the reply;
- warm method: `w2sbench eval --method vanilla_hard` on the default suite with every shared stage cached
  and the method stage removed before each run (15 method seeds: 5 tasks x 3), as a user meets a new method.

    python benchmarks/sandbox_cost.py --repeats 5 [--cache DIR]   (DIR: a warm cache; made once if empty)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_once(sandboxed: bool) -> float:
    import numpy as np

    from w2sbench.isolation import sandbox, sealed
    from w2sbench.methods import load_method
    from w2sbench.methods.identity import method_source, origin_of
    from w2sbench.training import FrozenTrainer, Recipe

    cls = load_method("vanilla")
    policy = sandbox.default_policy([], [str(Path(sys.modules[cls.__module__].__file__).parent)]) if sandboxed else None
    code = sealed.MethodCode(origin_of(cls), cls.__qualname__, method_source(cls).sha256)
    runner = sealed.SealedRunner(code, "vanilla", policy, 600)
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    job = sealed.MethodJob(
        task="t",
        setting="tiny",
        seed=0,
        unlabel_texts=["a"] * 8,
        test_texts=["b"] * 8,
        weak_unlabel=np.full(8, 0.6, np.float32),
        weak_test=np.full(8, 0.5, np.float32),
        trainer=FrozenTrainer({"train_unlabel": x, "test": x}, Recipe(epochs=1, batch_size=4, lr=0.1)),
        label_words=[" a", " b"],
        prompt_template="{text}",
        model_dirs={},
    )
    began = time.perf_counter()
    runner.run(job)
    took = time.perf_counter() - began
    runner.close()
    return took


def warm_once(cache: Path, sandboxed: bool) -> float:
    shutil.rmtree(cache / "artifacts" / "method", ignore_errors=True)
    out = Path(tempfile.mkdtemp()) / "r.json"
    cmd = [sys.executable, "-m", "w2sbench.cli", "eval", "-q", "--method", "vanilla_hard", "-o", str(out)]
    began = time.perf_counter()
    subprocess.run(
        cmd + ([] if sandboxed else ["--unsealed"]),
        check=True,
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "W2SBENCH_CACHE": str(cache)},
    )
    took = time.perf_counter() - began
    doc = json.loads(out.read_text())
    assert doc["sealed"]["sandboxed"] is sandboxed and doc["cache"]["misses"].get("method") == 15
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "w2sbench-sandbox-cost")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "W2SBENCH_CACHE": str(args.cache)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "w2sbench.cli",
            "eval",
            "-q",
            "--method",
            "vanilla_hard",
            "-o",
            str(args.cache / "warmup.json"),
        ],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    rows = {"start_sandboxed": [], "start_unsealed": [], "warm_sandboxed": [], "warm_unsealed": []}
    for i in range(args.repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        for sandboxed in order:
            key = "sandboxed" if sandboxed else "unsealed"
            rows[f"start_{key}"].append(start_once(sandboxed))
            rows[f"warm_{key}"].append(warm_once(args.cache, sandboxed))
            print(
                json.dumps(
                    {
                        "repeat": i,
                        "mode": key,
                        "start_s": round(rows[f"start_{key}"][-1], 3),
                        "warm_method_s": round(rows[f"warm_{key}"][-1], 2),
                    }
                ),
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        json.dumps(
            {
                "summary": {k: round(v, 3) for k, v in med.items()},
                "start_ratio": round(med["start_sandboxed"] / med["start_unsealed"], 3),
                "warm_ratio": round(med["warm_sandboxed"] / med["warm_unsealed"], 3),
                "paired_warm_difference_s": round(
                    statistics.median(a - b for a, b in zip(rows["warm_sandboxed"], rows["warm_unsealed"])), 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
