"""What icm's search finds without its zero-shot belief (benchmarks/RESULTS.md section 12).

For each task of a suite, reads the strong model's cached features of train_unlabel (no engine starts: run
the default evaluation first) and, harness-side, the split's true labels, then runs
`w2sbench.methods.builtin.coherent_labels` from random labels with no belief term (prior_weight 0) over a
grid of ridge penalties, probe dimensions (all features, or the top principal components) and start
temperatures, and prints the label accuracy against the truth, orientation-free (max of acc and 1 - acc:
without a belief the search cannot tell a labelling from its mirror), and the search's time per call.

    W2SBENCH_CACHE=/path/to/cache python benchmarks/icm_search.py [--setting tiny] [--suite default]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from w2sbench.methods.builtin import coherent_labels

RIDGES = (0.1, 1.0, 10.0)
COMPONENTS = (0, 8, 32, 128)  # 0: every feature
TEMPERATURES = (1.0, 0.1)


def load(setting: str, suite: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """task -> (strong features of train_unlabel [n, d], its true labels [n]), from the cache."""
    from w2sbench.engine.pipeline import Pipeline
    from w2sbench.engine.spec import RunOptions
    from w2sbench.settings import load_setting
    from w2sbench.tasks import resolve_tasks

    pipe = Pipeline(load_setting(setting), resolve_tasks(suite, []), RunOptions())
    out = {}
    for task in pipe.tasks:
        labels = np.array([e.label for e in pipe.splits(task).train_unlabel])
        out[task.name] = (pipe.features("strong", task, "train_unlabel"), labels)
    return out


def top_components(x: np.ndarray, k: int) -> np.ndarray:
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    return z if not k else z @ np.linalg.svd(z, full_matrices=False)[2][:k].T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", default="tiny")
    ap.add_argument("--suite", default="default")
    args = ap.parse_args()
    data = load(args.setting, args.suite)
    print("| task | label accuracy from random labels, no belief: min-max over the grid | median | time per search |")
    print("| --- | --- | --- | --- |")
    for task, (x, y) in data.items():
        start = np.random.default_rng(0).random(len(y))  # a random starting split (its median)
        accs, times = [], []
        for k in COMPONENTS:
            xx = top_components(x, k)
            for ridge in RIDGES:
                for t0 in TEMPERATURES:
                    began = time.perf_counter()
                    lab = coherent_labels(
                        xx, start, np.random.default_rng(1), ridge=ridge, prior_weight=0.0, start_temperature=t0
                    )
                    times.append(time.perf_counter() - began)
                    acc = float(np.mean(lab == y))
                    accs.append(max(acc, 1 - acc))
        print(
            f"| {task} | {100 * min(accs):.1f}-{100 * max(accs):.1f}% ({len(accs)} searches) | "
            f"{100 * np.median(accs):.1f}% | {np.median(times):.2f} s |"
        )


if __name__ == "__main__":
    main()
