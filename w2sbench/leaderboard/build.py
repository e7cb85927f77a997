"""Aggregating valid submissions into leaderboard.json: per official setting, one entry per method
ranked by mean PGR over the setting's tasks. Only entries the harness has reproduced from their code are
ranked; the others are listed with the reason. Ranks are honest about noise: an entry's rank is 1 + the
number of ranked entries whose mean-PGR interval lies wholly above its own, so entries with overlapping
intervals share a rank (and list each other in `tied_with`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..cache import hash_file
from ..provenance import git_state
from ..validation import validate
from . import PGR_TOL

SCHEMA_VERSION = 1


def _overlap(a: list[float] | None, b: list[float] | None) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def assign_ranks(entries: list[dict]) -> list[dict]:
    """Sort by mean PGR (unranked last) and set rank / tied_with in place; returns the sorted list. Entries
    with an `unranked_reason` (not reproduced) take no rank and no part in others' ranks."""
    for e in entries:
        if e.get("unranked_reason") is None and (e["mean_pgr"] is None or e["mean_pgr_ci"] is None):
            e["unranked_reason"] = "mean PGR undefined"
    defined = [e for e in entries if e.get("unranked_reason") is None]
    undefined = [e for e in entries if e not in defined]
    defined.sort(key=lambda e: (-e["mean_pgr"], e["method"]))
    undefined.sort(key=lambda e: (-e["mean_w2s_accuracy"], e["method"]))
    for e in defined:
        lo, hi = e["mean_pgr_ci"]
        e["rank"] = 1 + sum(1 for o in defined if o is not e and o["mean_pgr_ci"][0] > hi)
        e["tied_with"] = [o["method"] for o in defined if o is not e and _overlap(e["mean_pgr_ci"], o["mean_pgr_ci"])]
    for e in undefined:
        e["rank"], e["tied_with"] = None, []
    return defined + undefined


def _reproduced(sub: dict) -> tuple[dict | None, str | None]:
    from .reproduce import reproduction_status

    why = reproduction_status(sub)
    if why:
        return None, why
    rec = sub["reproduced"]
    worst = max((abs(t["difference"]) for t in rec["tasks"].values()), default=0.0)
    return {
        "date": rec["date"],
        "commit": rec["commit"],
        "tolerance": rec["tolerance"],
        "largest_difference": worst,
    }, None


def _entry(path: Path, label: str, sub: dict, results: dict) -> dict[str, Any]:
    method = sub["method"]
    reproduced, why = _reproduced(sub)
    name = method["name"]
    summary = results["summary"][name]
    tasks = {}
    for tname, t in sorted(results["tasks"].items()):
        row = t["methods"][name]
        p = row["pgr"]
        tasks[tname] = {
            "pgr": p["pgr"],
            "pgr_ci": p["pgr_ci"],
            "defined": p["defined"],
            "undefined_reason": p["undefined_reason"],
            "weak_acc": t["weak"]["accuracy"],
            "ceiling_acc": t["ceiling"]["accuracy"],
            "w2s_acc": row["w2s"]["accuracy"],
            "w2s_auroc": row["w2s"]["auroc"],
        }
    prov = results["provenance"]
    flags = {
        (t, f["flag"]): {"task": t, **f}
        for t, entry in sorted(results["tasks"].items())
        for f in entry["methods"][name].get("flags", [])
    }
    for where, rec in (sub.get("reproduced") or {}).get("tasks", {}).items():  # what the harness's own rerun raised
        setting_name, _, t = where.partition("/")
        if setting_name == results["setting"]["name"]:
            for f in rec.get("flags", []):
                flags.setdefault((t, f["flag"]), {"task": t, **f})
    return {
        "method": name,
        "rank": None,
        "tied_with": [],
        "unranked_reason": why,
        "reproduced": reproduced,
        "flags": list(flags.values()),
        "mean_pgr": summary["mean_pgr"],
        "mean_pgr_ci": summary["mean_pgr_ci"],
        "mean_w2s_accuracy": summary["mean_w2s_accuracy"],
        "tasks_defined": summary["tasks_defined"],
        "teacher_free": method["teacher_free"],
        "non_default_recipe": method["non_default_recipe"],
        "card": {**method, "config": results["methods"][name].get("config", {})},
        "tasks": tasks,
        "provenance": {
            "submission": label,
            "sha256": hash_file(path),
            "w2sbench_version": prov["w2sbench_version"],
            "git_commit": prov["git"].get("commit"),
            "git_dirty": prov["git"].get("dirty"),
            "created": prov["created"],
            "command": prov["command"],
            "backend": results["backend"]["used"],
            "hardware": prov["hardware"],
            "seeds": results["seeds"],
        },
    }


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def build_leaderboard(
    valid: list[tuple[Path, dict]],
    baselines: dict,
    baselines_path: Path,
    skipped: list[str] | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """The leaderboard document (checked against leaderboard.schema.json before it is returned)."""
    from ..settings import load_setting

    settings: dict[str, Any] = {}
    for shash, official in sorted(baselines["settings"].items(), key=lambda kv: kv[1]["name"]):
        setting = load_setting(official["name"])
        if setting.hash != shash:
            continue  # stale baselines of an older version of the setting: nothing can be compared to them
        tasks = [
            {
                "name": t["task"],
                "task_hash": h,
                "n": t["n"],
                "weak_acc": t["weak"]["accuracy"],
                "ceiling_acc": t["ceiling"]["accuracy"],
            }
            for h, t in sorted(official["tasks"].items(), key=lambda kv: kv[1]["task"])
        ]
        entries = [
            _entry(path, _label(path, root), sub, res)
            for path, sub in valid
            for res in sub["results"]
            if res["setting"]["hash"] == shash
        ]
        settings[official["name"]] = {
            "name": official["name"],
            "version": official["version"],
            "hash": shash,
            "description": setting.description,
            "weak_model": setting.weak.model,
            "strong_model": setting.strong.model,
            "baseline_seeds": official["seeds"],
            "tasks": tasks,
            "entries": assign_ranks(entries),
        }
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
            "skipped": list(skipped or []),
        },
        "tolerance": {"accuracy": float(baselines["tolerance"]["accuracy"]), "pgr": PGR_TOL},
        "settings": settings,
    }
    validate(doc, "leaderboard", "leaderboard.json")
    return doc
