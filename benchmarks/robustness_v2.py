"""The robustness answer on suite v2 (issue 30 item 7; benchmarks/RESULTS.md section 14).

From results JSONs only (no model runs): per official setting, the order of the reference methods by pooled
PGR against the order under each change that should not matter,

- leave one task out, leave one family out (suite v2's six families), seeds resampled, tasks resampled
  (w2sbench/reports/robustness.py, 500 draws, seed 0, as the leaderboard draws them);
- the four declared recipe changes (leaderboard/recipes/<setting>/<knob>=<factor>.json), the other model pair
  (the other setting's reference run) and the 60-label teacher (the weak model trained on 60 labels on every
  task; train_unlabel and test as the suite's): runs of their own, tau-b with its interval over their test
  examples resampled (reports.robustness.compare_runs, on the methods both runs hold);

over all entries and among the eight W2S methods, with each method's probability of staying in its rank
group (groups as the leaderboard forms them: leaderboard.build.assign_ranks on the paired pooled-PGR
intervals, recomputed here from the same correctness with the board's resampling plan), and development
against held-out among the W2S methods (Pearson r over the methods, its 95% interval over test examples
resampled, the floors apart).

    python benchmarks/robustness_v2.py --reference tiny=REF.json --reference tiny-smollm2=REF2.json \
        --recipes leaderboard/recipes --teacher60 tiny=A.json,B.json,... -o OUT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from w2sbench.leaderboard.build import RESAMPLING, assign_ranks
from w2sbench.reports.robustness import Suite, compare_runs, robustness, suite_from_results
from w2sbench.schema_io import read_json
from w2sbench.scoring import aggregate, difference, pgr_from_correct
from w2sbench.tasks import families_of

W2S = ("vanilla", "vanilla_hard", "logconf", "product", "confident_only", "bootstrap", "window", "entropy")
N_RESAMPLES = 500


def teacher60(paths: list[Path], ref_doc: dict, ref: Suite) -> Suite:
    """The 60-label teacher's Suite: its runs (`paths`, the eight W2S methods, one file per split-size group)
    on the tasks whose suite budget is above 60 labels; on the tasks that already teach with 60 the official
    run is the 60-label run (everything from `ref`); and the teacher-free methods (icm, strong_zeroshot), which
    never read the weak labels, keep their official predictions everywhere (only weak, hence PGR, changes).
    Each run's ceilings must equal the official ones: train_unlabel and test are unchanged."""
    out = Suite({}, {}, {}, ref.families)
    for p in paths:
        s = suite_from_results([(str(p), read_json(p))])
        for t in s.tasks:
            if t in out.weak:
                raise SystemExit(f"{p}: task {t} is in two files")
            if not np.array_equal(s.ceiling[t], ref.ceiling[t]):
                raise SystemExit(f"{p}: task {t}: the ceiling differs from the official run's")
            out.weak[t], out.ceiling[t] = s.weak[t], s.ceiling[t]
            for m, per in s.methods.items():
                out.methods.setdefault(m, {})[t] = per[t]
    for t in ref.tasks:
        if t not in out.weak:
            if ref_doc["tasks"][t]["n"]["train_label"] != 60:
                raise SystemExit(f"task {t}: no 60-label run and its suite budget is not 60 labels")
            out.weak[t], out.ceiling[t] = ref.weak[t], ref.ceiling[t]
            for m in out.methods:
                out.methods[m][t] = ref.methods[m][t]
    for m, row in ref_doc["methods"].items():
        if row.get("teacher_free") and m not in out.methods:
            out.methods[m] = dict(ref.methods[m])
    return out


def only(suite: Suite, methods) -> Suite:
    return Suite(
        suite.weak, suite.ceiling, {m: suite.methods[m] for m in methods if m in suite.methods}, suite.families
    )


def board_ranks(suite: Suite) -> tuple[dict[str, int], dict[str, list[float]]]:
    """The leaderboard's rank rule on these methods: paired 95% intervals of pooled-PGR differences with the
    board's plan (RESAMPLING), then 1 + the number of methods that beat one, directly or through a chain."""
    n_boot, seed, conf = RESAMPLING["n_boot"], RESAMPLING["seed"], RESAMPLING["confidence"]
    aggs = {}
    for m in suite.methods:
        per = [
            pgr_from_correct(suite.weak[t], suite.ceiling[t], suite.methods[m][t], n_boot, seed, conf, task=t)
            for t in suite.tasks
        ]
        aggs[m] = aggregate(per, conf)
    entries = []
    for m, a in aggs.items():
        paired = {o: {"d_pooled_pgr_ci": difference(a, b, conf)["pooled_pgr_ci"]} for o, b in aggs.items() if o != m}
        entries.append({"method": m, "pooled_pgr": a.pooled_pgr, "paired": paired})
    ranks = {e["method"]: e["rank"] for e in assign_ranks(entries)}
    return ranks, {m: list(a.pooled_pgr_ci) for m, a in aggs.items()}


