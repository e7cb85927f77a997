"""Time and memory of the default evaluation, as a user meets it.

For each repeat: a COLD run (fresh cache: model conversion, engines, features, every stage) of
`w2sbench eval --method vanilla` on the default suite, then a WARM run of a second method on the same
cache (only its own stage is computed). Peak memory is the largest summed RSS of the whole process tree
(vLLM runs engine processes), sampled every 0.2 s. Prints one JSON line per run and a summary line with
medians; per-stage wall times come from the results JSON.

    python benchmarks/default_eval.py --repeats 3 [--second-method vanilla_hard] [--keep-models]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(cmd: list[str], env: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(ps))
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed ({proc.returncode}):\n{out[-3000:]}")
    return {"wall_s": round(time.perf_counter() - start, 1), "peak_rss_gib": round(peak[0] / 2**30, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--second-method", default="vanilla_hard")
    ap.add_argument("--tasks", default="default")
    ap.add_argument(
        "--keep-models",
        action="store_true",
        help="reuse the user's converted models (cold = everything but model conversion)",
    )
    args = ap.parse_args()
    cli = [sys.executable, "-m", "w2sbench.cli", "eval", "--tasks", args.tasks, "-q"]
    rows = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="w2sbench-bench-") as tmp:
            env = {**os.environ, "W2SBENCH_CACHE": tmp}
            if args.keep_models:
                from w2sbench import paths

                env["W2SBENCH_MODEL_DIR"] = str(paths.cache_dir() / "models")
            for kind, method in (("cold", "vanilla"), ("warm_second_method", args.second_method)):
                out = Path(tmp) / f"{kind}.json"
                row = {
                    "what": kind,
                    "repeat": r,
                    "method": method,
                    **run(cli + ["--method", method, "-o", str(out)], env),
                }
                doc = json.loads(out.read_text())
                row["stages_s"] = doc["timings_s"]
                row["backend"] = doc["backend"]["used"]
                row["cache_misses"] = doc["cache"]["misses"]
                print(json.dumps(row), flush=True)
                rows.append(row)
    summary = {"what": "summary", "repeats": args.repeats, "cpu_count": os.cpu_count(), "keep_models": args.keep_models}
    for kind in ("cold", "warm_second_method"):
        sel = [x for x in rows if x["what"] == kind]
        summary[f"{kind}_wall_s_median"] = statistics.median(x["wall_s"] for x in sel)
        summary[f"{kind}_peak_rss_gib_median"] = statistics.median(x["peak_rss_gib"] for x in sel)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
