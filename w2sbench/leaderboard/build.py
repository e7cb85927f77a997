"""Aggregating valid submissions into leaderboard.json: per official setting, one entry per method,
ranked by its pooled PGR over the setting's tasks. A submission is a claim: it becomes an entry only where
a record of reproduction (leaderboard/records/<stem>.json, leaderboard.records) is ok and names the
submission's current digest, method and code; the others are listed under the setting's `pending` with the
reason, and nothing of theirs is scored.

Every number is computed here, the same way for every entry, and none is read from a submission: the
official weak and ceiling correctness (baselines.json) and the entry's per-example correctness as the
harness's own rerun produced it (the record's `correct` vectors; its flags and AUC too), resampled by
one shared plan per task (scoring.resample_counts / seed_draws: the leaderboard's RESAMPLING), so any two
entries' draws are paired: the same test resamples, and method seed s of both (which learned from the same
weak seed) resampled together.

Ranks are honest about noise: A beats B when A's pooled PGR minus B's has a paired 95% interval above 0.
An entry's rank is 1 + the number of entries that beat it, directly or through a chain of such wins (A beats
B beats C counts A above C). This is Chatbot Arena's rule (1 + the number of models significantly better)
made transitive, so that A beating B always puts A's rank strictly above B's. A rank says how many entries
are shown to be better, no more: two entries with different ranks need not be resolved from each other
(`tied_with` lists the entries whose paired interval with this one includes 0, `better_than` those it beats).
An earlier rule cut the sorted list into tiers only where every entry above a cut beat every entry below it;
one unresolved entry in the middle then tied the whole list (8 of 10 reference methods shared rank 1 while
logconf clearly beat vanilla), so it said less than the paired comparisons know.

Copies count once. Under that rule every extra copy of a method that beats B would count as one more entry
beating B (two clones of logconf moved vanilla from rank 2 to 4). So entries whose predictions agree on at
least CLONE_AGREEMENT of the test examples of every task form one class, anchored on the earliest
submitted (`duplicate_of` names it on each later copy), and a rank counts the classes that beat an entry,
not the entries. With two labels, two entries predict the same label on an example exactly when both are
right or both are wrong there, so agreement is read from the correctness vectors the submissions hold,
seed s against seed s (both learned from weak seed s).

Robustness: whether the order survives a change that should not matter (w2sbench/reports/robustness.py):
one task left out, one family of tasks left out (where a suite with exactly the setting's tasks names
their families: suite v2's six), the tasks or the seeds resampled, and, where another official setting
holds the same tasks, that setting's order (another weak/strong pair: `model_pair_<setting>`), and the
order of the reference runs under the strong recipe perturbed within the setting's declared range
(`recipe_<knob>_x<f>`, leaderboard/recipes/). Only the setting's own changes (the first three or four)
enter an entry's headline `least`: every ranked entry has them, while the other two exist only for entries
on both settings or for the built-in methods.

The recipe runs are also entries of their own (`vanilla @ epochs x2`: `recipe` names the change,
`non_default_recipe` is true), scored against the official default-recipe weak and ceiling and ranked by the
same rule, so a reader sees whether a better-trained reference method reaches the top group. They are placed
among the submissions without being counted in the submissions' ranks (counted, the 32 recipe entries of the
seed moved vanilla from rank 5 to 13 on tiny and from 7 to 19 on tiny-smollm2, by variants of other methods),
and they have no robustness figures of their own: the submissions' ranks, groups and robustness are what they
are without them. Like baselines.json they are maintainers' data made by the harness (make_seed.sh,
publish.sh), not submissions.

The teacher-free floor: per setting the best ranked teacher-free entry by pooled PGR
(`teacher_free_floor`), and per entry whether its paired interval over it lies above 0
(`beats_teacher_free`): a W2S method that does not beat it has not shown that it learns from the teacher."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..cache import hash_file
from ..errors import W2SError
from ..provenance import git_state
from ..schema_io import validate
from ..scoring import CONFIDENCE, aggregate, decode_correct, difference, pgr_from_correct
from . import PGR_TOL

SCHEMA_VERSION = 2  # 2: pooled PGR, paired ranking, development vs held-out
RESAMPLING = {"n_boot": 2000, "seed": 0, "confidence": CONFIDENCE}  # one plan for every entry of a setting
RANKED_BY = "pooled_pgr"
ROBUSTNESS_RESAMPLES = 500  # draws per resampling of the rank-stability figures (w2sbench/reports/robustness.py)
CLONE_AGREEMENT = 0.99  # predictions that agree on this share of every task's test examples: one entry


def significantly_better(a: dict, b: dict) -> bool:
    """True when the paired interval of a's pooled PGR minus b's lies above 0."""
    ci = a.get("paired", {}).get(b["method"], {}).get("d_pooled_pgr_ci")
    return ci is not None and ci[0] > 0


def assign_ranks(entries: list[dict]) -> list[dict]:
    """Set rank / tied_with / better_than in place and return the entries sorted by rank, then pooled PGR
    (unranked last). Each entry holds `pooled_pgr` and `paired` (other method -> its d_pooled_pgr_ci); entries
    with an `unranked_reason` take no rank and no part in others' ranks. The maintainers' recipe runs (entries
    with a `recipe`) are placed among the others by the same rule, 1 + the entries that beat them, but are not
    counted in anyone's rank (nor listed in their tied_with / better_than): four variants of each reference
    method would otherwise push every submission down, and the ranks of the submissions would depend on how
    many recipe changes the maintainers ran."""
    for e in entries:
        if e.get("unranked_reason") is None and e.get("pooled_pgr") is None:
            e["unranked_reason"] = "pooled PGR undefined"
    ranked = [e for e in entries if e.get("unranked_reason") is None]
    rest = [e for e in entries if e not in ranked]
    counted = [e for e in ranked if not e.get("recipe")]
    cls = {e["method"]: e.get("duplicate_of") or e["method"] for e in entries}  # a copy counts as its original
    beaten_by = {  # who beats whom directly; a win implies a higher pooled PGR, so the graph has no cycle
        e["method"]: {o["method"] for o in counted if o is not e and significantly_better(o, e)} for e in ranked
    }
    for e in ranked:
        above: set[str] = set()
        todo = list(beaten_by[e["method"]])
        while todo:  # everything that beats e, or beats something that beats e
            m = todo.pop()
            if m not in above and m != e["method"]:
                above.add(m)
                todo.extend(beaten_by[m])
        e["rank"] = 1 + len({cls[m] for m in above} - {cls[e["method"]]})
    ranked.sort(key=lambda e: (e["rank"], -e["pooled_pgr"], e["method"]))
    counted = [e for e in ranked if not e.get("recipe")]  # in rank order
    for e in ranked:
        others = [o for o in counted if o is not e]
        e["better_than"] = [o["method"] for o in others if significantly_better(e, o)]
        e["tied_with"] = [
            o["method"] for o in others if not significantly_better(e, o) and not significantly_better(o, e)
        ]
    rest.sort(key=lambda e: (-e["mean_w2s_accuracy"], e["method"]))
    for e in rest:
        e["rank"], e["tied_with"], e["better_than"] = None, [], []
    return ranked + rest


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The share of test examples on which two entries predict the same label, from their [seeds, n]
    correctness: seed by seed when both have the same seeds, else by the majority over each one's seeds."""
    if a.shape != b.shape:
        a, b = a.mean(axis=0, keepdims=True) >= 0.5, b.mean(axis=0, keepdims=True) >= 0.5
    return float(np.mean(a == b))


