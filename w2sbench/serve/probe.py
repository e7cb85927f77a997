"""An agent's method, described without the service ever importing it.

Importing a module runs its top-level code, and the process that schedules jobs holds the labels. So the
agent's code is imported only inside the method sandbox, twice: once here (`python -m w2sbench.serve.probe
FOLDER [CLASS]`, which prints the class's description as one JSON line: name, version, description,
hyperparameters with types and defaults) and then in the sealed method process of each job. The service
checks the description and turns it into a stand-in class (w2sbench.isolation.described), which the pipeline names,
hashes and runs exactly as a class it imported, here or on a Ray worker; only the sealed process ever
loads the real one (and checks its hash).

What the probe sends back is read as JSON of at most 64 KiB and checked field by field; anything else is
one line naming what was wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..isolation.described import DescriptionRejected, check_description
from ..isolation.quotas import Cgroup, Quotas, limit_file_size
from ..methods.base import Method
from ..methods.identity import USER_MODULE_PREFIX

MAX_REPLY = 64 * 1024


class ProbeFailed(DescriptionRejected):
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
    from ..isolation import sandbox

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
    try:
        return check_description(doc)
    except DescriptionRejected as e:
        raise ProbeFailed(str(e)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
