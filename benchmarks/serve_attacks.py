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
- threshold (`--only threshold`, no pipeline: the release rules' own code on simulated correctness): an agent
  that stands one example below the release threshold learns from each answer whether its flip was right.
  Worst case: an oracle puts it there after every release (it knows its exact score and, for noisy_ladder,
  the threshold's noise). Per rule: labels read, how many beyond the weak-label guess, per query and per
  release; and the honest loop of examples/agent_loop.py (its six methods' true validation and final
  scores, serve-loop-2026-12-03.json) replayed through each rule: Spearman between released and final, and
  the final score of the method it nominates.

    python benchmarks/serve_attacks.py --flips 40 --boost 40 --out benchmarks/serve-attacks-DATE.json
    python benchmarks/serve_attacks.py --only threshold --out benchmarks/serve-threshold-DATE.json
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

from w2sbench.serve import ladder  # noqa: E402
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


# ---- the threshold attack, against the rules' own code ---------------------------------------------------------
def _decide(rule: dict, score: float, best: float, step: float, diff, weights, gap: float, move: float, rho, rng):
    if rule["kind"] == "ladder":
        return ladder.fixed_step(score, best, step)
    if rule["kind"] == "paired_ladder":
        return ladder.paired(score, best, step, diff, weights, gap)
    return ladder.noisy(score, best, step, move, rule["epsilon"], rho, rng)


def _release_probability(rule: dict, score: float, threshold: float, move: float) -> float:
    """P(release) at `score` against the threshold the oracle placed the agent under: 0 or 1 for the
    deterministic rules, the Laplace tail of nu for noisy_ladder."""
    if rule["kind"] != "noisy_ladder":
        return float(score >= threshold)
    b, x = 8 * move / rule["epsilon"], threshold - score
    return 0.5 * np.exp(-x / b) if x >= 0 else 1 - 0.5 * np.exp(x / b)


def threshold_attack(rule: dict, n: int, weak_acc: float, gap: float, queries: int, repeats: int, seed: int) -> dict:
    """One agent at the threshold for `queries` submissions (module docstring). The first half of the examples are the
    oracle's: it corrects or spoils them to put the agent one example below the threshold; the agent flips the
    weak label of one fresh example, `repeats` times (each a submission, each placed anew), and reads the
    label the Bayes way: right when the answers' likelihood ratio times the prior odds (the weak labels'
    error rate) passes 1. For a deterministic rule one answer settles it."""
    rng = np.random.default_rng(seed)
    move = 1.0 / (n * gap)
    step = max(rule["step"], np.ceil(2 * move * 1000 - 1e-9) / 1000)  # engine.effective_step
    weak_right = rng.random(n) < weak_acc
    acc_w = weak_right.mean()
    weights = np.full(n, 1.0 / n)
    pad = np.arange(n // 2)
    fresh = list(range(n // 2, n))
    prior = np.log((1 - weak_acc) / weak_acc)

    def score(correct):
        return (correct.mean() - acc_w) / gap

    best_c = weak_right.astype(float)  # the first submission, the weak labels, is released under every rule
    best = ladder.fixed_step(score(best_c), None, step).released
    releases, budget = 1, rule.get("releases", 10**9)
    rho = ladder.threshold_noise(move, rule["epsilon"], rng) if rule["kind"] == "noisy_ladder" else 0.0
    read = right_reads = guess = asked = 0

    def positioned(a: int, flip: int, right: bool) -> np.ndarray:
        c = best_c.copy()
        wrong_pad, right_pad = pad[c[pad] == 0], pad[c[pad] == 1]
        if a > 0:
            c[wrong_pad[:a]] = 1
        elif a < 0:
            c[right_pad[:-a]] = 0
        c[flip] = float(right)
        return c

    def releases_if(c) -> bool:  # noiseless (the oracle knows rho)
        if rule["kind"] == "noisy_ladder":
            return score(c) >= best + step + rho
        return _decide(rule, score(c), best, step, c - best_c, weights, gap, move, rho, rng).new_best

    while asked < queries and fresh and releases < budget:
        j = fresh.pop(0)
        right = not weak_right[j]  # flipping the weak label is right where the weak label is wrong
        llr, asked_here = 0.0, 0
        for _ in range(repeats):
            if asked >= queries or releases >= budget:
                break
            a = next((a for a in range(-len(pad), len(pad)) if releases_if(positioned(a, j, True))), None)
            if a is None:
                break
            c = positioned(a, j, right)
            decision = _decide(rule, score(c), best, step, c - best_c, weights, gap, move, rho, rng)
            asked, asked_here = asked + 1, asked_here + 1
            threshold = best + step + rho
            p_right = _release_probability(rule, score(positioned(a, j, True)), threshold, move)
            p_wrong = _release_probability(rule, score(positioned(a, j, False)), threshold, move)
            if rule["kind"] != "noisy_ladder":  # one answer settles it
                llr = np.inf if decision.new_best else -np.inf
            else:
                llr += np.log(p_right / p_wrong) if decision.new_best else np.log((1 - p_right) / (1 - p_wrong))
            if decision.new_best:
                best, best_c, releases = decision.released, c, releases + 1
                if rule["kind"] == "noisy_ladder":
                    rho = ladder.threshold_noise(move, rule["epsilon"], rng)
            if not np.isfinite(llr):
                break
        if not asked_here:
            break  # the oracle cannot place the agent any more (or no release can come): it has stopped
        read += 1
        right_reads += int((llr + prior > 0) == right)
        guess += int(not right)
    return {"queries": asked, "releases": releases - 1, "read": read, "right": right_reads, "guess": guess}


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def honest_replay(rule: dict, loop: list[dict], n: int, gap: float, draws: int, seed: int) -> dict:
    """The honest loop's six jobs (true validation and final scores) through `rule`, `draws` times: the
    Spearman between released and final, and the final of the method it nominates (its last new best)."""
    rng = np.random.default_rng(seed)
    move = 1.0 / (n * gap)
    step = max(rule["step"], np.ceil(2 * move * 1000 - 1e-9) / 1000)
    rhos, finals, nominated = [], [], []
    for _ in range(draws if rule["kind"] == "noisy_ladder" else 1):
        best, released, pick, used = None, [], None, 0
        rho = ladder.threshold_noise(move, rule["epsilon"], rng) if rule["kind"] == "noisy_ladder" else 0.0
        for i, job in enumerate(loop):
            if rule["kind"] == "ladder":
                d = ladder.fixed_step(job["validation"], best, step)
            elif rule["kind"] == "noisy_ladder":
                d = ladder.noisy(job["validation"], best, step, move, rule["epsilon"], rho, rng)
                if best is not None and used >= rule["releases"]:
                    d = ladder.Decision(best, False)
            else:  # paired needs per-example vectors the loop did not keep: not replayed
                return {}
            if d.new_best:
                best, pick, used = d.released, i, used + 1
                if rule["kind"] == "noisy_ladder":
                    rho = ladder.threshold_noise(move, rule["epsilon"], rng)
            released.append(d.released)
        rhos.append(_spearman(released, [j["final"] for j in loop]) if len(set(released)) > 1 else 0.0)
        finals.append(loop[pick]["final"])
        nominated.append(loop[pick]["method"])
    return {
        "spearman_released_final": round(float(np.mean(rhos)), 3),
        "nominee_final_mean": round(float(np.mean(finals)), 3),
        "nominee_final_p10": round(float(np.percentile(finals, 10)), 3),
        "nominated": {m: round(nominated.count(m) / len(nominated), 3) for m in sorted(set(nominated))},
    }


def threshold_section(queries: int, runs: int) -> dict:
    loop_path = ROOT / "benchmarks" / "serve-loop-2026-12-03.json"
    loop = json.loads(loop_path.read_text())
    n, weak_acc, gap = 500, 0.70, 0.15  # section 11's campaign: 500 validation examples, gap about 0.15
    rules = [{"kind": "ladder", "step": 0.02}, {"kind": "paired_ladder", "step": 0.02}]
    rules += [{"kind": "noisy_ladder", "step": 0.02, "epsilon": e, "releases": 20} for e in (0.5, 1.0, 2.0, 4.0)]
    out = {"n": n, "weak_accuracy": weak_acc, "gap": gap, "move": round(1 / (n * gap), 4), "queries": queries}
    out["honest_loop_true_validation_final_spearman"] = round(
        _spearman([j["validation"] for j in loop], [j["final"] for j in loop]), 3
    )
    out["rules"] = []
    for rule in rules:
        for repeats in (1, 5) if rule["kind"] == "noisy_ladder" else (1,):
            totals = [threshold_attack(rule, n, weak_acc, gap, queries, repeats, seed) for seed in range(runs)]
            q = sum(t["queries"] for t in totals)
            r = sum(t["releases"] for t in totals)
            read, right, guess = (sum(t[k] for t in totals) for k in ("read", "right", "guess"))
            beyond = right - guess  # labels read right beyond what the weak label gets on the same examples
            out["rules"].append(
                {
                    "rule": rule,
                    "repeats": repeats,
                    "per_run": {"queries": q / runs, "releases": r / runs, "labels_read": read / runs},
                    "accuracy_of_labels_read": round(right / max(read, 1), 3),
                    "weak_guess_on_them": round(guess / max(read, 1), 3),
                    "beyond_guess_per_query": round(beyond / max(q, 1), 3),
                    "beyond_guess_per_release": round(beyond / max(r, 1), 3),
                    "beyond_guess_per_run": round(beyond / runs, 1),
                    "honest_loop": honest_replay(rule, loop, n, gap, draws=2000, seed=1),
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flips", type=int, default=40)
    ap.add_argument("--boost", type=int, default=40)
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", choices=("service", "threshold"), default="service")
    ap.add_argument("--queries", type=int, default=300, help="threshold: submissions per simulated agent")
    ap.add_argument("--runs", type=int, default=40, help="threshold: simulated agents per rule")
    args = ap.parse_args()
    if args.only == "threshold":
        out = {"cpu": cpu(), "python": platform.python_version(), **threshold_section(args.queries, args.runs)}
        print(json.dumps(out, indent=2))
        if args.out:
            args.out.write_text(json.dumps(out, indent=2) + "\n")
        return
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
            view = run_job(client, flip=k)  # the method's k-th test text is the validation part's k-th example
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
            on_final = service.run_method(row, campaign.development, "final")
            final = final_score(campaign, on_final, row["method"])["pooled_pgr"]
            on_validation = service.run_method(row, campaign.development, "validation")
            validation = validation_score(campaign, on_validation, row["method"])[0]
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
        from w2sbench.isolation.described import stand_in

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
