"""What smaller test splits would cost in interval width, and save in the strong model's reading time.

Issue 30 asks two things of suite v2's split sizes: the README's cold default evaluation within about 15
minutes on a 2-core AVX-512 machine, and every W2S reference method's pooled-PGR half-width at most 0.10 on
both official settings. Nearly all of a cold run is the strong model reading train_unlabel and test, so the
one lever is fewer (or shorter) texts, and fewer test examples widen the intervals. This script measures
both sides from what is already computed, without running a model:

- widths: for each cap on the test split, each task's test set is cut to a random subset of at most `cap`
  examples (the same subset for the weak model, the ceiling and every method, as a smaller split would be),
  and the pooled PGR's 95% interval is recomputed from the stored correctness vectors by the scorer's own
  bootstrap (`w2sbench.scoring`); the median half-width over `--draws` subsets is reported per method;
- reading: the strong model's texts and tokens (its tokenizer, truncated at the setting's max_length) for
  train_unlabel plus the capped test, and for the timed setting (`--timed`) the strong-feature seconds at
  a measured rate (ms per token; default: the quiet cold run of 2026-12-07, RESULTS section 16); then its
  tokens at the full splits under shorter truncations (`--max-lengths`), the other lever, whose effect on
  accuracy only a new run can show.

A subset of the test split stands for a smaller split drawn at random (the harness draws its splits at
random, so the two have the same distribution); what it cannot show is a change of train_unlabel, whose
size moves the methods' accuracies themselves.

    python benchmarks/split_sizes.py --results benchmarks/suite-v2-2026-12-06/v2-tiny-8.json \
        --results benchmarks/suite-v2-2026-12-06/v2-smollm2-8.json --caps 2500,1500,1000,800,600 \
        --output benchmarks/split-sizes-2026-12-07.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from w2sbench.scoring import aggregate, decode_correct, pgr_from_correct
from w2sbench.settings import load_setting

W2S_METHODS = ("vanilla", "vanilla_hard", "logconf", "product", "window", "entropy", "confident_only", "bootstrap")


def half_widths(doc: dict, cap: int, draws: int) -> dict[str, float | None]:
    """Median pooled-PGR half-width per method when every task's test split is cut to at most `cap`."""
    methods = [m for m in doc["methods"] if m in W2S_METHODS]
    boot = doc["bootstrap"]  # the results' own plan, so that an uncut split gives their interval exactly
    plan = {"n_boot": boot["n_boot"], "seed": boot["seed"], "confidence": boot["confidence"]}
    correct = {  # task -> group -> [seeds, n], decoded once for every draw
        name: {
            group: decode_correct(runs["correct"], task["n"]["test"])
            for group, runs in [("weak", task["weak"]), ("ceiling", task["ceiling"])]
            + [(m, task["methods"][m]["w2s"]) for m in methods]
        }
        for name, task in doc["tasks"].items()
    }
    widths: dict[str, list[float]] = {m: [] for m in methods}
    for draw in range(draws):
        per_method: dict[str, list] = {m: [] for m in methods}
        for name, groups in correct.items():
            keep = _kept(groups["weak"].shape[1], cap, draw)
            weak, ceiling = groups["weak"][:, keep], groups["ceiling"][:, keep]
            for method in methods:
                per_method[method].append(pgr_from_correct(weak, ceiling, groups[method][:, keep], task=name, **plan))
        for method, results in per_method.items():
            agg = aggregate(results)
            if agg.pooled_pgr_ci is not None:
                widths[method].append((agg.pooled_pgr_ci[1] - agg.pooled_pgr_ci[0]) / 2)
    return {m: (statistics.median(w) if w else None) for m, w in widths.items()}


