"""A method known by its checked description, never by importing its code.

Importing a module runs its top-level code. The scoring service (w2sbench.serve) holds the labels, so it
imports an agent's code only inside the method sandbox (serve/probe.py), which sends back a description:
class name, name, version, description, uses_weak_labels, hyperparameters with types and defaults.
`check_description` reads that reply field by field; `stand_in` turns it into a Method subclass that
carries the name, the hyperparameters and the code's folder, so that the pipeline hashes the files, names
the method and checks hyperparameters exactly as for an imported class, while only the sealed method
process ever loads the real one (checking the hash).

A unit that travels to another process (a Ray worker) names its method by `unit_spec`: for a stand-in, the
description itself (`described:{json}`), which `load_unit_spec` turns back into the same stand-in there;
for any other class, `sealed.method_spec`, which that process imports. So a worker never imports an
agent's code either.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..methods.base import Method
from ..methods.identity import USER_MODULE_PREFIX
from . import sealed

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
FIELDS = {"class", "name", "version", "description", "uses_weak_labels", "hyperparameters"}
SPEC_PREFIX = "described:"


class DescriptionRejected(W2SError):
    """A method's description is malformed, or declares hyperparameters no method can have."""


def check_description(doc: Any) -> dict:
    """A probe's reply, field by field: anything unexpected is one line, never an object."""
    if not isinstance(doc, dict):
        raise DescriptionRejected("the method's description is not a JSON object")
    if "error" in doc:
        if not isinstance(doc["error"], str):
            raise DescriptionRejected("the method could not be described")
        raise DescriptionRejected(doc["error"][:400])
    if set(doc) != FIELDS:
        raise DescriptionRejected(f"the method's description has fields {sorted(doc)}, expected {sorted(FIELDS)}")
    if not isinstance(doc["class"], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", doc["class"]):
        raise DescriptionRejected("the method class must be a top-level class with a plain name")
    if not isinstance(doc["name"], str) or not NAME.fullmatch(doc["name"]):
        raise DescriptionRejected(f"the method's name {doc['name']!r} must match {NAME.pattern}")
    if type(doc["version"]) is not int or not isinstance(doc["description"], str):
        raise DescriptionRejected("the method's version must be an int and its description a string")
    if type(doc["uses_weak_labels"]) is not bool or not isinstance(doc["hyperparameters"], list):
        raise DescriptionRejected("the method's uses_weak_labels must be a bool and its hyperparameters a list")
    if len(doc["hyperparameters"]) > 32:
        raise DescriptionRejected("a method may declare at most 32 hyperparameters")
    for h in doc["hyperparameters"]:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not NAME.fullmatch(h["name"]):
            raise DescriptionRejected("a hyperparameter needs a plain lower-case name")
        kind = h.get("type")
        values = h.get("choices") if kind == "literal" else [h.get("default")]
        if kind not in (*SCALARS, "literal") or not isinstance(values, list) or not 0 < len(values) <= 64:
            raise DescriptionRejected(f"hyperparameter {h['name']}: unsupported type {kind!r}")
        for v in values + [h.get("default")]:
            if type(v) not in SCALARS.values() or (isinstance(v, str) and len(v) > 200):
                raise DescriptionRejected(
                    f"hyperparameter {h['name']}: a value must be a bool, int, float or a short str"
                )
    return doc


def stand_in(description: dict, folder: Path) -> type[Method]:
    """A Method subclass that names the described class and its code without importing it. The pipeline
    hashes `folder`, builds the method's name and config from the declared hyperparameters, and the
    sealed process loads the real class from `folder/__init__.py` (checking the hash)."""
    folder = Path(folder)
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]  # the same module name in every process
    module_name = f"{USER_MODULE_PREFIX}described_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        module = types.ModuleType(module_name)
        module.__file__ = str(folder / "__init__.py")  # what method_source() and method_spec() read
        sys.modules[module_name] = module
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": module_name,
        "__qualname__": description["class"],
        "__w2s_described__": (dict(description), str(folder)),
        "name": description["name"],
        "version": description["version"],
        "description": description["description"],
        "uses_weak_labels": description["uses_weak_labels"],
        "__annotations__": annotations,
    }
    for h in description["hyperparameters"]:
        kind = h["type"]
        annotations[h["name"]] = (
            typing.Literal[tuple(h["choices"])] if kind == "literal" else SCALARS[kind]  # type: ignore[misc]
        )
        namespace[h["name"]] = h["default"]
    try:
        cls = type(description["class"], (Method,), namespace)
    except (TypeError, W2SError) as e:
        raise DescriptionRejected(f"the method's hyperparameters are not usable: {e}") from None
    setattr(module, description["class"], cls)
    return cls


def unit_spec(cls: type) -> str:
    """How another process rebuilds `cls`: its description for a stand-in, else its importable spec."""
    described = cls.__dict__.get("__w2s_described__")
    if described is None:
        return sealed.method_spec(cls)
    description, folder = described
    return SPEC_PREFIX + json.dumps({"description": description, "folder": folder}, sort_keys=True)


def load_unit_spec(spec: str) -> type:
    """The class a unit_spec() names: the same stand-in (checked again, nothing imported), or the import."""
    if not spec.startswith(SPEC_PREFIX):
        return sealed.load_spec(spec)
    try:
        doc = json.loads(spec[len(SPEC_PREFIX) :])
        description, folder = doc["description"], doc["folder"]
    except (ValueError, KeyError, TypeError):
        raise DescriptionRejected("a described method's spec is not {description, folder} JSON") from None
    if not isinstance(folder, str):
        raise DescriptionRejected("a described method's folder must be a path")
    return stand_in(check_description(description), Path(folder))