def _since(entry: dict) -> tuple[int, str]:
    """When an entry first counted: a submission by its first ok reproduction (the record's `since`), the
    maintainers' recipe runs after every submission."""
    if entry.get("recipe"):
        return 1, ""
    return 0, entry["reproduced"]["since"]


def mark_duplicates(entries: list[dict], correct: list[dict[str, np.ndarray]]) -> None:
    """Set `duplicate_of` on every entry whose predictions agree with an earlier submitted entry's on at least
    CLONE_AGREEMENT of every task's test examples (None on the rest). Each entry is compared with the
    originals only, oldest first, so a chain of near-copies cannot walk a class away from its original."""
    order = sorted(range(len(entries)), key=lambda i: (_since(entries[i]), entries[i]["method"]))
    originals: list[int] = []
    for i in order:
        entries[i]["duplicate_of"] = None
        for j in originals:
            if all(agreement(correct[i][t], correct[j][t]) >= CLONE_AGREEMENT for t in correct[i]):
                entries[i]["duplicate_of"] = entries[j]["method"]
                break
        else:
            originals.append(i)


def _robustness(
    ranked: list[dict], entries: list[dict], correct: list[dict[str, np.ndarray]], tasks: list[dict], official: dict
) -> tuple[dict | None, Any]:
    """How stable the ranked submissions' order is (w2sbench/reports/robustness.py): each one's probabilities of
    staying in its rank group, and the setting's tau-b per perturbation, with their Suite (for the comparison
    with other settings); (None, None) with fewer than two ranked. The recipe runs' entries take no part."""
    from ..reports.robustness import Suite, robustness
    from ..tasks import families_of

    order = {id(e): i for i, e in enumerate(entries)}
    ranked = [e for e in ranked if e["rank"] is not None and not e.get("recipe")]
    for e in entries:
        e["robustness"] = None
    if len(ranked) < 2:
        return None, None
    suite = Suite(
        weak={
            t["name"]: decode_correct(official["tasks"][t["task_hash"]]["weak"]["correct"], t["n"]["test"])
            for t in tasks
        },
        ceiling={
            t["name"]: decode_correct(official["tasks"][t["task_hash"]]["ceiling"]["correct"], t["n"]["test"])
            for t in tasks
        },
        methods={e["method"]: correct[order[id(e)]] for e in ranked},
        families=families_of([t["name"] for t in tasks]),
    )
    report = robustness(suite, {e["method"]: e["rank"] for e in ranked}, ROBUSTNESS_RESAMPLES, RESAMPLING["seed"])
    for e in ranked:
        e["robustness"] = report["methods"][e["method"]]
    return {"perturbations": report["perturbations"], "n_resamples": ROBUSTNESS_RESAMPLES}, suite


