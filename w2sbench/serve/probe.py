"""An agent's method, described without the service ever importing it.

Importing a module runs its top-level code, and the process that schedules jobs holds the labels. So the
agent's code is imported only inside the method sandbox, twice: once here (`python -m w2sbench.serve.probe
FOLDER [CLASS]`, which prints the class's description as one JSON line: name, version, description,
hyperparameters with types and defaults) and then in the sealed method process of each job. The service
checks the description and turns it into a stand-in class (w2sbench.isolation.described), which the pipeline names,
hashes and runs exactly as a class it imported, here or on a Ray worker; only the sealed process ever
loads the real one (and checks its hash).

What the probe sends back is read as JSON of at most 64 KiB and checked field by field; anything else is
one line naming what was wrong. Its output is read up to that bound and the rest dropped as it comes (never
held whole: 300 MiB printed at import once grew the service by 600 MiB), whatever the agent's code prints
goes to the probe's stderr, kept up to 16 KiB for the operator's log, and the probe has its own time and
memory limits (its caller's, e.g. the service's budget left).

`describe_loaded_class(cls)` is the description of a class already loaded: the probe sends it, and the
sealed method process, which loads the same class for each job, is to send it back too, so that the harness
checks the class a job runs against the one the probe described (`check_reported`).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..isolation.described import DescriptionRejected, check_description
from ..isolation.quotas import Cgroup, Quotas, limit_file_size
from ..methods.base import Method
from ..methods.identity import USER_MODULE_PREFIX

MAX_REPLY = 64 * 1024
MAX_CONSOLE = 16 * 1024


class ProbeFailed(DescriptionRejected):
    """The agent's code did not import inside the sandbox, or does not define a usable method. `limit`:
    'time', 'memory' or 'ended' when the harness saw that (not a line the code sent)."""

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


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
    return describe_loaded_class(cls)


def describe_loaded_class(cls: type) -> dict:
    """The description of a Method subclass already loaded (the probe's reply; the sealed process is to
    send the same for the class it loads, for `check_reported`)."""
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


def check_reported(expected: dict, reported: object) -> None:
    """The harness's side: the description the sealed process reports for the class it loaded must be the
    one the job was accepted under (the probe's, checked); anything else is refused."""
    try:
        same = check_description(reported) == expected
    except DescriptionRejected:
        same = False
    if not same:
        raise DescriptionRejected(
            "the method's code describes itself differently in the sealed process than in the probe"
        )


def main(argv: list[str]) -> None:
    reply = os.dup(1)  # the reply's own channel: whatever the agent's code prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        doc = _describe(argv[0], argv[1] if len(argv) > 1 and argv[1] else None)
    except ProbeFailed as e:
        doc = {"error": str(e)}
    except BaseException as e:  # the agent's code raised on import: its own error, one line
        doc = {"error": f"importing the method failed: {type(e).__name__}: {str(e)[:300]}"}
    try:
        os.write(reply, (json.dumps(doc) + "\n").encode())
    except (TypeError, ValueError):  # a default JSON cannot hold: the service refuses it as malformed
        os.write(reply, b"{}\n")
    os._exit(0)


# ---- in the service --------------------------------------------------------------------------------------
def probe(
    folder: Path,
    class_name: str | None = None,
    timeout_s: float = 120.0,
    quotas: Quotas | None = None,
    console: list[str] | None = None,
) -> dict:
    """The checked description of the method in `folder` (its __init__.py), from the sandboxed probe, which
    may run `timeout_s` seconds under `quotas` (default: the method sandbox's). What the code printed is
    appended to `console` (at most 16 KiB), for the operator."""
    from ..isolation import sandbox

    policy = sandbox.default_policy([], [str(folder)])
    env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASS or k.startswith(sandbox.ENV_PASS_PREFIXES)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    argv = sandbox.command(policy, [sys.executable, "-m", "w2sbench.serve.probe", str(folder), class_name or ""], env)
    quotas = quotas or Quotas()  # an import cannot take the service's memory
    cgroup = Cgroup.create(quotas)
    if cgroup is not None:
        argv = cgroup.wrap(argv)
    deadline = time.monotonic() + max(0.0, timeout_s)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: limit_file_size(quotas),
    )
    out = err = b""
    try:
        out, err, finished = _read_bounded(proc, deadline, {proc.stdout: MAX_REPLY, proc.stderr: MAX_CONSOLE})
        if not finished:
            raise ProbeFailed(f"importing the method took longer than {timeout_s:g} s", limit="time")
        over = cgroup.exceeded() if cgroup is not None else None
        if over == "memory":
            limit = quotas.describe("memory")
            raise ProbeFailed(f"importing the method exceeded its memory limit of {limit}", limit="memory")
    finally:
        _end(proc)
        if console is not None:
            console.append(err.decode("utf-8", "replace"))
        if cgroup is not None:
            cgroup.remove()
    try:
        doc = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, IndexError, ValueError, RecursionError):
        raise ProbeFailed(
            "importing the method failed (it ended the process before describing itself)", limit="ended"
        ) from None
    try:
        return check_description(doc)
    except DescriptionRejected as e:
        raise ProbeFailed(str(e)) from None


def _read_bounded(proc: subprocess.Popen, deadline: float, limits: dict) -> tuple[bytes, bytes, bool]:
    """Both pipes read as they come until they close or the deadline passes; past its limit a pipe's bytes are
    dropped as they arrive (never held). Returns (stdout, stderr, whether both closed in time)."""
    kept = {pipe: bytearray() for pipe in limits}
    with selectors.DefaultSelector() as sel:
        for pipe in limits:
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(kept[proc.stdout]), bytes(kept[proc.stderr]), False
            for key, _ in sel.select(timeout=min(left, 1.0)):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = limits[key.fileobj] - len(kept[key.fileobj])
                if room > 0:
                    kept[key.fileobj] += chunk[:room]
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return bytes(kept[proc.stdout]), bytes(kept[proc.stderr]), False
    return bytes(kept[proc.stdout]), bytes(kept[proc.stderr]), True


def _end(proc: subprocess.Popen) -> None:
    """The probe's process group ends here, whatever it was doing (the sandbox takes what it started)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


if __name__ == "__main__":
    main(sys.argv[1:])
