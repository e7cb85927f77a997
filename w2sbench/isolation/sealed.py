"""The method stage in its own process: sealed labels by construction, and an OS sandbox around it.

The harness (parent) sends the child a MethodJob of plain data only: texts, weak soft labels, the strong
model's fixed trainer (its cached features, or the model folder and texts to fine-tune on), the prompt
template and label words, model folders. The child never receives a Task, a Splits or an Example, and
never loads a dataset, so no ground-truth label of train_unlabel or test exists anywhere in its memory
for a method to find (through the context, closures, gc or module globals). The child returns
predictions; the parent checks and scores them.

The child is a fresh interpreter (`python -m w2sbench.isolation.sealed FD SPEC CODE_SHA256`) started inside
the bubblewrap sandbox (w2sbench.isolation.sandbox, through isolation.launch): it cannot read task data, the
artifact cache, results or the leaderboard, cannot reach any address but loopback, cannot see the harness's
processes, and can write only its private /tmp. SPEC is the method's origin and class (isolation.loader):
the child is the only process of a run that imports the method's code, and it first checks that the code
hashes as the run recorded and then tells the harness how the class describes itself, which must be the
description the harness's stand-in was built from (isolation.described). A denial reaches the user as one
line naming what the method tried. The child talks to the harness over one inherited socket; its stdout
and stderr are captured (launch.Output), never the harness's. One child per method, started on first use
and kept for the run, so a method's tasks and seeds pay the start once; an inference engine (vLLM) a
method asks for starts inside it.

Deadlines: every exchange with the child is bounded by the job's time limit: sending the job (a child that
stops reading cannot block the harness), waiting for the reply, reading it, and the first job's wait for the
child to load its code; closing gives it CLOSE_GRACE_S (at most the time limit) to leave, then kills it. A
child over its limit is killed with one line and the run's other methods go on. The child and everything it
started die with the harness (bwrap --die-with-parent and the sandbox's own pid namespace), however the
harness dies.

`--unsealed` runs the same child without the sandbox (results then say so, and the leaderboard refuses
them); it still dies with the harness (PR_SET_PDEATHSIG), but engines it started may not.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import pickle
import select
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError
from ..training.students import Trainer
from . import launch, replies, sandbox
from .quotas import Quotas

PROTOCOL = "sealed-process-v3"  # part of the method stage's cache key
CLOSE_GRACE_S = 5.0  # how long a child may take to leave after the harness asks it to


@dataclass(frozen=True)
class MethodJob:
    """One method seed on one task, as the method process receives it: plain data, no label of
    train_unlabel or test anywhere in it."""

    task: str
    setting: str
    seed: int
    unlabel_texts: list[str]
    test_texts: list[str]
    weak_unlabel: np.ndarray  # weak p(label=1) on train_unlabel
    weak_test: np.ndarray  # weak p(label=1) on test
    trainer: Trainer  # the strong model's fixed trainer (frozen features + head, or fine-tuning)
    label_words: list[str]
    prompt_template: str
    model_dirs: dict[str, str]  # role -> model folder, for inference through the context
    backend: str = "auto"
    tensor_parallel_size: int = 1
    method_config: dict[str, Any] = field(default_factory=dict)  # the method's hyperparameters: cls(**these)


@dataclass(frozen=True)
class MethodCode:
    """Which class a method process loads: where its code is (isolation.loader's origin), the class's name,
    the hash the run recorded, and, for a method known by its description, that description."""

    origin: dict
    class_name: str
    sha256: str
    description: dict | None = None  # None: a built-in (w2sbench's own code)

    def spec(self) -> str:
        return json.dumps({"origin": self.origin, "class": self.class_name}, sort_keys=True)


# ---- the child ------------------------------------------------------------------------------------------------
class _Models:
    """The child's inference engines, started on first use and shared by the jobs of one task; closed when
    the task changes (the harness trains the next task's baselines on the same GPU meanwhile), and the
    GPU memory a job left cached is handed back after each job."""

    def __init__(self) -> None:
        self.backends: dict[tuple[str, str, str], Any] = {}
        self.memo: dict[tuple, np.ndarray] = {}
        self.task: str | None = None  # the task whose jobs the engines serve

    def begin(self, job: MethodJob) -> None:
        """Before a job: a job of another task closes the engines of the last one."""
        if self.task is not None and job.task != self.task:
            self.close()
        self.task = job.task

    def end(self) -> None:
        """After a job: what the method dropped (its students, their optimizer states) is collected and the
        CUDA allocator's cached blocks go back to the driver, for the harness and the next engine."""
        from ..inference.devices import release_memory

        release_memory()

    def backend(self, name: str, model_dir: str, purpose: str, tensor_parallel_size: int = 1) -> Any:
        """Per model as well as purpose: "auto" may pick vLLM for one model and hf for another."""
        from ..inference import get_backend

        key = (name, model_dir, purpose)
        if key not in self.backends:
            self.backends[key] = get_backend(
                name, Path(model_dir), purpose=purpose, tensor_parallel_size=tensor_parallel_size
            )[0]
        return self.backends[key]

    def close(self) -> None:
        from ..inference.devices import release_memory

        for b in self.backends.values():
            b.close()
        self.backends.clear()
        release_memory()


def _context(job: MethodJob, models: _Models) -> Any:
    """A MethodContext from a job's plain data; its callables close over that data and nothing else."""
    from ..cache import hash_texts
    from ..methods.base import MethodContext

    model_dirs, backend, tp = job.model_dirs, job.backend, job.tensor_parallel_size

    def label_probs(role: str, prompts: list[str], words: list[str]) -> np.ndarray:
        if role not in model_dirs:
            raise ValueError(f"role must be one of {sorted(model_dirs)}, got {role!r}")
        key = (role, hash_texts(prompts), tuple(words))
        if key not in models.memo:  # seeds of one task ask the same question: one forward pass each
            b = models.backend(backend, model_dirs[role], "label_probs", tp)
            models.memo[key] = np.asarray(b.label_probs(Path(model_dirs[role]), prompts, words), dtype=np.float32)
        return models.memo[key].copy()

    def generate(role: str, prompts: list[str], max_tokens: int, temperature: float, seed: int) -> list[str]:
        b = models.backend(backend, model_dirs[role], "generate", tp)
        return b.generate(Path(model_dirs[role]), prompts, max_tokens, temperature, seed)

    return MethodContext(
        task=job.task,
        setting=job.setting,
        seed=job.seed,
        unlabel_texts=tuple(job.unlabel_texts),
        test_texts=tuple(job.test_texts),
        trainer=job.trainer,
        label_words=tuple(job.label_words),
        prompt_template=job.prompt_template,
        _weak_unlabel=np.asarray(job.weak_unlabel, dtype=np.float32),
        _weak_test=np.asarray(job.weak_test, dtype=np.float32),
        _label_probs=label_probs,
        _generate=generate,
    )


def _user_frame(tb: str) -> str:
    """The last 'File ..., line N' of a traceback: where the method failed, for a one-line error."""
    frames = [line.strip() for line in tb.splitlines() if line.strip().startswith("File ")]
    return f" ({frames[-1]})" if frames else ""


def _check_device(job: MethodJob) -> None:
    """A job whose trainer must train on CUDA (the harness trained the baselines there) fails with one line
    where this process has no GPU (a sandbox without the device nodes, a CPU build of torch), instead of
    training the method's students on the CPU."""
    if getattr(job.trainer, "device", None) == "cuda":
        from ..inference.devices import cuda_unavailable_reason

        why = cuda_unavailable_reason()
        if why:
            raise W2SError(f"the harness trains this run's students on CUDA, but the method process has no GPU: {why}")


def run_job(cls: type, job: MethodJob, models: _Models | None = None) -> tuple[Any, dict]:
    """Run one method seed on one task's plain data; returns (predictions, compute record)."""
    models = models or _Models()
    _check_device(job)
    ctx = _context(job, models)
    probs = cls(**job.method_config).run(ctx)
    try:
        out: Any = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        out = f"<not numbers: {type(probs).__name__}>"
    return out, {**ctx.compute, "sealed": True, "saw": sorted(ctx.saw)}


def _reply(job: int, outcome: tuple, n_test: int) -> bytes:
    """The frame (w2sbench/isolation/replies.py) for a job's outcome: ("ok", predictions, record) or a failure tuple."""
    if outcome[0] == "ok":
        probs, record = outcome[1], outcome[2]
        compute = {k: v for k, v in record.items() if k not in ("sealed", "saw")}
        if isinstance(probs, str):
            return replies.encode(job, {"status": "not_numbers", "message": probs})
        if probs.shape != (n_test,):
            return replies.encode(job, {"status": "shape", "shape": list(probs.shape)})
        return replies.encode(job, {"status": "ok", "compute": compute, "saw": record["saw"]}, probs)
    doc = {"status": outcome[0], "message": replies.clip(outcome[1])}
    if outcome[0] == "error":
        doc["os_error"] = outcome[2]
    return replies.encode(job, doc)


def _os_error(e: BaseException) -> dict | None:
    """The file error behind a failure, if any, for the parent to check against the host."""
    seen = set()
    while e is not None and id(e) not in seen and not isinstance(e, OSError):
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    if isinstance(e, OSError) and isinstance(e.errno, int):
        name = e.filename if isinstance(e.filename, str) else (sandbox.last_write() or "")  # write() names none
        return {"errno": e.errno, "filename": name}
    return None


def _failure(e: BaseException) -> tuple:
    """A reply for a failed job: a sandbox denial as its own kind, else the error, where it happened and the
    file error behind it (the parent can tell a hidden host path from a missing one; the child cannot)."""
    file_error = _os_error(e)  # first: formatting the traceback opens files, which moves the last attempt
    denial = sandbox.explain(e)
    if denial:
        return "denied", denial
    return "error", f"{type(e).__name__}: {e}{_user_frame(traceback.format_exc())}", file_error


def _load_checked(spec: str, code_sha256: str) -> type:
    """The method class, provided its code is still the code the harness hashed for the results."""
    from ..methods.identity import method_source
    from .loader import import_class

    doc = json.loads(spec)
    cls = import_class(doc["origin"], doc["class"])
    found = method_source(cls).sha256
    if found != code_sha256:
        raise W2SError(
            f"the method's code changed on disk after the run started (it hashes to {found[:12]}..., "
            f"the run recorded {code_sha256[:12]}...): run again"
        )
    return cls


def _hello(cls: type | None, failure: tuple | None) -> bytes:
    """The first frame (job 0): how the loaded class describes itself, or why it could not be loaded."""
    from .loader import describe_class

    if cls is not None:
        try:
            return replies.encode(0, {"status": "loaded", "description": describe_class(cls)})
        except Exception as e:
            failure = _failure(e)
    doc = {"status": failure[0], "message": replies.clip(failure[1])}
    if failure[0] == "error":
        doc["os_error"] = failure[2]
    return replies.encode(0, doc)


def _child_main(conn: Any, spec: str, code_sha256: str) -> None:
    if os.environ.get(sandbox.POLICY_ENV):
        sandbox.install_reporter()
    else:
        launch.die_with_parent()
    models = _Models()
    try:
        cls, failure = _load_checked(spec, code_sha256), None
    except BaseException as e:  # the harness hears it first thing, and again on each job
        cls, failure = None, _failure(e)
        if failure[0] == "error":
            failure = ("error", f"loading the method: {failure[1]}", failure[2])
    replies.send(conn.fileno(), _hello(cls, failure))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            break
        if message is None:
            break
        number, job = message
        n_test = len(job.test_texts)
        if cls is None:
            outcome = failure
        else:
            try:
                models.begin(job)
                outcome = ("ok", *run_job(cls, job, models))
            except BaseException as e:
                outcome = _failure(e)
            finally:
                models.end()
        try:
            frame = _reply(number, outcome, n_test)
        except (TypeError, ValueError) as e:  # a compute entry JSON cannot hold: the harness refuses it
            frame = replies.encode(number, {"status": "error", "message": f"its compute record: {e}"})
        replies.send(conn.fileno(), frame)
    models.close()
    conn.close()


# ---- the parent -------------------------------------------------------------------------------------------------
class MethodTimeout(W2SError):
    """A method process that did not answer within its time limit (stopped)."""


class SealedRunner:
    """A child process that runs one method's jobs, in the sandbox unless `policy` is None; started lazily,
    closed when the run ends (or at exit). Each exchange of a job, from sending it to reading its reply, has
    `timeout_s` seconds."""

    def __init__(
        self,
        code: MethodCode,
        name: str,
        policy: sandbox.Policy | None,
        timeout_s: float,
        quotas: Quotas | None = None,
    ):
        self.code, self.name, self.policy, self.timeout_s = code, name, policy, timeout_s
        self.quotas = quotas  # memory, processes, file size (the tmpfs sizes are in the policy); None: none
        self.child: launch.Child | None = None
        self.sock: socket.socket | None = None  # jobs out (pickle: the harness writes them), replies in
        self.loaded = False  # the child's first frame (its code loaded and described) has been read
        self.jobs = 0  # jobs sent; each reply must echo its job's number
        self.console = ""  # what the child printed, kept when it ends (launch.Output.text)
        # its jobs asked for a model through the inference backend, so its process may hold an engine (4 to 9
        # GiB on a CPU) until its next task: MethodIsolation ends it before another method's job starts
        self.used_engine = False

    @property
    def process(self) -> Any:
        return None if self.child is None else self.child.process

    def _start(self) -> None:
        parent, child = socket.socketpair()
        argv = launch.python("w2sbench.isolation.sealed", str(child.fileno()), self.code.spec(), self.code.sha256)
        try:
            self.child = launch.Child(argv, self.policy, self.quotas, pass_fds=[child.fileno()])
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.sock, self.loaded = parent, False
        atexit.register(self.close)

    def _kill(self) -> None:
        if self.child is not None:
            self.child.kill()

    def _send(self, message: Any, deadline: float) -> None:
        """One pickled message in multiprocessing's framing (what the child's Connection.recv reads), sent
        within the deadline: a child that stops reading cannot hold the harness."""
        assert self.sock is not None
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        head = struct.pack("!i", len(data)) if len(data) <= 0x7FFFFFFF else struct.pack("!iQ", -1, len(data))
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            self.sock.sendall(head + data)
        finally:
            self.sock.settimeout(None)

    def _wait(self, deadline: float) -> bool:
        """True when the child's next frame has started to arrive before the deadline."""
        assert self.sock is not None
        left = deadline - time.monotonic()
        return left > 0 and bool(select.select([self.sock], [], [], left)[0])

    def run(self, job: MethodJob) -> tuple[Any, dict]:
        """(predictions, compute record) of one job. The reply is read as plain data (isolation/replies.py) and
        checked against what this job gave the method; a reply refused ends the process, whose stream can
        no longer be trusted, and the next job starts a fresh one."""
        if self.child is None or not self.child.alive():
            self.close()
            self._start()
        assert self.child is not None and self.sock is not None
        where = f"on task {job.task!r} seed {job.seed}"
        deadline = time.monotonic() + self.timeout_s
        n_test = len(job.test_texts)
        try:
            if not self.loaded:
                self._check_loaded(deadline, where)
            self.jobs += 1
            self._send((self.jobs, job), deadline)
            if not self._wait(deadline):
                raise TimeoutError
            doc, values = replies.read(self.sock, self.jobs, n_test, max(0.1, deadline - time.monotonic()))
            values, record = self._accept(job, doc, values, where)
            self.used_engine = self.used_engine or any(s.endswith("model (inference)") for s in record["saw"])
            return values, record
        except TimeoutError:
            self._kill()
            self.close()
            raise MethodTimeout(
                f"method {self.name!r} did not finish {where} within its time limit of {self.timeout_s:g} s "
                "(the setting's method_timeout; change it with --method-timeout): stopped"
            ) from None
        except replies.ReplyError as e:
            self._kill()
            self.close()
            raise W2SError(f"method {self.name!r} sent a reply the harness refuses {where}: {e}") from None
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.child.process.poll() if self.child is not None else None
            over = self._over_quota()
            self.close()
            if over:
                raise W2SError(self._exceeded(over, where)) from None
            raise W2SError(f"method {self.name!r}: its sealed process died (exit code {code}) {where}") from None

    def _check_loaded(self, deadline: float, where: str) -> None:
        """The child's first frame: its code loaded, hashed as recorded, and describing itself as the harness's
        stand-in says (a method known by its description), or the failure that stopped it."""
        if not self._wait(deadline):
            raise TimeoutError
        assert self.sock is not None
        doc, _ = replies.read(self.sock, 0, 0, max(0.1, deadline - time.monotonic()))
        if doc["status"] != "loaded":
            self._accept_failure(doc, where)
            raise replies.ReplyError(f"a first frame of status {doc['status']!r}")
        from .described import DescriptionRejected, check_description

        try:
            found = check_description(doc.get("description"))
        except DescriptionRejected as e:
            raise replies.ReplyError(f"a description the harness refuses ({e})") from None
        if self.code.description is not None and found != self.code.description:
            raise replies.ReplyError(
                "a description of itself that differs from the one its code gave the probe "
                f"({_difference(self.code.description, found)})"
            )
        self.loaded = True

    def _over_quota(self) -> str | None:
        """The quota the method's process group passed ('memory', 'processes'), if any."""
        if self.child is None or self.child.cgroup is None:
            return None
        self.child.wait(5)  # an OOM kill: the reply stream closes as the process dies
        return self.child.cgroup.exceeded()

    def _exceeded(self, what: str, where: str) -> str:
        assert self.quotas is not None
        limit = self.quotas.describe(what)
        kind = {"memory": "memory limit", "processes": "limit on processes and threads", "tmp": "/tmp size limit"}
        kind |= {"shm": "/dev/shm size limit", "file": "file size limit"}
        return f"method {self.name!r} exceeded its {kind[what]} of {limit} {where}: stopped"

    def _accept_failure(self, doc: dict, where: str) -> None:
        """Raise the one line for a failed job's reply (denied, over a quota, the method's own error)."""
        status = doc["status"]
        if status == "denied":
            raise MethodDenied(f"method {self.name!r} {replies.message(doc)} ({where})")
        if status == "error" and self.quotas is not None:
            over = self._quota_error(replies.os_error(doc))
            if over:
                raise W2SError(self._exceeded(over, where))
        if status == "error":
            hidden = self._outside_sandbox(replies.os_error(doc))
            if hidden:
                raise MethodDenied(f"method {self.name!r} tried to reach {hidden}: denied by the sandbox ({where})")
            raise MethodError(f"method {self.name!r} failed {where}; its own error: {replies.message(doc)}")

    def _accept(self, job: MethodJob, doc: dict, values: Any, where: str) -> tuple[Any, dict]:
        status, n_test = doc["status"], len(job.test_texts)
        self._accept_failure(doc, where)
        if status == "not_numbers":
            raise W2SError(f"method {self.name!r} returned predictions that are not numbers ({replies.message(doc)})")
        if status == "shape":
            raise W2SError(
                f"method {self.name!r} returned predictions of shape {replies.shape(doc)}; "
                f"expected ({n_test},): p(label=1) per test text"
            )
        if status != "ok":
            raise replies.ReplyError(f"a reply of status {status!r} to a job")
        if values is None:
            raise replies.ReplyError("an ok reply without predictions")
        saw = [
            *(f"weak soft labels on {s}" for s in ("train_unlabel", "test")),
            *(f"strong-model features of {s}" for s in ("train_unlabel", "test")),
            *(f"{role} model (inference)" for role in job.model_dirs),
        ]
        record = replies.check_ok(
            doc, n_unlabel=len(job.unlabel_texts), n_test=n_test, epochs=job.trainer.recipe.epochs, allowed_saw=saw
        )
        return values, record

    def _quota_error(self, error: dict | None) -> str | None:
        """The quota behind a failed job: a file over the size limit (EFBIG), a full /tmp or /dev/shm
        (ENOSPC there), a refused fork or thread (the group's pids limit)."""
        if error and error["errno"] == errno.EFBIG:
            return "file"
        if error and error["errno"] == errno.ENOSPC:
            path = os.path.normpath(error["filename"])
            if path == "/dev/shm" or path.startswith("/dev/shm/"):
                return "shm"
            if path == sandbox.SANDBOX_TMP or path.startswith(sandbox.SANDBOX_TMP + "/"):
                return "tmp"
        cgroup = None if self.child is None else self.child.cgroup
        return cgroup.exceeded() if cgroup is not None else None

    def _outside_sandbox(self, error: dict | None) -> str | None:
        """The path of a file error when the sandbox does not show it (outside every tree it binds, or hidden),
        else None (a plain error). Decided from the policy alone: what exists on the host never changes the
        line, so a method cannot learn which host paths exist from it."""
        if (
            self.policy is None
            or not error
            or not error["filename"]
            or error["errno"] not in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR)
        ):
            return None
        path = os.path.normpath(os.path.join("/", error["filename"]))
        return None if sandbox.shows(self.policy, path) else path

    def close(self) -> None:
        """Ask the child to leave, give it CLOSE_GRACE_S (at most the time limit), then kill it; keep what it
        printed."""
        if self.child is None:
            return
        grace = min(CLOSE_GRACE_S, self.timeout_s)
        deadline = time.monotonic() + grace
        if self.sock is not None and self.child.alive():
            try:
                self._send(None, deadline)
            except (TimeoutError, OSError):
                pass
        if self.child.wait(deadline - time.monotonic()) is None:
            self._kill()
        if self.sock is not None:
            self.sock.close()
        self.child.release()
        self.console = "\n".join(t for t in (self.console, self.child.output.text()) if t)
        self.child, self.sock, self.loaded = None, None, False


class MethodError(W2SError):
    """The method's own code raised: the line carries its error text, marked as its own."""


class MethodDenied(W2SError):
    """The sandbox refused the method something (a path, the network)."""


def _difference(expected: dict, found: dict) -> str:
    keys = sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
    return "fields " + ", ".join(keys) if keys else "order"


if __name__ == "__main__":  # the child: python -m w2sbench.isolation.sealed FD SPEC CODE_SHA256
    _child_main(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3])