def _other_pairs(settings: dict[str, dict], suites: dict[str, Any]) -> None:
    """Each setting's order against every other official setting on the same tasks (another weak/strong
    pair): tau-b among the methods ranked in both, and each one's P(stays in its rank group) there, added as
    the perturbation `model_pair_<other>` beside the resampled ones. `least` stays the smallest of the
    setting's own three changes, which every ranked entry has: an entry submitted on one setting only has no
    pair figure, and a headline figure over different changes would not compare entries fairly."""
    from ..reports.robustness import compare_runs

    for name, setting in settings.items():
        if suites[name] is None:
            continue
        ranks = {e["method"]: e["rank"] for e in setting["entries"] if e["rank"] is not None and not e.get("recipe")}
        for other_name, other in suites.items():
            if other_name == name or other is None or other.tasks != suites[name].tasks:
                continue
            label = f"model_pair_{other_name}"
            if len(set(ranks) & set(other.methods)) < 2:
                continue
            report = compare_runs(suites[name], other, label, ranks, ROBUSTNESS_RESAMPLES, RESAMPLING["seed"])
            setting["robustness"]["perturbations"][label] = report["perturbation"]
            for e in setting["entries"]:
                if e["method"] in report["methods"] and e["robustness"] is not None:
                    e["robustness"][label] = report["methods"][e["method"]]


def _entry(label: str, path: Path, sub: dict, results: dict, record: dict, block: dict) -> dict[str, Any]:
    """The entry's card, flags and provenance, from its record of reproduction (the submission gives only its
    card and its claimed numbers, shown as such); its scores are filled in by _score."""
    method = sub["method"]
    name = method["name"]
    flags = [{"task": t, **f} for t, row in sorted(block["tasks"].items()) for f in row["flags"]]
    worst = max((abs(r["difference"]) for b in record["settings"].values() for r in b["tasks"].values()), default=0.0)
    prov = results["provenance"]
    summary = results["summary"].get(name, {})
    return {
        "method": name,
        "rank": None,
        "tied_with": [],
        "better_than": [],
        "unranked_reason": None,
        "reproduced": {
            "date": record["date"],
            "since": record["since"],
            "commit": record["commit"],
            "tolerance": record["tolerance"],
            "largest_difference": worst,
        },
        "claimed": {
            "mean_w2s_accuracy": summary.get("mean_w2s_accuracy"),
            "pooled_pgr": summary.get("pooled_pgr"),
            "note": "the submitted numbers, a claim: every figure of the entry comes from the harness's rerun",
        },
        "recipe": None,
        "flags": flags,
        "teacher_free": record["described"]["teacher_free"],
        "non_default_recipe": bool(method["non_default_recipe"] or record["described"]["non_default_recipe"]),
        "card": {**method, "config": block["config"]},
        "provenance": {
            "submission": label,
            "sha256": hash_file(path),
            "w2sbench_version": record["w2sbench_version"],
            "git_commit": record["commit"],
            "created": record["date"],
            "command": "w2sbench leaderboard reproduce",
            "backend": block["backend"],
            "hardware": block["hardware"],
            "seeds": block["seeds"],
            "record": record["submission"]["file"],
            "submitted": {
                "created": prov["created"],
                "command": prov["command"],
                "w2sbench_version": prov["w2sbench_version"],
                "git_commit": prov["git"].get("commit"),
            },
        },
    }


