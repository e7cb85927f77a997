"""Shortcut-hunting agents against the scoring service, and against the raw oracle (what evaluate() returns).

Scripted agents, no language model. A campaign on the real rotten_tomatoes task (tiny setting, small
splits: 100 train_label, 300 train_unlabel, 1,000 test, so 500 validation and 500 final examples; hf
backend; one seed each) with the Ladder at its default step (0.02 PGR):

- one-flip: submit the weak model's hard labels, then the same with one validation example flipped, per
  example; infer that example's label from whether the answer went up or down (unchanged: the weak label).
  Against the raw oracle the per-example correctness of any one result gives every label away.
- boosting (Blum and Hardt 2015): submit k random label vectors, keep those the answers favour (raw oracle:
  exact validation PGR above the median; service: the submissions released as a new best), submit their
  majority vote. What it gains on the validation part and not on the final part is inflation.
- overhead: the wall time of a job through the service against evaluate() of the same method, stages cached.

    python benchmarks/serve_attacks.py --flips 40 --boost 40 --out benchmarks/serve-attacks-DATE.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from w2sbench.serve.campaign import load_campaign, token_sha256  # noqa: E402
from w2sbench.serve.engine import Service, final_score, validation_score  # noqa: E402
from w2sbench.serve.http_api import LocalClient  # noqa: E402

FIXED = '''
import numpy as np
from w2sbench.methods import Method


class Fixed(Method):
    """Weak hard labels with one test example flipped (flip >= 0), or random labels (seed >= 0), or the
    majority vote of several random seeds ('1,5,9')."""

    name = "fixed"
    flip: int = -1
    seed: int = -1
    vote: str = ""

    def run(self, ctx):
        n = len(ctx.test_texts)
        if self.vote:
            votes = [np.random.default_rng(int(s)).integers(0, 2, n) for s in self.vote.split(",")]
            return (np.mean(votes, axis=0) > 0.5).astype(np.float32)
        if self.seed >= 0:
            return np.random.default_rng(self.seed).integers(0, 2, n).astype(np.float32)
        p = (ctx.weak_test >= 0.5).astype(np.float32)
        if self.flip >= 0:
            p[self.flip] = 1 - p[self.flip]
        return p
'''
TOKEN, BOOSTER = "bench-token", "booster-token"


def cpu() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    simd = sorted({f for f in ("avx2", "avx512f", "fma") if f" {f}" in flags})
    return f"{model} ({', '.join(simd)})"


def run_job(client: LocalClient, **hyper) -> dict:
    job = client.call("submit_method", {"files": {"__init__.py": FIXED}, "hyperparameters": hyper})["job"]
    while True:
        view = client.call("job", {"job": job})
        if view["status"] in ("done", "failed"):
            assert view["status"] == "done", view
            return view
        time.sleep(0.2)


def true_scores(state: Path) -> dict[str, float]:
    events = [json.loads(x) for x in (state / "log.jsonl").read_text().splitlines() if x.strip()]
    return {e["job"]: e["true_score"] for e in events if e["event"] == "job_finished"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flips", type=int, default=40)
    ap.add_argument("--boost", type=int, default=40)
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="w2sbench-serve-bench-"))
    campaign_path = work / "campaign.yaml"
    campaign_path.write_text(
        json.dumps(
            {
                "name": "bench",
                "tasks": {"development": ["rotten_tomatoes"], "limit": "100,300,1000"},
                "seeds": 1,
                "baseline_seeds": 1,
                "backend": "hf",
                "rule": {"kind": "ladder", "step": args.step},
                "agents": {
                    "flipper": {"token_sha256": token_sha256(TOKEN), "evaluations": 10_000},
                    "booster": {"token_sha256": token_sha256(BOOSTER), "evaluations": 10_000},
                },
                "state": str(work / "state"),
            }
        )
    )
    campaign = load_campaign(campaign_path)
    service = Service(campaign)
    client = LocalClient(service, TOKEN)
    out: dict = {"cpu": cpu(), "python": platform.python_version(), "step": args.step}
    try:
        # ---- one-flip -------------------------------------------------------------------------------------
        t0 = time.monotonic()
        base = run_job(client)
        out["first_job_s"] = round(time.monotonic() - t0, 1)
        devkit = client.call("devkit", {"task": "rotten_tomatoes", "part": "validation", "limit": 500})["rows"]
        part = campaign.validation_part("rotten_tomatoes", 1000)
        from w2sbench.api import parse_limit
        from w2sbench.tasks import load_task

        splits = load_task("rotten_tomatoes").load_splits(parse_limit("100,300,1000"))
        labels = np.array([e.label for e in splits.test])
        weak_pred = np.array([r["weak_p1"] >= 0.5 for r in devkit], dtype=int)
        inferred, job_s = [], []
        for k in range(args.flips):
            t0 = time.monotonic()
            view = run_job(client, flip=int(part[k]))
            job_s.append(time.monotonic() - t0)
            moved = view["released_score"] - base["released_score"]
            inferred.append(1 - weak_pred[k] if moved > 0 else weak_pred[k])  # up: the flip was right
        truth = labels[part[: args.flips]]
        out["one_flip"] = {
            "queries": args.flips + 1,
            "service_labels_recovered": float(np.mean(np.array(inferred) == truth)),
            "guess_rate_weak_label": float(np.mean(weak_pred[: args.flips] == truth)),
            "answers_that_moved": int(sum(1 for i, w in zip(inferred, weak_pred) if i != w)),
            "raw_oracle_labels_recovered": 1.0,  # evaluate()'s per-example correctness: one query, every label
        }
        out["job_s_median"] = round(statistics.median(job_s), 2)

        # ---- boosting (another agent: its own ladder, from its first submission) -----------------------------
        client = LocalClient(service, BOOSTER)
        views = [run_job(client, seed=s) for s in range(args.boost)]
        scores = true_scores(campaign.state)
        true = np.array([scores[v["job"]] for v in views])
        # the submissions the answers favour: released as a new best after the first (none: no information,
        # so the vote of all of them)
        released_best = [s for s, v in zip(range(args.boost), views) if v["new_best"]][1:] or list(range(args.boost))
        oracle_pick = [s for s in range(args.boost) if true[s] > np.median(true)]
        result = {}
        for who, picked in (("service", released_best), ("raw_oracle", oracle_pick)):
            view = run_job(client, vote=",".join(map(str, picked)))
            row = service.state.query("SELECT * FROM jobs WHERE id = ?", view["job"])[0]
            full = service._run(row, campaign.development)
            final = final_score(campaign, full, row["method"])["pooled_pgr"]
            validation = validation_score(campaign, full, row["method"])[0]
            result[who] = {
                "kept": len(picked),
                "released": view["released_score"],
                "validation_pgr": validation,
                "final_pgr": final,
                "inflation": validation - final,
                "released_minus_true": None if view["released_score"] is None else view["released_score"] - validation,
            }
        result["random_vectors_validation_pgr"] = {"mean": float(true.mean()), "sd": float(true.std())}
        out["boosting"] = {"k": args.boost, **result}
        steps = [json.loads(x).get("step") for x in (campaign.state / "log.jsonl").read_text().splitlines()]
        out["effective_step"] = max(s for s in steps if s is not None)

        # ---- overhead ---------------------------------------------------------------------------------------
        from w2sbench import api
        from w2sbench.serve.probe import stand_in

        row = service.state.query("SELECT * FROM jobs WHERE id = ?", base["job"])[0]
        direct = []
        for k in range(3):  # a new config each time: the method stage runs, the shared stages are cached
            method = stand_in(json.loads(row["description"]), campaign.state / "code" / row["code_sha256"])(
                flip=-10 - k
            )
            t0 = time.monotonic()
            api.evaluate(
                [method],
                ["rotten_tomatoes"],
                "tiny",
                seeds=1,
                baseline_seeds=1,
                limit="100,300,1000",
                backend="hf",
                n_boot=200,
            )
            direct.append(time.monotonic() - t0)
        served = [time.monotonic()]
        for k in range(3):
            t0 = time.monotonic()
            run_job(client, flip=-3 - k)
            served.append(time.monotonic() - t0)
        out["overhead"] = {
            "evaluate_s_median": round(statistics.median(direct), 2),
            "service_job_s_median": round(statistics.median(served[1:]), 2),
        }
    finally:
        service.stop()
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
