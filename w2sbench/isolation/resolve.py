"""From what a caller names to the method classes a run uses, without running any method's code here.

Every caller goes through this one path: the CLI, evaluate(), sweeps, the leaderboard's submission,
reproduction and outdated checks, the scoring service and Ray. A built-in (methods.registry.BUILTIN) is
w2sbench's own code and is imported. Anything else, a file (`path/file.py:Class`), a folder's `__init__.py`, an
installed plug-in (entry point), or a class object the caller already holds, is described by the sandboxed
probe (isolation.probe) and stood in for by a class built from that description (isolation.described):
the harness names, hashes, configures and schedules the stand-in, and only the sealed method process loads
the real code. With `sealed=False` (--unsealed) the probe runs in a plain child process: still never here.

A class object passed by a caller (a notebook, a test) was imported by the caller, who chose to run it; the
harness still uses its stand-in, so its hyperparameters and name come from the same checked description as
anyone's, and the run behaves the same as when the method is named by its file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError, W2SError
from ..methods.base import Method
from ..methods.identity import check_code, origin_of, source_of
from ..methods.params import expand as expand_values
from ..methods.params import split_spec, split_top_level
from ..methods.registry import _REGISTERED, BUILTIN, MethodLike, entry_points_found, list_methods, load_builtin
from .described import described, stand_in
from .probe import ProbeFailed, probe


def describe(origin: dict, class_name: str | None, sealed: bool = True, **limits: Any) -> type[Method]:
    """The stand-in for the class at `origin` (its only Method subclass when `class_name` is None). `limits`:
    the probe's (timeout_s, quotas, console: see isolation.probe.probe)."""
    check_code(origin)
    try:
        description = probe(origin, class_name, source_of(origin).sha256, sealed=sealed, **limits)
    except ProbeFailed as e:  # the probe's line, named by the code it was about
        raise ProbeFailed(f"{origin.get('module') or origin['path']}: {e}", e.limit) from None
    return stand_in(description, origin)


def file_origin(path_text: str, where: str = "") -> dict:
    """The origin of `path/file.py` (a folder's `__init__.py` names the folder)."""
    path = Path(path_text)
    if not path.is_file():
        raise W2SError(f"method file {path} does not exist{f' (from {where})' if where else ''}")
    path = path.absolute()
    if path.name == "__init__.py":
        return {"kind": "folder", "path": str(path.parent)}
    return {"kind": "file", "path": str(path)}


def package_origin(value: str) -> tuple[dict, str]:
    """(origin, class name) of an entry point's 'module:Attr', found on the import path without importing."""
    import importlib.util

    module, _, attr = value.partition(":")
    top = module.partition(".")[0]
    spec = importlib.util.find_spec(top)  # a top-level name: found, not imported
    if spec is None:
        raise W2SError(f"plug-in {value!r}: package {top!r} is not installed")
    if spec.submodule_search_locations:
        path = str(Path(next(iter(spec.submodule_search_locations))).absolute())
        return {"kind": "package", "path": path, "module": module}, attr
    return {"kind": "file", "path": str(Path(spec.origin).absolute())}, attr


def load_method(spec: str, sealed: bool = True) -> type[Method]:
    """The class a name stands for: a built-in, or the stand-in of a file's, a plug-in's or a registered one's."""
    if ".py:" in spec:
        path_text, _, attr = spec.rpartition(":")
        return describe(file_origin(path_text, f"--method {spec}"), attr or None, sealed)
    if spec in BUILTIN:
        return load_builtin(spec)
    if spec in _REGISTERED:
        return described_class(_REGISTERED[spec], sealed)
    found = entry_points_found()
    if spec in found:
        origin, attr = package_origin(found[spec])
        return describe(origin, attr, sealed)
    raise UnknownNameError("method", spec, list_methods())


def described_class(cls: type, sealed: bool = True) -> type[Method]:
    """A built-in or a stand-in as it is; any other class's stand-in, described from its code's file."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise W2SError(f"method {cls!r} is not a subclass of w2sbench.methods.Method")
    origin = origin_of(cls)
    if origin["kind"] == "builtin" or described(cls) is not None:
        return cls
    return describe(origin, cls.__qualname__, sealed)


def resolve_methods(methods: MethodLike | Sequence[MethodLike], sealed: bool = True) -> list[Method]:
    """Configured method instances from names (`'vanilla,logconf[aux_coef=0.1|0.25]'`, a sweep giving one
    per value), classes (their defaults) or instances (their hyperparameters), in the order given; every one
    a built-in or a stand-in. Two that would share a name in results are refused."""
    items = split_top_level(methods) if isinstance(methods, str) else list(methods)
    if isinstance(methods, (type, Method)):
        items = [methods]
    out: list[Method] = []
    for item in items:
        if isinstance(item, str):
            for part in split_top_level(item):
                base, values = split_spec(part)
                cls = load_method(base, sealed)
                out += [cls(**overrides) for overrides in expand_values(cls, values, cls.name)]
        elif isinstance(item, type) and issubclass(item, Method):
            out.append(described_class(item, sealed)())
        elif isinstance(item, Method):
            cls = described_class(type(item), sealed)
            out.append(item if cls is type(item) else cls(**item.hyperparameter_values()))
        else:
            raise W2SError(f"method {item!r}: give a name, a Method subclass or a Method instance")
    if not out:
        raise W2SError("give at least one method")
    seen: dict[str, Method] = {}
    for m in out:
        if m.run_name in seen:
            raise W2SError(f"method {m.run_name!r} is given twice (same method, same hyperparameters)")
        seen[m.run_name] = m
    return out
