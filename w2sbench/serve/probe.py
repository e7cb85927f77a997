"""An agent's method, described without the service ever importing it.

Importing a module runs its top-level code, and the process that schedules jobs holds the labels. So the
agent's code is imported only inside the method sandbox, twice: once here (`python -m w2sbench.serve.probe
FOLDER [CLASS]`, which prints the class's description as one JSON line: name, version, description,
hyperparameters with types and defaults) and then in the sealed method process of each job. The service
turns the description into a stand-in class (`stand_in`) that carries the name, the hyperparameters and
the code's location, so that the pipeline hashes the files, names the method and checks hyperparameters
exactly as for a class it imported; only the sealed process ever loads the real one (and checks its hash).

What the probe sends back is read as JSON of at most 64 KiB and checked field by field; anything else is
one line naming what was wrong.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..methods.base import Method
from ..methods.identity import USER_MODULE_PREFIX
from ..quotas import Cgroup, Quotas, limit_file_size

MAX_REPLY = 64 * 1024
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
SCALARS = {"bool": bool, "int": int, "float": float, "str": str}


class ProbeFailed(W2SError):
    """The agent's code did not import inside the sandbox, or does not define a usable method."""


# ---- inside the sandbox ----------------------------------------------------------------------------------
def _describe(folder: str, class_name: str | None) -> dict:
    import importlib.util

    from ..methods.base import LossMethod

    spec = importlib.util.spec_from_file_location(f"{USER_MODULE_PREFIX}probe", Path(folder) / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod.__name__] = mod
    spec.loader.exec_module(mod)
    found = [
        obj
        for obj in vars(mod).values()
        if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == mod.__name__
    ]
    if class_name:
        found = [c for c in found if c.__qualname__ == class_name]
        if not found:
            raise ProbeFailed(f"the code defines no Method subclass named {class_name!r}")
    if len(found) != 1:
        names = ", ".join(sorted(c.__qualname__ for c in found)) or "none"
        raise ProbeFailed(f"the code must define exactly one Method subclass, or name it (found: {names})")
    cls = found[0]
    if not issubclass(cls, LossMethod) and cls.run is Method.run:
        raise ProbeFailed(f"{cls.__qualname__} implements no run(ctx) (or subclass LossMethod)")
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
    return {
        "class": cls.__qualname__,
        "name": cls.name,
        "version": cls.version,
        "description": str(cls.description)[:500],
        "uses_weak_labels": bool(cls.uses_weak_labels),
        "hyperparameters": params,
    }


def main(argv: list[str]) -> None:
    try:
        doc = _describe(argv[0], argv[1] if len(argv) > 1 and argv[1] else None)
    except ProbeFailed as e:
        doc = {"error": str(e)}
    except BaseException as e:  # the agent's code raised on import: its own error, one line
        doc = {"error": f"importing the method failed: {type(e).__name__}: {str(e)[:300]}"}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    os._exit(0)


# ---- in the service --------------------------------------------------------------------------------------
def probe(folder: Path, class_name: str | None = None, timeout_s: float = 120.0) -> dict:
    """The checked description of the method in `folder` (its __init__.py), from the sandboxed probe."""
    from .. import sandbox

    policy = sandbox.default_policy([], [str(folder)])
    env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASS or k.startswith(sandbox.ENV_PASS_PREFIXES)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    argv = sandbox.command(policy, [sys.executable, "-m", "w2sbench.serve.probe", str(folder), class_name or ""], env)
    quotas = Quotas()  # the method sandbox's default limits: an import cannot take the service's memory
    cgroup = Cgroup.create(quotas)
    if cgroup is not None:
        argv = cgroup.wrap(argv)
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            preexec_fn=lambda: limit_file_size(quotas),
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"importing the method took longer than {timeout_s:.0f} s") from None
    finally:
        if cgroup is not None:
            cgroup.remove()
    out = proc.stdout[:MAX_REPLY]
    try:
        doc = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, IndexError, ValueError):
        raise ProbeFailed("importing the method failed (it ended the process before describing itself)") from None
    return check_description(doc)


def check_description(doc: Any) -> dict:
    """The probe's reply, field by field: anything unexpected is a ProbeFailed line, never an object."""
    if not isinstance(doc, dict):
        raise ProbeFailed("the method's description is not a JSON object")
    if "error" in doc:
        if not isinstance(doc["error"], str):
            raise ProbeFailed("the method could not be described")
        raise ProbeFailed(doc["error"][:400])
    expected = {"class", "name", "version", "description", "uses_weak_labels", "hyperparameters"}
    if set(doc) != expected:
        raise ProbeFailed(f"the method's description has fields {sorted(doc)}, expected {sorted(expected)}")
    if not isinstance(doc["class"], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", doc["class"]):
        raise ProbeFailed("the method class must be a top-level class with a plain name")
    if not isinstance(doc["name"], str) or not NAME.fullmatch(doc["name"]):
        raise ProbeFailed(f"the method's name {doc['name']!r} must match {NAME.pattern}")
    if type(doc["version"]) is not int or not isinstance(doc["description"], str):
        raise ProbeFailed("the method's version must be an int and its description a string")
    if type(doc["uses_weak_labels"]) is not bool or not isinstance(doc["hyperparameters"], list):
        raise ProbeFailed("the method's uses_weak_labels must be a bool and its hyperparameters a list")
    if len(doc["hyperparameters"]) > 32:
        raise ProbeFailed("a method may declare at most 32 hyperparameters")
    for h in doc["hyperparameters"]:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not NAME.fullmatch(h["name"]):
            raise ProbeFailed("a hyperparameter needs a plain lower-case name")
        kind = h.get("type")
        values = h.get("choices") if kind == "literal" else [h.get("default")]
        if kind not in (*SCALARS, "literal") or not isinstance(values, list) or not 0 < len(values) <= 64:
            raise ProbeFailed(f"hyperparameter {h['name']}: unsupported type {kind!r}")
        for v in values + [h.get("default")]:
            if type(v) not in SCALARS.values() or (isinstance(v, str) and len(v) > 200):
                raise ProbeFailed(f"hyperparameter {h['name']}: a value must be a bool, int, float or short str")
    return doc


def stand_in(description: dict, folder: Path) -> type[Method]:
    """A Method subclass that names the probed class and its code without importing it. The pipeline
    hashes `folder`, builds the method's name and config from the declared hyperparameters, and the
    sealed process loads the real class from `folder/__init__.py` (checking the hash)."""
    module_name = f"{USER_MODULE_PREFIX}serve_{abs(hash(str(folder)))}"
    module = sys.modules.get(module_name)
    if module is None:
        module = types.ModuleType(module_name)
        module.__file__ = str(folder / "__init__.py")  # what method_source() and method_spec() read
        sys.modules[module_name] = module
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": module_name,
        "__qualname__": description["class"],
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
        raise ProbeFailed(f"the method's hyperparameters are not usable: {e}") from None
    setattr(module, description["class"], cls)
    return cls


if __name__ == "__main__":
    main(sys.argv[1:])
