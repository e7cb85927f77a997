"""Content-addressed artifact store: the key hashes everything that determines an output, so an
interrupted run resumes and a second method reuses the shared stages by running the same command again.

Each artifact also records a hash of its own contents (arrays and meta), checked on every read: an
artifact edited, truncated or swapped after it was written is never served; it is recomputed, and the run
says so."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import paths

log = logging.getLogger("w2sbench")


def canonical_json(obj: Any) -> str:
    """A stable text form of a config: sorted keys, no whitespace, numpy scalars as numbers."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.integer, np.floating)):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON-serialisable in a cache key: {type(o).__name__}")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def hash_of(obj: Any, length: int = 64) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def hash_texts(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_array(arr: np.ndarray) -> str:
    """Content hash of an array (dtype, shape and bytes)."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def content_hash(arrays: dict[str, np.ndarray], meta: dict) -> str:
    """What an artifact holds: each array's hash under its name, and the meta."""
    return hash_of({"arrays": {name: hash_array(np.asarray(a)) for name, a in sorted(arrays.items())}, "meta": meta})


@dataclass
class ArtifactStore:
    """Artifacts under <root>/<stage>/<key>/ with arrays as .npy and a meta.json written last.

    A folder is complete only once it has been moved into place (os.replace of a finished temporary
    folder), so a run killed mid-write leaves no half artifact behind."""

    root: Path = field(default_factory=lambda: paths.cache_dir() / "artifacts")
    hits: Counter = field(default_factory=Counter)
    misses: Counter = field(default_factory=Counter)
    corrupt: Counter = field(default_factory=Counter)  # artifacts that failed their content check, per stage
    recompute: frozenset = frozenset()  # stages always computed afresh and not stored (reproducing a submission)

    def folder(self, stage: str, key: dict) -> Path:
        return self.root / stage / hash_of(key, 32)

    def load(self, stage: str, key: dict) -> dict[str, Any] | None:
        """The artifact, or None when there is none or it fails its content check (then it is set aside)."""
        folder = self.folder(stage, key)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            return None
        try:
            record = json.loads(meta_path.read_text())
            meta = record.get("meta", {})
            arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in record["arrays"]}
            if "content_sha256" not in record:  # written before artifacts carried a hash: nothing to verify
                problem = "it has no content hash (written by an older w2sbench)"
            elif record["content_sha256"] != content_hash(arrays, meta):
                problem = "its content hash does not match"
            else:
                problem = None
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            problem = f"it cannot be read ({type(e).__name__}: {e})"
        if problem:
            self.corrupt[stage] += 1
            log.warning(f"cached {stage} artifact {folder.name} cannot be trusted ({problem}): recomputing it")
            self._discard(folder)
            return None
        return {"meta": meta, **arrays}

    def _discard(self, folder: Path) -> None:
        """Move a bad artifact out of the way (atomically, so readers never see half of it), then delete it."""
        aside = folder.with_name(f".bad-{folder.name}-{os.getpid()}")
        try:
            os.replace(folder, aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)

    def save(self, stage: str, key: dict, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
        folder = self.folder(stage, key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        arrays = {name: np.asarray(arr) for name, arr in arrays.items()}
        try:
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            record = {
                "stage": stage,
                "key": json.loads(canonical_json(key)),
                "arrays": sorted(arrays),
                "meta": meta or {},
            }
            record["content_sha256"] = content_hash(arrays, json.loads(canonical_json(meta or {})))
            (tmp / "meta.json").write_text(json.dumps(record, indent=1))
            if folder.exists():  # a concurrent writer finished first: same key, same content
                shutil.rmtree(tmp)
            else:
                try:
                    os.replace(tmp, folder)
                except OSError:
                    # Another writer (a retried unit on another node, say) moved its copy in between the check
                    # and the rename: the rename of a folder onto a full one fails, and theirs is whole.
                    if not (folder / "meta.json").exists():
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def get_or_compute(
        self, stage: str, key: dict, compute: Callable[[], tuple[dict[str, np.ndarray], dict]]
    ) -> dict[str, Any]:
        """Return the cached artifact for key, or compute, save and return it; counts hits per stage."""
        if stage in self.recompute:
            self.misses[stage] += 1
            arrays, meta = compute()
            return {"meta": meta, **arrays}
        found = self.load(stage, key)
        if found is not None:
            self.hits[stage] += 1
            return found
        self.misses[stage] += 1
        arrays, meta = compute()
        self.save(stage, key, arrays, meta)
        return {"meta": meta, **arrays}
