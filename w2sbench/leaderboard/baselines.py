"""The official baselines: weak and ceiling accuracy per (setting hash, task hash), taken from the
reference run's results JSON. Every submission is compared against these numbers, never its own, so
a method cannot gain by a luckier weak model or a weaker ceiling (DESIGN: one standard).

Besides the accuracies, each task records which test examples each weak and ceiling seed got right
(`correct`, packed as in the results JSON) and whether the task is a development or a held-out task: the
leaderboard's build computes every entry's intervals and the paired differences between entries from these
and the entries' own vectors, with one shared resampling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..schema_io import read_json, write_json
from ..tasks.sources import SPLIT_NAMES
from . import ACCURACY_TOL

SCHEMA_VERSION = 2  # 2: per-example correctness of weak and ceiling, the task's split


def official_sizes(task_name: str) -> dict[str, int] | None:
    """The split sizes in the task's registered YAML (None for a task the registry does not know)."""
    from ..errors import UnknownNameError
    from ..tasks import load_task

    try:
        splits = load_task(task_name).config["splits"]
    except UnknownNameError:
        return None
    return {k: int(splits[k]) for k in SPLIT_NAMES}


def entries_from_results(doc: dict, path: str, allow_nonstandard_sizes: bool = False) -> dict[str, Any]:
    """{setting_hash: {...}} for one results JSON; refuses runs at non-official split sizes (--limit)."""
    setting = doc["setting"]
    tasks: dict[str, Any] = {}
    for name, entry in doc["tasks"].items():
        sizes = official_sizes(name)
        if not allow_nonstandard_sizes and sizes is not None and entry["n"] != sizes:
            raise ConfigError(
                path,
                f"tasks.{name}.n",
                f"split sizes {entry['n']} are not the task's official {sizes} "
                "(a --limit run cannot define official baselines)",
            )
        tasks[entry["task_hash"]] = {
            "task": name,
            "n": entry["n"],
            "split": entry["split"],
            "weak": {k: entry["weak"][k] for k in ("accuracy", "accuracy_per_seed", "seeds", "correct")},
            "ceiling": {k: entry["ceiling"][k] for k in ("accuracy", "accuracy_per_seed", "seeds", "correct")},
        }
    prov = doc["provenance"]
    return {
        setting["hash"]: {
            "name": setting["name"],
            "version": setting["version"],
            "seeds": doc["seeds"]["baseline"],
            "bootstrap": {k: doc["bootstrap"][k] for k in ("n_boot", "seed", "confidence")},
            "source": {
                "git_commit": prov["git"].get("commit"),
                "created": prov["created"],
                "command": prov["command"],
                "w2sbench_version": prov["w2sbench_version"],
            },
            "tasks": tasks,
        }
    }


def empty() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tolerance": {"accuracy": ACCURACY_TOL}, "settings": {}}


def update(
    baselines: dict[str, Any], results: list[tuple[str, dict]], allow_nonstandard_sizes: bool = False
) -> dict[str, Any]:
    """Replace the entries of each results JSON's setting hash (a rerun of the reference replaces it whole)."""
    out = json.loads(json.dumps(baselines))
    for path, doc in results:
        out["settings"].update(entries_from_results(doc, path, allow_nonstandard_sizes))
    return out


def load(path: Path) -> dict[str, Any]:
    """Read baselines.json; its absence is a clear error that says how to make it."""
    if not path.is_file():
        raise ConfigError(
            str(path),
            "",
            "no official baselines file; make it with "
            "`w2sbench leaderboard baselines RESULTS.json` from the reference run",
        )
    doc = read_json(path)
    if (
        not isinstance(doc, dict)
        or doc.get("schema_version") != SCHEMA_VERSION
        or not isinstance(doc.get("settings"), dict)
    ):
        raise ConfigError(
            str(path),
            "schema_version",
            f"expected a baselines file of schema_version {SCHEMA_VERSION} with 'settings' "
            "(regenerate it from the reference run: bash leaderboard/make_seed.sh)",
        )
    doc.setdefault("tolerance", {"accuracy": ACCURACY_TOL})
    return doc


def save(doc: dict[str, Any], path: Path) -> Path:
    return write_json(doc, path, sort_keys=True)