def _interval(ci) -> list[float] | None:
    return list(ci) if ci else None


def _aggregate_fields(agg) -> dict[str, Any]:
    return {
        "pooled_pgr": agg.pooled_pgr,
        "pooled_pgr_ci": _interval(agg.pooled_pgr_ci),
        "mean_pgr": agg.mean_pgr,
        "mean_pgr_ci": _interval(agg.mean_pgr_ci),
    }


def _score(
    entries: list[dict],
    correct: list[dict[str, np.ndarray]],
    aucs: list[dict[str, list]],
    tasks: list[dict],
    official: dict,
) -> None:
    """Fill in each entry's per-task scores, aggregates, development vs held-out and paired differences,
    from the official weak/ceiling correctness and the entries' reproduced correctness (`correct`, per entry
    and task [seeds, n]) with the shared plan; `aucs`: per entry and task, the per-seed AUC."""
    n_boot, seed, conf = RESAMPLING["n_boot"], RESAMPLING["seed"], RESAMPLING["confidence"]
    scores: list[dict[str, Any]] = [{} for _ in entries]
    for t in tasks:
        base = official["tasks"][t["task_hash"]]
        n = t["n"]["test"]
        cw, cc = decode_correct(base["weak"]["correct"], n), decode_correct(base["ceiling"]["correct"], n)
        for i in range(len(entries)):
            scores[i][t["name"]] = pgr_from_correct(cw, cc, correct[i][t["name"]], n_boot, seed, conf, task=t["name"])
    names = [t["name"] for t in tasks]
    dev = [t["name"] for t in tasks if t["split"] == "development"]
    held = [t["name"] for t in tasks if t["split"] == "heldout"]
    overall = []
    for e, auc, sc in zip(entries, aucs, scores):
        e["tasks"] = {
            t: {
                "split": next(x["split"] for x in tasks if x["name"] == t),
                "pgr": sc[t].pgr,
                "pgr_ci": _interval(sc[t].pgr_ci),
                "defined": sc[t].defined,
                "undefined_reason": sc[t].undefined_reason,
                "weak_acc": sc[t].weak_acc,
                "ceiling_acc": sc[t].ceiling_acc,
                "w2s_acc": sc[t].w2s_acc,
                "w2s_auroc": None if any(a is None for a in auc[t]) else float(np.mean(auc[t])),
            }
            for t in names
        }
        agg = aggregate([sc[t] for t in names], conf)
        overall.append(agg)
        e.update(_aggregate_fields(agg))
        e["mean_w2s_accuracy"] = agg.mean_w2s_accuracy
        e["tasks_defined"] = sum(sc[t].defined for t in names)
        e["transfer"] = None
        if dev and held:
            a_dev, a_held = aggregate([sc[t] for t in dev], conf), aggregate([sc[t] for t in held], conf)
            e["transfer"] = {
                "development": _aggregate_fields(a_dev),
                "heldout": _aggregate_fields(a_held),
                "difference": difference(a_held, a_dev, conf),
            }
    for e, agg in zip(entries, overall):
        e["paired"] = {}
        for o, other in zip(entries, overall):
            if o is e:
                continue
            d = difference(agg, other, conf)
            e["paired"][o["method"]] = {
                "d_pooled_pgr": d["pooled_pgr"],
                "d_pooled_pgr_ci": d["pooled_pgr_ci"],
                "d_mean_pgr": d["mean_pgr"],
                "d_mean_pgr_ci": d["mean_pgr_ci"],
            }


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def _recipe_files(name: str, recipes_dir: Path | None, skipped: list[str]) -> list[tuple[Path, dict, str, float]]:
    """The setting's reference runs under a perturbed strong recipe (`recipes_dir/<setting>/<knob>=<factor>.json`:
    `w2sbench eval --perturb-recipe`, made by make_seed.sh), as (path, results, knob, factor), each checked
    to be a run of one declared change under this version of the setting; a stale or foreign run is listed in
    `skipped` with one line and left out."""
    from ..schema_io import read_json
    from ..settings import load_setting

    folder = recipes_dir / name if recipes_dir else None
    if folder is None or not folder.is_dir():
        return []
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = read_json(path)
            validate(doc, "results", str(path))
        except W2SError as e:
            skipped.append(str(e))
            continue
        change = (doc["setting"].get("config") or {}).get("perturbed", {}).get("strong") or {}
        if doc["setting"]["name"] != name or len(change) != 1:
            skipped.append(f"{path}: field 'setting.config.perturbed': not a perturbed-recipe run of {name!r}")
            continue
        ((knob, factor),) = change.items()
        try:
            expected = load_setting(name).perturbed(knob, factor).hash
        except W2SError as e:
            skipped.append(f"{path}: {e}")
            continue
        if doc["setting"]["hash"] != expected:
            skipped.append(
                f"{path}: field 'setting.hash': run under another version of setting {name!r}; "
                "rerun it (bash leaderboard/make_seed.sh)"
            )
            continue
        runs.append((path, doc, knob, float(factor)))
    return runs


