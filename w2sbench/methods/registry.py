"""Finding methods by name: the built-ins from a lazy `name -> module:Class` table, classes registered in
this process, installed packages through the `w2sbench.methods` entry-point group, and local files as
`path/to/file.py:ClassName`; each optionally configured, `logconf[aux_coef=0.25]` (see params.py).

The table names the built-ins without importing them, so the registry never imports the methods it lists
(and builtin.py never imports the registry): a method module is imported when its method is asked for."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import ConfigError, UnknownNameError, W2SError
from .base import Method
from .params import expand as expand_values
from .params import split_spec, split_top_level

BUILTIN = {
    "vanilla": "w2sbench.methods.builtin:Vanilla",
    "vanilla_hard": "w2sbench.methods.builtin:VanillaHard",
    "logconf": "w2sbench.methods.builtin:LogConf",
    "product": "w2sbench.methods.builtin:Product",
    "window": "w2sbench.methods.builtin:Window",
    "entropy": "w2sbench.methods.builtin:Entropy",
    "confident_only": "w2sbench.methods.builtin:ConfidentOnly",
    "bootstrap": "w2sbench.methods.builtin:Bootstrap",
    "strong_zeroshot": "w2sbench.methods.builtin:StrongZeroShot",
    "majority": "w2sbench.methods.builtin:Majority",
    "icm": "w2sbench.methods.builtin:ICM",
}
_REGISTERED: dict[str, type[Method]] = {}  # added in this process with register_method (a notebook, a test)


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method of this process loadable by its `name` (a built-in is in BUILTIN)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty `name`")
    if cls.name in BUILTIN:
        raise ValueError(f"method name {cls.name!r} is a built-in's")
    if cls.name in _REGISTERED and _REGISTERED[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is registered twice")
    _REGISTERED[cls.name] = cls
    return cls


def _builtin(name: str) -> type[Method]:
    module, _, attr = BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if getattr(cls, "name", None) != name:  # the table and the class disagree: a harness bug, said plainly
        raise W2SError(f"built-in method {name!r}: {BUILTIN[name]} is named {getattr(cls, 'name', None)!r}")
    return cls


def _entry_point_methods() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="w2sbench.methods")}


def list_methods() -> dict[str, str]:
    """name -> where it comes from ('built-in', 'registered' or 'entry point <module:attr>')."""
    found = {name: "built-in" for name in BUILTIN}
    for name in _REGISTERED:
        found.setdefault(name, "registered")
    for name, ep in _entry_point_methods().items():
        found.setdefault(name, f"entry point {ep.value}")
    return found


def _from_file(spec: str) -> type[Method]:
    path_text, _, attr = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise W2SError(f"method file {path} does not exist (from --method {spec})")
    module_name = f"w2sbench_user_method_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:  # the user's file failed to import: say where, not a traceback
        raise W2SError(f"{path}: importing the method file failed: {type(e).__name__}: {e}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(str(path), attr, "no such class in the method file")
    return cls


def load_method(spec: str) -> type[Method]:
    """A method class from a name (built-in, registered, entry point) or `file.py:ClassName`."""
    if ".py:" in spec:
        cls = _from_file(spec)
    elif spec in BUILTIN:
        cls = _builtin(spec)
    elif spec in _REGISTERED:
        cls = _REGISTERED[spec]
    elif spec in _entry_point_methods():
        cls = _entry_point_methods()[spec].load()
    else:
        raise UnknownNameError("method", spec, list_methods())
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise W2SError(f"method {spec!r} is not a subclass of w2sbench.methods.Method")
    if not cls.name:
        raise W2SError(f"method {spec!r} ({cls.__name__}) needs a non-empty `name`")
    return cls


MethodLike = str | type[Method] | Method


def resolve_methods(methods: MethodLike | Sequence[MethodLike]) -> list[Method]:
    """Configured method instances from names (`'vanilla,logconf[aux_coef=0.1|0.25]'`, a sweep giving one
    per value), classes (their defaults) or instances (as they are), in the order given. Two that would
    share a name in results are refused."""
    items = split_top_level(methods) if isinstance(methods, str) else list(methods)
    if isinstance(methods, (type, Method)):
        items = [methods]
    out: list[Method] = []
    for item in items:
        if isinstance(item, str):
            out += [m for part in split_top_level(item) for m in _from_spec(part)]
        elif isinstance(item, type) and issubclass(item, Method):
            out.append(item())
        elif isinstance(item, Method):
            out.append(item)
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


def _from_spec(spec: str) -> list[Method]:
    base, values = split_spec(spec)
    cls = load_method(base)
    return [cls(**overrides) for overrides in expand_values(cls, values, cls.name)]