def _kept(n: int, cap: int, draw: int) -> np.ndarray:
    """The test examples a split cut to `cap` keeps (all of them when it is no longer), in order."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([draw, n, cap]).choice(n, size=cap, replace=False))


def strong_token_counts(setting_name: str, task_names: list[str]) -> dict[str, tuple[list[int], list[int]]]:
    """task -> the strong model's tokens per example of train_unlabel and of test, untruncated: its input (text
    or the task's prompt) as its tokenizer encodes it. Truncation on the right keeps min(tokens, max_length)."""
    from w2sbench.inference.base import encode
    from w2sbench.model_folders import resolve_model
    from w2sbench.tasks.registry import load_task

    spec = load_setting(setting_name).spec("strong")
    model_dir = resolve_model(spec.model, spec.revision)
    out = {}
    for name in task_names:
        task = load_task(name)
        splits = task.load_splits()
        counts = []
        for part in (splits.train_unlabel, splits.test):
            inputs = [e.text if spec.input == "text" else task.prompt(e.text) for e in part]
            counts.append([len(ids) for ids in encode(model_dir, inputs, None)])
        out[name] = (counts[0], counts[1])
    return out


def strong_reading(counts: dict, max_length: int, caps: list[int]) -> dict[int, dict]:
    """The strong model's texts and tokens (train_unlabel + test cut to each cap, as draw 0 cuts it), per cap."""
    out = {cap: {"texts": 0, "tokens": 0, "tokens_per_task": {}} for cap in caps}
    for name, (unlabel, test) in counts.items():
        for cap in caps:
            keep = _kept(len(test), cap, 0)
            tokens = sum(min(n, max_length) for n in unlabel) + sum(min(test[i], max_length) for i in keep)
            out[cap]["texts"] += len(unlabel) + len(keep)
            out[cap]["tokens"] += tokens
            out[cap]["tokens_per_task"][name] = tokens
    return out


def truncated_tokens(counts: dict, max_lengths: list[int]) -> dict[int, int]:
    """The strong model's tokens over the full train_unlabel and test splits at each truncation length."""
    every = [n for unlabel, test in counts.values() for n in unlabel + test]
    return {limit: sum(min(n, limit) for n in every) for limit in max_lengths}


def _cpu_flags() -> list[str]:
    """The CPU's vector flags, recorded beside any projected time (the rates were measured on such a CPU)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", action="append", required=True, help="a results JSON (repeatable)")
    parser.add_argument("--caps", default="2500,1500,1000,800,600", help="test-split caps, comma-separated")
    parser.add_argument("--draws", type=int, default=5, help="random subsets per cap (median reported)")
    parser.add_argument(
        "--ms-per-token", default="0.757", help="the timed setting's strong-feature rates (ms per token)"
    )
    parser.add_argument("--timed", default="tiny", help="the setting whose strong seconds are projected")
    parser.add_argument("--max-lengths", default="128,96,64,48", help="truncations to count the timed setting at")
    parser.add_argument("--output", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    rates = [float(r) for r in args.ms_per_token.split(",")]
    report: dict = {"caps": caps, "draws": args.draws, "ms_per_token": rates, "settings": {}}
    for path in args.results:
        doc = json.loads(Path(path).read_text())
        setting = doc["setting"]["name"] if isinstance(doc["setting"], dict) else doc["setting"]
        counts = strong_token_counts(setting, list(doc["tasks"]))
        reading = strong_reading(counts, load_setting(setting).spec("strong").max_length, caps)
        rows = {}
        print(f"\n{setting} ({path})")
        print(
            "cap    texts  tokens  strong s @"
            + "/".join(f"{r}" for r in rates)
            + "  half-widths ("
            + ", ".join(m for m in doc["methods"] if m in W2S_METHODS)
            + ")"
        )
        for cap in caps:
            widths = half_widths(doc, cap, args.draws)
            seconds = [reading[cap]["tokens"] * r / 1000 for r in rates] if setting == args.timed else []
            rows[cap] = {**reading[cap], "strong_seconds": seconds, "half_widths": widths}
            shown = " ".join("-" if w is None else f"{w:.3f}" for w in widths.values())
            print(
                f"{cap:>5} {reading[cap]['texts']:>6} {reading[cap]['tokens']:>7}  "
                + ("/".join(f"{s:.0f}" for s in seconds) or "-")
                + f"  {shown}"
            )
        report["settings"][setting] = {"results": str(path), "rows": rows}
        if setting == args.timed:
            limits = [int(x) for x in args.max_lengths.split(",")]
            tokens = truncated_tokens(counts, limits)
            report["settings"][setting]["tokens_at_max_length"] = tokens
            print("full splits, tokens at max_length " + ", ".join(f"{k}: {v}" for k, v in tokens.items()))
    report["cpu_flags"] = _cpu_flags()
    if args.output:
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