def _same_code(doc: dict, method: str, entry: dict) -> bool:
    """The run's `method` is the entry's pinned code with the entry's config."""
    row = doc["methods"].get(method)
    return (
        row is not None
        and row["code"]["sha256"] == entry["card"]["source"]["sha256"]
        and (row.get("config") or {}) == (entry["card"].get("config") or {})
    )


def _recipe_entries(
    runs: list[tuple[Path, dict, str, float]],
    entries: list[dict],
    tasks: list[dict],
    root: Path | None,
    skipped: list[str],
) -> tuple[list[dict], list[dict[str, np.ndarray]], list[dict[str, list]]]:
    """Each recipe run's methods as entries of their own (`vanilla @ epochs x2`), for the methods whose
    reproduced entry's code and config the run ran; their correctness from the run, read against the
    official baselines like any entry's. (entries, correctness per task, per-seed AUC per task)"""
    by_method = {e["method"]: e for e in entries}
    out: list[dict] = []
    correct: list[dict[str, np.ndarray]] = []
    aucs: list[dict[str, list]] = []
    for path, doc, knob, factor in runs:
        label = _label(path, root)
        wrong = [
            t["name"]
            for t in tasks
            if t["name"] not in doc["tasks"]
            or doc["tasks"][t["name"]]["task_hash"] != t["task_hash"]
            or doc["tasks"][t["name"]]["n"]["test"] != t["n"]["test"]
        ]
        if wrong:
            skipped.append(f"{label}: field 'tasks.{wrong[0]}': not the official task at its official size")
            continue
        change = f"{knob} x{factor:g}"
        prov = doc["provenance"]
        for m in sorted(doc["methods"]):
            base = by_method.get(m)
            if base is None or not _same_code(doc, m, base):
                skipped.append(f"{label}: field 'methods.{m}': not the code and config of a reproduced entry; no entry")
                continue
            row = doc["methods"][m]
            out.append(
                {
                    "method": f"{m} @ {change}",
                    "rank": None,
                    "tied_with": [],
                    "better_than": [],
                    "unranked_reason": None,
                    "reproduced": {
                        "date": prov["created"],
                        "since": prov["created"],
                        "commit": prov["git"].get("commit"),
                        "tolerance": 0.0,
                        "largest_difference": 0.0,
                        "kind": "recipe run: the harness's own run (make_seed.sh), maintainers' data",
                    },
                    "claimed": None,
                    "recipe": {"of": m, "knob": knob, "factor": factor, "change": change, "file": label},
                    "flags": [
                        {"task": t, **f}
                        for t, e in sorted(doc["tasks"].items())
                        for f in e["methods"][m].get("flags", [])
                    ],
                    "teacher_free": bool(row["teacher_free"]),
                    "non_default_recipe": True,
                    "card": {
                        **base["card"],
                        "name": f"{m} @ {change}",
                        "non_default_recipe": True,
                        "recipe_notes": f"{m} trained under the setting's strong recipe with {change} (a maintainers' "
                        f"run, {label}); scored against the official default-recipe weak and ceiling",
                    },
                    "provenance": {
                        "submission": label,
                        "sha256": hash_file(path),
                        "w2sbench_version": prov["w2sbench_version"],
                        "git_commit": prov["git"].get("commit"),
                        "created": prov["created"],
                        "command": prov["command"],
                        "backend": doc["backend"]["used"],
                        "hardware": prov["hardware"],
                        "seeds": doc["seeds"],
                    },
                }
            )
            rows = {t["name"]: doc["tasks"][t["name"]]["methods"][m]["w2s"] for t in tasks}
            correct.append({t: decode_correct(r["correct"], doc["tasks"][t]["n"]["test"]) for t, r in rows.items()})
            aucs.append({t: r["auroc_per_seed"] for t, r in rows.items()})
    return out, correct, aucs


