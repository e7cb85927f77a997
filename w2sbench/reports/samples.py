"""Per-example logs: for each task and method, one JSON line per test example with its id, text, label and
p(label=1) of the weak model, the ceiling and the method, per seed, for analysis after scoring.

They go beside the results JSON, `<results stem>.samples/<task>/<method>.jsonl`; the folder is built aside
and moved into place (a rerun replaces it whole), and the results JSON lists each file with its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..engine.record import RunRecord, TaskRun


def rows(tr: TaskRun, method: str) -> Iterator[dict[str, Any]]:
    """The test split of one task with every model's p(label=1) per seed: weak and ceiling over the
    baseline seeds, the method over its own (method seed s learned from weak seed weak_seed_of[s])."""
    mr = tr.methods[method]
    for i, example in enumerate(tr.splits.test):
        yield {
            "index": i,
            "id": example.uid,
            "text": example.text,
            "label": int(example.label),
            "weak_p": [float(p) for p in tr.weak_test[:, i]],
            "w2s_p": [float(p) for p in mr.test_probs[:, i]],
            "ceiling_p": [float(p) for p in tr.ceiling_test[:, i]],
        }


def file_name(name: str) -> str:
    """A task's or method's name as a file name (a configured method keeps its brackets)."""
    return re.sub(r"[^\w.=,\[\]+-]", "_", name) or "_"


def samples_dir(results_path: Path) -> Path:
    return results_path.with_name(results_path.stem + ".samples")


def write_samples(record: RunRecord, results_path: Path) -> dict[str, Any]:
    """Write every task x method's rows beside `results_path`; returns the results JSON's `samples` entry
    (paths relative to the results JSON's folder)."""
    results_path = Path(results_path)
    final = samples_dir(results_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    files = []
    try:
        for tr in record.tasks:
            for method in tr.methods:
                rel = Path(file_name(tr.task.name)) / f"{file_name(method)}.jsonl"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                digest, n = hashlib.sha256(), 0
                with open(tmp / rel, "wb") as f:
                    for row in rows(tr, method):
                        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
                        f.write(line)
                        digest.update(line)
                        n += 1
                files.append(
                    {
                        "task": tr.task.name,
                        "method": method,
                        "path": (Path(final.name) / rel).as_posix(),
                        "rows": n,
                        "sha256": digest.hexdigest(),
                    }
                )
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "dir": final.name,
        "columns": ["index", "id", "text", "label", "weak_p", "w2s_p", "ceiling_p"],
        "files": files,
    }


def _replace_dir(new: Path, final: Path) -> None:
    """Move a finished folder into place; an older one at `final` is moved aside first, then removed."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
