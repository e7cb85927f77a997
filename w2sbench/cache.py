"""Content-addressed artifact store: the key hashes everything that determines an output, so an
interrupted run resumes and a second method reuses the shared stages by running the same command again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import paths


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


@dataclass
class ArtifactStore:
    """Artifacts under <root>/<stage>/<key>/ with arrays as .npy and a meta.json written last.

    A folder is complete only once it has been moved into place (os.replace of a finished temporary
    folder), so a run killed mid-write leaves no half artifact behind."""

    root: Path = field(default_factory=lambda: paths.cache_dir() / "artifacts")
    hits: Counter = field(default_factory=Counter)
    misses: Counter = field(default_factory=Counter)

    def folder(self, stage: str, key: dict) -> Path:
        return self.root / stage / hash_of(key, 32)

    def load(self, stage: str, key: dict) -> dict[str, Any] | None:
        folder = self.folder(stage, key)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        out: dict[str, Any] = {"meta": meta.get("meta", {})}
        for name in meta["arrays"]:
            out[name] = np.load(folder / f"{name}.npy", allow_pickle=False)
        return out

    def save(self, stage: str, key: dict, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
        folder = self.folder(stage, key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.asarray(arr), allow_pickle=False)
            (tmp / "meta.json").write_text(
                json.dumps({"stage": stage, "key": json.loads(canonical_json(key)), "arrays": sorted(arrays), "meta": meta or {}}, indent=1)
            )
            if folder.exists():  # a concurrent writer finished first: same key, same content
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def get_or_compute(
        self, stage: str, key: dict, compute: Callable[[], tuple[dict[str, np.ndarray], dict]]
    ) -> dict[str, Any]:
        """Return the cached artifact for key, or compute, save and return it; counts hits per stage."""
        found = self.load(stage, key)
        if found is not None:
            self.hits[stage] += 1
            return found
        self.misses[stage] += 1
        arrays, meta = compute()
        self.save(stage, key, arrays, meta)
        return {"meta": meta, **arrays}
