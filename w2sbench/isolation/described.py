"""A method known by its checked description, never by importing its code.

Importing a module runs its top-level code, and a harness process holds the labels and the scorer. So a
method that is not built in is imported only inside the method sandbox (isolation.probe, then the sealed
method process), which sends back a description: class name, name, version, description, teacher-free,
kind, hyperparameters with types and defaults, card fields. `check_description` reads that reply field by
field; `stand_in` turns it into a Method subclass that carries the name, the hyperparameters and the code's
origin (isolation.loader), so that the pipeline hashes the files, names the method and checks
hyperparameters exactly as for a built-in class, while only the sealed method process ever loads the real
one (checking the hash, and that it describes itself the same way).

A unit that travels to another process (a Ray worker) names its method by `unit_spec`: for a stand-in, the
description and origin themselves (`described:{json}`), which `load_unit_spec` turns back into the same
stand-in there; for a built-in, its `module:Class`, which must be one of methods.registry.BUILTIN's. So a
worker never imports a method's code either.
"""

from __future__ import annotations

import json
import math
import re
import typing
from typing import Any

from ..errors import W2SError
from ..methods.base import LossMethod, Method
from ..methods.params import RESERVED
from ..methods.registry import BUILTIN, load_builtin

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
FIELDS = {"class", "name", "version", "description", "uses_weak_labels", "kind", "hyperparameters", "card"}
CARD_STRINGS = ("code", "paper", "license", "contact", "recipe_notes")
SPEC_PREFIX = "described:"
# A hyperparameter is set on the method object by name: one named like an attribute of the method API would
# replace it (`name` made a job run and be logged as another method; `config` broke the harness).
RESERVED_NAMES = frozenset(RESERVED) | frozenset(n for n in dir(LossMethod) if not n.startswith("__"))


class DescriptionRejected(W2SError):
    """A method's description is malformed, or declares hyperparameters no method can have."""