def _recipe_figures(
    settings: dict[str, dict],
    suites: dict[str, Any],
    runs: dict[str, list[tuple[Path, dict, str, float]]],
    skipped: list[str],
) -> None:
    """Each setting's order against its reference runs under the strong recipe perturbed within the range the
    setting declares, added as the perturbation `recipe_<knob>_x<factor>` with each entry's P(stays in its
    rank group) there. A run counts only for the submitted entries whose code and config it ran (the
    submission's pinned hash)."""
    from ..reports.robustness import Suite, compare_runs, suite_from_results

    for name, setting in settings.items():
        if suites[name] is None:
            continue
        ranked = {e["method"]: e for e in setting["entries"] if e["rank"] is not None and not e.get("recipe")}
        for path, doc, knob, factor in runs.get(name, []):
            run = suite_from_results([(str(path), doc)])
            same = [m for m, e in ranked.items() if m in run.methods and _same_code(doc, m, e)]
            if len(same) < 2:
                skipped.append(f"{path}: field 'methods': fewer than two of its methods ran the ranked entries' code")
                continue
            label = f"recipe_{knob}_x{factor:g}"
            report = compare_runs(  # compared on the methods both hold: those of `same` in the run
                suites[name],
                Suite(run.weak, run.ceiling, {m: run.methods[m] for m in same}),
                label,
                {m: ranked[m]["rank"] for m in same},
                ROBUSTNESS_RESAMPLES,
                RESAMPLING["seed"],
            )
            setting["robustness"]["perturbations"][label] = {**report["perturbation"], "methods": len(same)}
            for m in same:
                ranked[m]["robustness"][label] = report["methods"][m]


def teacher_free_floor(entries: list[dict]) -> dict | None:
    """The best ranked teacher-free entry by pooled PGR (None without one), and on every other ranked entry
    `beats_teacher_free`: whether its paired interval over that entry lies above 0 (None where there is no
    floor, on the floor itself and on unranked entries)."""
    free = [e for e in entries if e["rank"] is not None and e["teacher_free"]]
    floor = max(free, key=lambda e: (e["pooled_pgr"], e["method"]), default=None)
    for e in entries:
        e["beats_teacher_free"] = (
            None if floor is None or e is floor or e["rank"] is None else significantly_better(e, floor)
        )
    if floor is None:
        return None
    return {"method": floor["method"], "pooled_pgr": floor["pooled_pgr"], "pooled_pgr_ci": floor["pooled_pgr_ci"]}


def _reproduced_runs(
    pairs: list[tuple[Path, dict, dict]],
    shash: str,
    setting_name: str,
    tasks: list[dict],
    records_dir: Path | None,
    root: Path | None,
) -> tuple[list[dict], list[dict[str, np.ndarray]], list[dict[str, list]], list[dict], list[dict]]:
    """(entries, their reproduced correctness, their per-seed AUC, pending, records used) of one setting: a
    submission is an entry only where its record is ok for its current digest, method and code and holds every
    official task of the setting; else it is pending, with the reason, and nothing of it is scored."""
    from .records import find_record, record_path, setting_vectors, status

    entries, correct, aucs, pending, used = [], [], [], [], []
    for path, sub, res in pairs:
        label = _label(path, root)
        record, why = find_record(records_dir, path)
        why = why or status(sub, record)
        if why is None:
            where = _label(record_path(records_dir, path), root)
            try:
                vectors, auc, block = setting_vectors(record, setting_name, shash, tasks, where)
            except W2SError as e:
                why = f"its record of reproduction does not cover this setting ({e})"
        if why is not None:
            pending.append({"method": sub["method"]["name"], "submission": label, "reason": why})
            continue
        entries.append(_entry(label, path, sub, res, record, block))
        correct.append(vectors)
        aucs.append(auc)
        used.append(
            {
                "file": where,
                "sha256": hash_file(record_path(records_dir, path)),
                "method": sub["method"]["name"],
                "setting": setting_name,
            }
        )
    return entries, correct, aucs, pending, used


