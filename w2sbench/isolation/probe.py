"""What the harness knows of a method that is not built in: its description, from a sandboxed probe.

Importing a module runs its top-level code, and every harness process (the CLI, evaluate(), sweeps, the
leaderboard commands, the scoring service, a Ray driver or worker) holds labels or the scorer. So a method's
code is imported only inside the method sandbox: here, once, by `python -m w2sbench.isolation.probe FD ORIGIN
SHA256 [CLASS]` (isolation.loader), which checks that the code still hashes as the harness hashed it and
writes the class's description to the pipe FD as one JSON object (class, name, version, description,
teacher-free, kind, hyperparameters with types and defaults, card fields), and then in the sealed method
process of each run. The harness checks the description field by field (isolation.described.check_description)
and builds a stand-in class from it (described.stand_in), which it names, hashes, configures and schedules
like any class; only the sealed process loads the real one.

Bounds: the reply is read up to MAX_REPLY bytes from its own pipe (the code's console is captured apart,
bounded, and never parsed); the probe has a time limit and the method sandbox's quotas (memory, processes,
file size); anything else is one ProbeFailed line. Answers are memoised in this process by what determines
them: the origin, the class, the code's hash and whether it ran sealed.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

from ..errors import W2SError
from .described import DescriptionRejected, check_description

MAX_REPLY = 64 * 1024
TIMEOUT_S = 120.0

_memo: dict[tuple, dict] = {}


class ProbeFailed(DescriptionRejected):
    """The method's code did not import inside the sandbox, or does not define a usable method. `limit` is
    'time', 'memory' or 'ended' where the harness saw that itself (not a line the code chose)."""

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


# ---- inside the sandbox ----------------------------------------------------------------------------------
def main(argv: list[str]) -> None:
    fd, origin, sha256 = int(argv[0]), json.loads(argv[1]), argv[2]
    class_name = argv[3] if len(argv) > 3 and argv[3] else None
    from . import sandbox

    if os.environ.get(sandbox.POLICY_ENV):
        sandbox.install_reporter()
    from ..methods.identity import method_source
    from .loader import LoadFailed, describe_class, import_class

    try:
        cls = import_class(origin, class_name)
        if method_source(cls).sha256 != sha256:  # the harness hashed other files: described is what runs
            raise LoadFailed("the method's code changed while it was being described: describe it again")
        doc = describe_class(cls)
    except LoadFailed as e:
        doc = {"error": str(e)}
    except BaseException as e:  # the code raised on import: its own error, in one line
        denial = sandbox.explain(e)
        doc = {"error": f"importing the method failed: {denial or f'{type(e).__name__}: {str(e)[:300]}'}"}
    try:
        data = json.dumps(doc).encode()
    except (TypeError, ValueError):
        data = json.dumps({"error": "the method's description is not plain data"}).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os._exit(0)


# ---- in the harness ----------------------------------------------------------------------------------------
def _read_reply(fd: int, child, deadline: float, timeout_s: float) -> bytes:
    """At most MAX_REPLY bytes from the reply pipe, until the probe closes it or ends (something it started
    may hold the pipe open), or the deadline passes."""
    data = bytearray()
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                child.kill()
                raise ProbeFailed(f"importing the method took longer than {timeout_s:g} s: stopped", limit="time")
            ended = not child.alive()
            if not select.select([pipe], [], [], 0 if ended else min(left, 0.2))[0]:
                if ended:
                    return bytes(data)
                continue
            chunk = pipe.read(1 << 16)
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > MAX_REPLY:
                child.kill()
                raise ProbeFailed(f"the method's description is longer than {MAX_REPLY} bytes")


def probe(
    origin: dict,
    class_name: str | None,
    code_sha256: str,
    *,
    sealed: bool = True,
    quotas=None,
    timeout_s: float = TIMEOUT_S,
    console: list[str] | None = None,
) -> dict:
    """The checked description of the class `class_name` (or the only Method subclass) of the code at
    `origin`, from a process that imports it: in the method sandbox unless `sealed` is False (then in a
    plain child process, never in this one), for at most `timeout_s` seconds under `quotas` (default: the
    method sandbox's). What the code printed (captured, bounded) is appended to `console`."""
    key = (json.dumps(origin, sort_keys=True), class_name, code_sha256, sealed)
    if key in _memo:
        return dict(_memo[key])
    from . import launch, sandbox
    from .quotas import Quotas

    policy = None
    if sealed:
        why = sandbox.unavailable_reason()
        if why:
            raise W2SError(
                f"the method sandbox cannot start here ({why}), and a method that is not built in is only ever "
                "imported inside it; install bubblewrap, or pass --unsealed"
            )
        root = origin.get("path")
        policy = sandbox.default_policy([], [root] if root else [])
    quotas = quotas or Quotas()
    read_end, write_end = os.pipe()
    argv = launch.python("w2sbench.isolation.probe", str(write_end), json.dumps(origin), code_sha256, class_name or "")
    try:
        child = launch.Child(argv, policy, quotas, pass_fds=[write_end])
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    over = None
    try:
        raw = _read_reply(read_end, child, time.monotonic() + max(0.0, timeout_s), timeout_s)
        child.wait(1.0)
        over = child.cgroup.exceeded() if child.cgroup is not None else None
    finally:
        child.kill()
        child.release()
        if console is not None:
            console.append(child.output.text())
    if over == "memory":
        raise ProbeFailed(f"importing the method exceeded its memory limit of {quotas.describe('memory')}", "memory")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        last = (child.output.text().splitlines() or [""])[-1][:200]
        said = f"; the last line it printed: {last!r}" if last else ""
        raise ProbeFailed(
            f"importing the method failed (it ended its process before describing itself{said})", "ended"
        ) from None
    try:
        described = check_description(doc)
    except DescriptionRejected as e:
        raise ProbeFailed(str(e)) from None
    _memo[key] = described
    return dict(described)


if __name__ == "__main__":
    main(sys.argv[1:])