def dev_vs_heldout(suite: Suite, dev: list[str], held: list[str], methods, rng) -> dict:
    """Pearson r across `methods` of development vs held-out pooled PGR, with its 95% interval over the test
    examples resampled (one draw per task shared by weak, ceiling and every method)."""
    methods = [m for m in methods if m in suite.methods]

    def r_of(examples=None) -> float:
        x = [suite.pooled(m, dev, examples=examples) for m in methods]
        y = [suite.pooled(m, held, examples=examples) for m in methods]
        return float(np.corrcoef(x, y)[0, 1])

    draws = []
    for _ in range(N_RESAMPLES):
        ex = {t: rng.integers(0, suite.weak[t].shape[1], suite.weak[t].shape[1]) for t in suite.tasks}
        draws.append(r_of(ex))
    # and over the methods resampled (the site's figure draws entries): how much one method carries r
    x = np.array([suite.pooled(m, dev) for m in methods])
    y = np.array([suite.pooled(m, held) for m in methods])
    by_method = []
    for _ in range(N_RESAMPLES):
        i = rng.integers(0, len(methods), len(methods))
        if len(set(i.tolist())) >= 3:
            by_method.append(float(np.corrcoef(x[i], y[i])[0, 1]))
    spearman = float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])
    return {
        "methods": methods,
        "r": r_of(),
        "r_interval": [float(np.nanpercentile(draws, 2.5)), float(np.nanpercentile(draws, 97.5))],
        "r_interval_methods_resampled": [
            float(np.nanpercentile(by_method, 2.5)),
            float(np.nanpercentile(by_method, 97.5)),
        ],
        "spearman": spearman,
        "dev": {m: suite.pooled(m, dev) for m in methods},
        "heldout": {m: suite.pooled(m, held) for m in methods},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", action="append", required=True, metavar="SETTING=FILE")
    ap.add_argument("--recipes", type=Path, default=None, help="folder with <setting>/<knob>=<factor>.json")
    ap.add_argument("--teacher60", action="append", default=[], metavar="SETTING=FILE,FILE,...")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--markdown", action="store_true", help="only print RESULTS.md's tables from --output")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.output.read_text())))
        return

    refs = {k: Path(v) for k, _, v in (s.partition("=") for s in args.reference)}
    t60 = {k: [Path(p) for p in v.split(",")] for k, _, v in (s.partition("=") for s in args.teacher60)}
    docs = {k: read_json(p) for k, p in refs.items()}
    suites = {k: suite_from_results([(str(refs[k]), d)]) for k, d in docs.items()}
    out: dict = {"settings": {}}
    for name, suite in suites.items():
        suite.families = families_of(suite.tasks)
        doc = docs[name]
        dev = [t for t, e in doc["tasks"].items() if e["split"] == "development"]
        held = [t for t, e in doc["tasks"].items() if e["split"] == "heldout"]
        ranks, cis = board_ranks(suite)
        others: dict[str, Suite] = {}
        if args.recipes and (args.recipes / name).is_dir():
            for f in sorted((args.recipes / name).glob("*=*.json")):
                knob, _, factor = f.stem.partition("=")
                others[f"recipe_{knob}_x{factor}"] = suite_from_results([(str(f), read_json(f))])
        for other_name, other in suites.items():
            if other_name != name:
                others[f"model_pair_{other_name}"] = other
        if name in t60:
            others["teacher_60_labels"] = teacher60(t60[name], doc, suite)
        setting_out: dict = {"ranks": ranks, "pooled_pgr_ci": cis, "families": suite.family_tasks(), "scopes": {}}
        for scope, methods in (("all", sorted(suite.methods)), ("w2s", [m for m in W2S if m in suite.methods])):
            ref = only(suite, methods)
            sub_ranks = {m: ranks[m] for m in methods}
            report = robustness(ref, sub_ranks, N_RESAMPLES, 0)
            for label, other in others.items():
                shared = [m for m in methods if m in other.methods]
                got = compare_runs(only(ref, shared), only(other, shared), label, sub_ranks, N_RESAMPLES, 0)
                report["perturbations"][label] = {**got["perturbation"], "methods": len(shared)}
                for m, p in got["methods"].items():
                    report["methods"][m][label] = p
                if label == "teacher_60_labels":
                    report["teacher_60_labels_pooled_pgr"] = {m: other.pooled(m, other.tasks) for m in shared}
            setting_out["scopes"][scope] = report
        rng = np.random.default_rng(0)
        # the site's floors: teacher-free entries and entries whose pooled PGR interval lies below 0
        learners = [m for m in W2S if m in suite.methods and cis[m][1] >= 0]
        setting_out["dev_vs_heldout"] = {
            "w2s": dev_vs_heldout(suite, dev, held, W2S, rng),
            "w2s_floors_apart": dev_vs_heldout(suite, dev, held, learners, rng),
            # confident_only sits far below the rest (its fixed cutoffs under 60-label teachers): without it
            "w2s_without_confident_only": dev_vs_heldout(
                suite, dev, held, [m for m in W2S if m != "confident_only"], rng
            ),
            "with_floors": dev_vs_heldout(suite, dev, held, sorted(suite.methods), rng),
        }
        if "teacher_60_labels" in others:
            t60s = others["teacher_60_labels"]
            setting_out["teacher_60_labels"] = {
                "weak_acc": {t: float(t60s.weak[t].mean()) for t in t60s.tasks},
                "reference_weak_acc": {t: float(suite.weak[t].mean()) for t in suite.tasks},
                "ceiling_acc": {t: float(suite.ceiling[t].mean()) for t in suite.tasks},
                "summed_gap_points": 100 * sum(float(t60s.ceiling[t].mean() - t60s.weak[t].mean()) for t in t60s.tasks),
                "reference_summed_gap_points": 100
                * sum(float(suite.ceiling[t].mean() - suite.weak[t].mean()) for t in suite.tasks),
            }
            setting_out["dev_vs_heldout"]["w2s_teacher_60_labels"] = dev_vs_heldout(
                others["teacher_60_labels"], dev, held, W2S, rng
            )
        out["settings"][name] = setting_out
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    for name, s in out["settings"].items():
        print(f"## {name}  ranks {s['ranks']}")
        for scope, rep in s["scopes"].items():
            print(f"### {scope}")
            for k, p in rep["perturbations"].items():
                iv = p["tau_b_interval"]
                tau = "-" if p["tau_b"] is None else f"{p['tau_b']:+.2f}"
                ivs = "-" if iv is None else f"[{iv[0]:+.2f}, {iv[1]:+.2f}]"
                print(
                    f"  {k:28s} {tau} {ivs} draws {p['draws']}" + (f" methods {p['methods']}" if "methods" in p else "")
                )
            kinds = list(rep["perturbations"])
            print("  method".ljust(18) + " ".join(k[:10].rjust(10) for k in kinds))
            for m in sorted(rep["reference"]["position"], key=rep["reference"]["position"].get):
                cells = " ".join(f"{rep['methods'][m].get(k, float('nan')):10.2f}" for k in kinds)
                print(f"  {m:16s}{cells}  pooled {rep['reference']['pooled_pgr'][m]:+.3f}")
        for k, d in s["dev_vs_heldout"].items():
            iv = d["r_interval"]
            im = d["r_interval_methods_resampled"]
            print(
                f"  dev vs held-out {k} ({len(d['methods'])}): r {d['r']:+.2f} [{iv[0]:+.2f}, {iv[1]:+.2f}] "
                f"(methods resampled [{im[0]:+.2f}, {im[1]:+.2f}]) spearman {d['spearman']:+.2f}"
            )


LABELS = {
    "leave_one_task_out": "leave one task out (10)",
    "leave_one_family_out": "leave one family out (6)",
    "seeds_resampled": "seeds resampled",
    "tasks_resampled": "tasks resampled",
    "recipe_lr_x0.5": "lr x0.5 (rerun)",
    "recipe_lr_x2": "lr x2 (rerun)",
    "recipe_epochs_x0.5": "epochs x0.5 (rerun)",
    "recipe_epochs_x2": "epochs x2 (rerun)",
    "teacher_60_labels": "60-label teacher (rerun)",
}
SHORT = {
    "leave_one_task_out": "task out",
    "leave_one_family_out": "family out",
    "seeds_resampled": "seeds",
    "tasks_resampled": "tasks",
    "recipe_lr_x0.5": "lr ½",
    "recipe_lr_x2": "lr x2",
    "recipe_epochs_x0.5": "ep. ½",
    "recipe_epochs_x2": "ep. x2",
    "teacher_60_labels": "60 labels",
}


def _label(k: str, table: dict) -> str:
    return table.get(k) or ("other pair" if k.startswith("model_pair_") else k)


def markdown(out: dict) -> str:
    """RESULTS.md's tables from the JSON this script writes."""
    names = list(out["settings"])
    lines = ["| change | " + " | ".join(f"{n}: all entries | {n}: eight W2S" for n in names) + " |"]
    lines.append("| --- " * (1 + 2 * len(names)) + "|")
    kinds: list[str] = []
    for n in names:
        for k in out["settings"][n]["scopes"]["all"]["perturbations"]:
            if k not in kinds and not (k.startswith("model_pair_") and any(x.startswith("model_pair_") for x in kinds)):
                kinds.append(k)

    def cell(p: dict | None) -> str:
        if not p or p.get("tau_b") is None:
            return "-"
        iv = p["tau_b_interval"]
        return f"{p['tau_b']:+.2f} [{iv[0]:+.2f}, {iv[1]:+.2f}]"

    for k in kinds:
        row = []
        for n in names:
            for scope in ("all", "w2s"):
                ps = out["settings"][n]["scopes"][scope]["perturbations"]
                key = k if not k.startswith("model_pair_") else next((x for x in ps if x.startswith("model_pair_")), k)
                row.append(cell(ps.get(key)))
        lines.append(f"| {_label(k, LABELS)} | " + " | ".join(row) + " |")
    for n in names:
        s = out["settings"][n]
        rep = s["scopes"]["all"]
        ks = list(rep["perturbations"])
        lines += ["", f"{n}:", ""]
        lines.append("| method | rank | pooled PGR | " + " | ".join(_label(k, SHORT) for k in ks) + " | least (own) |")
        lines.append("| --- " * (4 + len(ks)) + "|")
        for m in sorted(rep["reference"]["position"], key=rep["reference"]["position"].get):
            cells = " | ".join("-" if rep["methods"][m].get(k) is None else f"{rep['methods'][m][k]:.2f}" for k in ks)
            own = min(
                rep["methods"][m][k]
                for k in ks
                if k in rep["methods"][m] and not k.startswith(("recipe_", "model_", "teacher_"))
            )
            lines.append(f"| {m} | {s['ranks'][m]} | {rep['reference']['pooled_pgr'][m]:+.3f} | {cells} | {own:.2f} |")
    lines += ["", "| method | " + " | ".join(f"{n}: official teacher | {n}: 60-label teacher" for n in names) + " |"]
    lines.append("| --- " * (1 + 2 * len(names)) + "|")
    ref0 = out["settings"][names[0]]["scopes"]["all"]
    for m in sorted(ref0["reference"]["position"], key=ref0["reference"]["position"].get):
        row = []
        for n in names:
            rep = out["settings"][n]["scopes"]["all"]
            t60 = rep.get("teacher_60_labels_pooled_pgr") or {}
            row.append(f"{rep['reference']['pooled_pgr'][m]:+.3f}" if m in rep["reference"]["pooled_pgr"] else "-")
            row.append(f"{t60[m]:+.3f}" if m in t60 else "-")
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    for n in names:
        t = out["settings"][n].get("teacher_60_labels")
        if t:
            lines.append(
                f"\n{n}: summed ceiling-weak gap {t['reference_summed_gap_points']:.1f} points (official) -> "
                f"{t['summed_gap_points']:.1f} (60 labels); weak per task "
                + ", ".join(
                    f"{k} {100 * t['reference_weak_acc'][k]:.1f}->{100 * v:.1f}" for k, v in t["weak_acc"].items()
                )
            )
    lines += [
        "",
        "| setting | entries | Pearson r [95%: test examples] [95%: methods] | Spearman |",
        "| --- | --- | --- | --- |",
    ]
    for n in names:
        for k, d in out["settings"][n]["dev_vs_heldout"].items():
            iv, im = d["r_interval"], d["r_interval_methods_resampled"]
            lines.append(
                f"| {n} | {k} ({len(d['methods'])}) | {d['r']:+.2f} [{iv[0]:+.2f}, {iv[1]:+.2f}] "
                f"[{im[0]:+.2f}, {im[1]:+.2f}] | {d['spearman']:+.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