def build_leaderboard(
    valid: list[tuple[Path, dict]],
    baselines: dict,
    baselines_path: Path,
    skipped: list[str] | None = None,
    root: Path | None = None,
    recipes_dir: Path | None = None,
    records_dir: Path | None = None,
) -> dict[str, Any]:
    """The leaderboard document (checked against leaderboard.schema.json before it is returned).
    `records_dir`: the records of reproduction (leaderboard/records/): without one, no submission is an
    entry. `recipes_dir`: the reference runs under perturbed recipes, per setting (leaderboard/recipes/)."""
    from ..settings import load_setting

    skipped = list(skipped or [])

    settings: dict[str, Any] = {}
    suites: dict[str, Any] = {}
    runs: dict[str, list] = {}
    records_used: list[dict] = []
    for shash, official in sorted(baselines["settings"].items(), key=lambda kv: kv[1]["name"]):
        setting = load_setting(official["name"])
        if setting.hash != shash:
            continue  # stale baselines of an older version of the setting: nothing can be compared to them
        tasks = [
            {
                "name": t["task"],
                "task_hash": h,
                "split": t["split"],
                "n": t["n"],
                "weak_acc": t["weak"]["accuracy"],
                "ceiling_acc": t["ceiling"]["accuracy"],
            }
            for h, t in sorted(official["tasks"].items(), key=lambda kv: kv[1]["task"])
        ]
        pairs = [(path, sub, res) for path, sub in valid for res in sub["results"] if res["setting"]["hash"] == shash]
        entries, correct, aucs, pending, used = _reproduced_runs(
            pairs, shash, official["name"], tasks, records_dir, root
        )
        records_used += used
        runs[official["name"]] = _recipe_files(official["name"], recipes_dir, skipped)
        extra, extra_correct, extra_aucs = _recipe_entries(runs[official["name"]], entries, tasks, root, skipped)
        entries, correct, aucs = entries + extra, correct + extra_correct, aucs + extra_aucs
        _score(entries, correct, aucs, tasks, official)
        mark_duplicates(entries, correct)
        ranked_entries = assign_ranks(entries)
        stability, suites[official["name"]] = _robustness(ranked_entries, entries, correct, tasks, official)
        floor = teacher_free_floor(ranked_entries)
        settings[official["name"]] = {
            "name": official["name"],
            "version": official["version"],
            "hash": shash,
            "description": setting.description,
            "weak_model": setting.weak.model,
            "strong_model": setting.strong.model,
            "baseline_seeds": official["seeds"],
            "tasks": tasks,
            "ranking": {
                "by": RANKED_BY,
                "rule": "pooled PGR = sum(w2s - weak) / sum(ceiling - weak) over the setting's tasks (development "
                "and held-out), from the harness's reproduced predictions; A beats B where the paired 95% interval "
                "of A's pooled PGR minus B's lies above 0; "
                "rank = 1 + the number of entries that beat this one, directly or through a chain of wins, "
                f"counting once the entries whose predictions agree on >= {CLONE_AGREEMENT:.0%} of every task's "
                "test examples (duplicate_of names the original); the maintainers' recipe runs (`recipe`) are "
                "ranked with the rest",
                "resampling": dict(RESAMPLING),
            },
            "robustness": stability,
            "teacher_free_floor": floor,
            "entries": ranked_entries,
            "pending": pending,
        }
    _other_pairs(settings, suites)
    _recipe_figures(settings, suites, runs, skipped)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generated": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "w2sbench_version": __version__,
            "git_commit": git_state().get("commit"),
            "baselines": {"file": _label(baselines_path, root), "sha256": hash_file(baselines_path)},
            "submissions": [
                {"file": _label(p, root), "sha256": hash_file(p), "method": s["method"]["name"]} for p, s in valid
            ],
            "records": records_used,
            "skipped": skipped,
        },
        "tolerance": {"accuracy": float(baselines["tolerance"]["accuracy"]), "pgr": PGR_TOL},
        "settings": settings,
    }
    validate(doc, "leaderboard", "leaderboard.json")
    return doc