def _short(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _check_card(card: Any) -> None:
    if not isinstance(card, dict) or set(card) != {*CARD_STRINGS, "authors", "non_default_recipe"}:
        raise DescriptionRejected("the method's card must hold authors, code, paper, license, contact, recipe fields")
    for key in CARD_STRINGS:
        if card[key] is not None and not _short(card[key], 500):
            raise DescriptionRejected(f"the method's {key} must be a string of at most 500 characters, or None")
    authors = card["authors"]
    if authors is not None and not (
        isinstance(authors, list) and len(authors) <= 32 and all(_short(a, 200) and a for a in authors)
    ):
        raise DescriptionRejected("the method's authors must be a list of at most 32 short names")
    if card["non_default_recipe"] is not None and type(card["non_default_recipe"]) is not bool:
        raise DescriptionRejected("the method's non_default_recipe must be a bool")


def check_description(doc: Any) -> dict:
    """A probe's reply, field by field: anything unexpected is one line, never an object."""
    if not isinstance(doc, dict):
        raise DescriptionRejected("the method's description is not a JSON object")
    if "error" in doc:
        if not isinstance(doc["error"], str):
            raise DescriptionRejected("the method could not be described")
        raise DescriptionRejected(" ".join(doc["error"].split())[:400])
    if set(doc) != FIELDS:
        raise DescriptionRejected(f"the method's description has fields {sorted(doc)}, expected {sorted(FIELDS)}")
    if not isinstance(doc["class"], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", doc["class"]):
        raise DescriptionRejected("the method class must be a top-level class with a plain name")
    if not isinstance(doc["name"], str) or not NAME.fullmatch(doc["name"]):
        raise DescriptionRejected(f"the method's name {str(doc['name'])[:60]!r} must match {NAME.pattern}")
    if type(doc["version"]) is not int or not _short(doc["description"], 500):
        raise DescriptionRejected("the method's version must be an int and its description a short string")
    if type(doc["uses_weak_labels"]) is not bool or doc["kind"] not in ("loss", "run"):
        raise DescriptionRejected("the method's uses_weak_labels must be a bool and its kind 'loss' or 'run'")
    if not isinstance(doc["hyperparameters"], list) or len(doc["hyperparameters"]) > 32:
        raise DescriptionRejected("a method may declare at most 32 hyperparameters, as a list")
    seen = set()
    for h in doc["hyperparameters"]:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not NAME.fullmatch(h["name"]):
            raise DescriptionRejected("a hyperparameter needs a plain lower-case name")
        if h["name"] in RESERVED_NAMES or h["name"] in seen:
            raise DescriptionRejected(f"hyperparameter {h['name']!r}: the name is the method API's or given twice")
        seen.add(h["name"])
        kind = h.get("type")
        if set(h) - {"name", "type", "default", "choices"}:
            raise DescriptionRejected(f"hyperparameter {h['name']}: unexpected fields")
        values = h.get("choices") if kind == "literal" else [h.get("default")]
        if kind not in (*SCALARS, "literal") or not isinstance(values, list) or not 0 < len(values) <= 64:
            raise DescriptionRejected(f"hyperparameter {h['name']}: unsupported type {str(kind)[:40]!r}")
        for v in values + [h.get("default")]:
            if type(v) not in SCALARS.values() or (isinstance(v, str) and len(v) > 200):
                raise DescriptionRejected(
                    f"hyperparameter {h['name']}: a value must be a bool, int, float or a short str"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise DescriptionRejected(f"hyperparameter {h['name']}: a value must be finite")
    _check_card(doc["card"])
    return doc


def check_origin(origin: Any) -> dict:
    """An origin (isolation.loader) as plain data: kind and an absolute path, or an importable module name."""
    if not isinstance(origin, dict) or origin.get("kind") not in ("file", "folder", "package"):
        raise DescriptionRejected("a described method's origin must be a file, folder or package")
    if not isinstance(origin.get("path"), str) or not origin["path"].startswith("/"):
        raise DescriptionRejected("a described method's origin needs an absolute path")
    module = origin.get("module")
    if origin["kind"] == "package" and not (
        isinstance(module, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module)
    ):
        raise DescriptionRejected("a described package method needs a module name")
    if set(origin) - {"kind", "path", "module"}:
        raise DescriptionRejected("a described method's origin has unexpected fields")
    return origin


def stand_in(description: dict, origin: dict) -> type[Method]:
    """A Method subclass that names the described class and its code without importing it. The pipeline
    hashes the origin's files (methods.identity.method_source reads `__w2s_described__`), builds the method's
    name and config from the declared hyperparameters, and the sealed process loads the real class from the
    origin (checking the hash and the description)."""
    from .loader import module_name

    origin = check_origin(dict(origin))
    module = origin["module"] if origin["kind"] == "package" else module_name(origin)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": module,
        "__qualname__": description["class"],
        "__w2s_described__": (dict(description), dict(origin)),
        "name": description["name"],
        "version": description["version"],
        "description": description["description"],
        "uses_weak_labels": description["uses_weak_labels"],
        "__annotations__": annotations,
    }
    namespace.update({k: v for k, v in description["card"].items() if v is not None})
    for h in description["hyperparameters"]:
        kind = h["type"]
        annotations[h["name"]] = (
            typing.Literal[tuple(h["choices"])] if kind == "literal" else SCALARS[kind]  # type: ignore[misc]
        )
        namespace[h["name"]] = h["default"]
    base = LossMethod if description["kind"] == "loss" else Method
    try:
        return type(description["class"], (base,), namespace)
    except (TypeError, W2SError) as e:
        raise DescriptionRejected(f"the method's hyperparameters are not usable: {e}") from None


def described(cls: type) -> tuple[dict, dict] | None:
    """(description, origin) of a stand-in class, None for any other."""
    found = cls.__dict__.get("__w2s_described__")
    return None if found is None else (found[0], found[1])


def unit_spec(cls: type) -> str:
    """How another process rebuilds `cls`: its description and origin for a stand-in, else the built-in's
    `module:Class`."""
    found = described(cls)
    if found is None:
        return builtin_spec(cls)
    description, origin = found
    return SPEC_PREFIX + json.dumps({"description": description, "origin": origin}, sort_keys=True)


def builtin_spec(cls: type) -> str:
    """'module:Class' of a built-in method; anything else is refused (it has a stand-in instead)."""
    spec = f"{cls.__module__}:{cls.__qualname__}"
    if spec not in BUILTIN.values():
        raise W2SError(f"method {getattr(cls, 'name', cls.__name__)!r} is neither built in nor described")
    return spec


def load_unit_spec(spec: str) -> type:
    """The class a unit_spec() names: the same stand-in (checked again, nothing imported), or a built-in."""
    if not spec.startswith(SPEC_PREFIX):
        if spec not in BUILTIN.values():
            raise DescriptionRejected(f"a unit names {spec[:80]!r}, which is not a built-in method")
        return load_builtin(next(name for name, where in BUILTIN.items() if where == spec))
    try:
        doc = json.loads(spec[len(SPEC_PREFIX) :])
        description, origin = doc["description"], doc["origin"]
    except (ValueError, KeyError, TypeError):
        raise DescriptionRejected("a described method's spec is not {description, origin} JSON") from None
    return stand_in(check_description(description), origin)
