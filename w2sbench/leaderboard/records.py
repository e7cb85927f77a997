"""Records of reproduction: what the harness's own rerun of a submission produced, kept apart from the
submission, where its submitter cannot write.

A submission (leaderboard/submissions/NAME.json) is a claim: its numbers, its per-example correctness
vectors, its flags. Anyone can compute a submission's digest, so a record inside the submission proved
nothing (a file with invented vectors and a self-made record validated and ranked first). The record of
reproducing a submission lives in its own file, `leaderboard/records/<submission stem>.json`
(schema: w2sbench/schemas/record.schema.json), written only by `w2sbench leaderboard reproduce`. It holds
what the leaderboard computes every figure from: per setting and task the REPRODUCED run's per-seed
correctness vectors (scoring.encode_correct), its per-seed AUC and its flags, beside the submitted accuracy
it was compared with. `leaderboard build` ranks an entry only where a record is ok and names the
submission's current digest, method and code; it never reads a number from the submission itself.

Where records are trusted: the published site's `records/` (written by the main branch's reproduce job,
which runs with read-only permissions and no secrets) and whatever this machine's `reproduce` wrote. A pull
request that changes leaderboard/records/ is refused (`w2sbench leaderboard changed`), and the deploy job
ignores the repository's copy (see .github/workflows/leaderboard.yml and docs/leaderboard.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..cache import hash_of
from ..errors import ConfigError, W2SError
from ..schema_io import read_json, validate, write_json
from ..scoring import decode_correct

SCHEMA_VERSION = 1
RECORDS_DIR = "records"  # beside submissions/ in the leaderboard folder


def submission_digest(doc: dict) -> str:
    """What a record vouches for: the whole submission, as canonical JSON."""
    return hash_of(doc)


def record_path(records_dir: Path, submission: Path) -> Path:
    """records_dir/<submission stem>.json: one record per submission file."""
    return Path(records_dir) / f"{Path(submission).stem}.json"


def read_record(path: Path) -> dict:
    """A record, schema-checked (ConfigError naming the file and the field otherwise)."""
    doc = read_json(path)
    validate(doc, "record", str(path))
    return doc


def find_record(records_dir: Path | None, submission: Path) -> tuple[dict | None, str | None]:
    """(record, None), or (None, why there is none that can be read) for a submission file."""
    if records_dir is None:
        return None, "not reproduced yet (w2sbench leaderboard reproduce)"
    path = record_path(records_dir, submission)
    if not path.is_file():
        return None, "not reproduced yet (w2sbench leaderboard reproduce)"
    try:
        return read_record(path), None
    except W2SError as e:
        return None, f"its record of reproduction is unreadable ({e})"


def status(sub: dict, record: dict | None) -> str | None:
    """None when `record` is a successful reproduction of exactly this submission (its digest, its method,
    its code); else why the submission does not count."""
    if record is None:
        return "not reproduced yet (w2sbench leaderboard reproduce)"
    if record["submission"]["sha256"] != submission_digest(sub):
        return "the submission changed after it was reproduced (or its record is of another file)"
    method = sub["method"]
    if record["method"] != method["name"] or record["code_sha256"] != method["source"]["sha256"]:
        return "its record of reproduction names another method or other code"
    if not record["ok"]:
        return "did not reproduce: " + "; ".join(record["failures"] or ["(no detail)"])
    return None


def needs_reproduction(sub: dict, record: dict | None, harness_sha256: str) -> str | None:
    """Why `reproduce --missing` should (re)run a submission: no record of this digest under this harness;
    None when one exists, ok or not (a failed reproduction fails again under the same code and harness)."""
    if record is None:
        return "not reproduced yet"
    if record["submission"]["sha256"] != submission_digest(sub):
        return "the submission changed after it was reproduced"
    if record["harness_sha256"] != harness_sha256:
        return "the harness (trainer, inference code or their libraries) changed since it was reproduced"
    return None


def setting_vectors(
    record: dict, setting: str, setting_hash: str, tasks: list[dict], where: str
) -> tuple[dict[str, np.ndarray], dict[str, list], dict[str, Any]]:
    """The reproduced run of one setting as the build reads it: per official task its correctness [seeds, n]
    and its per-seed AUC, plus the setting's block. `tasks`: the official tasks (name, task_hash, n).
    A record that lacks the setting or a task, or holds other task versions or sizes, is a ConfigError."""
    block = record["settings"].get(setting)
    if block is None:
        raise ConfigError(where, f"settings.{setting}", "the record holds no reproduction on this setting")
    if block["hash"] != setting_hash:
        raise ConfigError(where, f"settings.{setting}.hash", f"reproduced under another version of {setting!r}")
    correct: dict[str, np.ndarray] = {}
    aucs: dict[str, list] = {}
    for t in tasks:
        row = block["tasks"].get(t["name"])
        field = f"settings.{setting}.tasks.{t['name']}"
        if row is None:
            raise ConfigError(where, field, "the record holds no reproduction of this official task")
        n = t["n"]["test"]
        if row["task_hash"] != t["task_hash"] or row["n_test"] != n:
            raise ConfigError(where, field, "reproduced on another version or size of the task")
        try:
            bits = decode_correct(row["correct"], n)
        except ValueError as e:
            raise ConfigError(where, f"{field}.correct", f"is not {n} packed bits per seed: {e}") from None
        if len(row["auroc_per_seed"]) != bits.shape[0] or bits.shape[0] != block["seeds"]["method"]:
            raise ConfigError(where, field, "its seeds, vectors and AUCs do not agree in number")
        correct[t["name"]], aucs[t["name"]] = bits, row["auroc_per_seed"]
    return correct, aucs, block


def write_record(record: dict, records_dir: Path, submission: Path) -> Path:
    """Schema-check and write atomically; `since` is carried over from the record it replaces when that one
    was an ok reproduction of the same submission digest (its first reproduction orders copies)."""
    path = record_path(records_dir, submission)
    if path.is_file():
        try:
            old = read_record(path)
        except W2SError:
            old = None
        if old and old["ok"] and old["submission"]["sha256"] == record["submission"]["sha256"]:
            record = {**record, "since": min(old["since"], record["since"])}
    validate(record, "record", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(record, path)
