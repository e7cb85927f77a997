"""A method is identified by its code, not its name: the hash of the files that define it is part of the
method stage's cache key, the results and the leaderboard submission. Editing the code reruns the method;
a submission says exactly which code produced its numbers.

Which files: for `--method path/file.py:Class`, that file alone, or its whole folder when the file is a
folder's `__init__.py` (a method of several files); for a built-in or an installed plug-in, every file of
its top-level package (a built-in's numbers also depend on the trainer code beside it).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import W2SError

USER_MODULE_PREFIX = "w2sbench_user_method_"  # modules loaded from a file by registry._from_file


@dataclass(frozen=True)
class MethodSource:
    kind: str  # "file", "folder" or "package"
    root: Path  # the file, or the folder whose files are hashed
    files: tuple[str, ...]  # hashed files, relative to root's folder (a file: its own name)
    sha256: str

    def record(self) -> dict:
        return {"kind": self.kind, "path": str(self.root), "files": len(self.files), "sha256": self.sha256}


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def _hash(root: Path, files: list[Path]) -> tuple[tuple[str, ...], str]:
    base = root if root.is_dir() else root.parent
    digest = hashlib.sha256()
    names = []
    for path in files:
        name = path.relative_to(base).as_posix()
        names.append(name)
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return tuple(names), digest.hexdigest()


def method_source(cls: type) -> MethodSource:
    """The code that defines a method class, and its hash."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise W2SError(
            f"method {getattr(cls, 'name', cls.__name__)!r}: cannot find the code that defines it "
            f"(module {cls.__module__!r} has no file)"
        )
    path = Path(file).resolve()
    if cls.__module__.startswith(USER_MODULE_PREFIX) or cls.__module__ in ("__main__", "__mp_main__"):
        kind, root = ("folder", path.parent) if path.name == "__init__.py" else ("file", path)
    else:
        top = sys.modules.get(cls.__module__.partition(".")[0])
        top_file = Path(getattr(top, "__file__", None) or path).resolve()
        kind, root = ("package", top_file.parent) if top_file.name == "__init__.py" else ("file", top_file)
    files = _files(root) if root.is_dir() else [root]
    names, sha = _hash(root, files)
    return MethodSource(kind, root, names, sha)
