"""Naming methods: the built-ins in a lazy `name -> module:Class` table, classes registered in this process,
and installed plug-ins in the `w2sbench.methods` entry-point group (listed by name, never loaded here).

The table names the built-ins without importing them, so the registry never imports the methods it lists
(and builtin.py never imports the registry): a built-in's module is imported when it is asked for. Only
built-ins are imported by the harness; any other method (a file, a folder, a plug-in) is imported only inside
the sandbox and known to the harness by its checked description (isolation.resolve, isolation.probe).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import UnknownNameError, W2SError
from .base import Method

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


def load_builtin(name: str) -> type[Method]:
    """The built-in method class `name` (w2sbench's own code: imported here)."""
    module, _, attr = BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if getattr(cls, "name", None) != name:  # the table and the class disagree: a harness bug, said plainly
        raise W2SError(f"built-in method {name!r}: {BUILTIN[name]} is named {getattr(cls, 'name', None)!r}")
    return cls


def entry_points_found() -> dict[str, str]:
    """Installed plug-ins: name -> 'module:attr' (read from their metadata; nothing is imported)."""
    return {ep.name: ep.value for ep in entry_points(group="w2sbench.methods")}


def list_methods() -> dict[str, str]:
    """name -> where it comes from ('built-in', 'registered' or 'entry point <module:attr>')."""
    found = {name: "built-in" for name in BUILTIN}
    for name in _REGISTERED:
        found.setdefault(name, "registered")
    for name, value in entry_points_found().items():
        found.setdefault(name, f"entry point {value}")
    return found


def load_method(spec: str) -> type[Method]:
    """A built-in or registered method class by name. A file (`path.py:Class`) or an installed plug-in is not
    imported here: isolation.resolve.load_method describes it through the sandbox."""
    if spec in BUILTIN:
        return load_builtin(spec)
    if spec in _REGISTERED:
        return _REGISTERED[spec]
    if ".py:" in spec or spec in entry_points_found():
        raise W2SError(
            f"method {spec!r} is not built in: its code is only imported inside the sandbox "
            "(w2sbench.load_method or evaluate() describe it there)"
        )
    raise UnknownNameError("method", spec, list_methods())


MethodLike = str | type[Method] | Method
