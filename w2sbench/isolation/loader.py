"""Loading a method's code, which runs it: only ever inside a sandboxed process (the probe, the sealed method
process), never in a harness process.

Importing a module runs its top-level code, and a harness process holds the labels, the cache and the scorer:
a method file imported there once read the test labels through the task API and replaced the flag function
before any sandbox existed. So the harness names a method that is not built in by its *origin*, plain data
that says where its code is, and only the processes started by isolation.probe and isolation.sealed, inside
the sandbox, pass that origin to import_class().

    {"kind": "file",    "path": "/abs/method.py"}                 one file
    {"kind": "folder",  "path": "/abs/folder"}                    a folder whose __init__.py defines it
    {"kind": "package", "path": "/abs/site-packages/pkg", "module": "pkg.methods"}   an installed plug-in
    {"kind": "builtin", "module": "w2sbench.methods.builtin"}     one of w2sbench's own (methods.registry)

describe_class() is what such a process sends back about the class it loaded: checked plain data
(isolation.described.check_description) from which the harness builds a stand-in, never the class.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..methods.base import LossMethod, Method
from ..methods.identity import USER_MODULE_PREFIX

KINDS = ("file", "folder", "package", "builtin")
CARD_FIELDS = ("authors", "code", "paper", "license", "contact", "recipe_notes", "non_default_recipe")


class LoadFailed(W2SError):
    """The code does not define one usable Method subclass (said in one line)."""


def module_name(origin: dict) -> str:
    """The name a file or folder method is imported under: the same in every process for the same path."""
    digest = hashlib.sha256(str(origin["path"]).encode()).hexdigest()[:16]
    return f"{USER_MODULE_PREFIX}{origin['kind']}_{digest}"


def import_module(origin: dict) -> Any:
    """Import the module an origin names (runs its code: call this inside the sandbox only)."""
    kind = origin["kind"]
    if kind in ("package", "builtin"):
        return importlib.import_module(origin["module"])
    path = Path(origin["path"])
    name = module_name(origin)
    if name in sys.modules:
        return sys.modules[name]
    if kind == "folder":  # a package of its own: its other files import relatively
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadFailed(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def import_class(origin: dict, class_name: str | None) -> type[Method]:
    """The Method subclass `class_name` of the origin's module, or its only one when no name is given."""
    module = import_module(origin)
    if class_name:
        obj: Any = module
        for part in class_name.split("."):
            obj = getattr(obj, part, None)
        if not (isinstance(obj, type) and issubclass(obj, Method)):
            raise LoadFailed(f"the code defines no Method subclass named {class_name!r}")
        return obj
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(sorted(c.__qualname__ for c in found)) or "none"
        raise LoadFailed(f"the code must define exactly one Method subclass, or name it (found: {names})")
    return found[0]


def describe_class(cls: type[Method]) -> dict:
    """What the harness may know of a loaded class, as plain data (checked there by check_description)."""
    if not issubclass(cls, LossMethod) and cls.run is Method.run:
        raise LoadFailed(f"{cls.__qualname__} implements no run(ctx) (or subclass LossMethod)")
    params = []
    for h in cls.hyperparameters.values():
        choices = h.choices
        params.append(
            {
                "name": h.name,
                "type": "literal" if choices is not None else h.type.__name__,
                "default": h.default,
                **({"choices": list(choices)} if choices is not None else {}),
            }
        )
    card: dict[str, Any] = {}
    for key in CARD_FIELDS:
        value = getattr(cls, key, None)
        if key == "authors" and isinstance(value, (list, tuple)):
            value = [str(a) for a in value]
        card[key] = value
    return {
        "class": cls.__qualname__,
        "name": cls.name,
        "version": cls.version,
        "description": str(cls.description)[:500],
        "uses_weak_labels": bool(cls.uses_weak_labels),
        "kind": "loss" if issubclass(cls, LossMethod) else "run",
        "hyperparameters": params,
        "card": card,
    }
