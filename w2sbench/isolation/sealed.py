"""The method stage in its own process: sealed labels by construction, and an OS sandbox around it.

The harness (parent) sends the child a MethodJob of plain data only: texts, weak soft labels, the strong
model's fixed trainer (its cached features, or the model folder and texts to fine-tune on), the prompt
template and label words, model folders. The child never receives a Task, a Splits or an Example, and
never loads a dataset, so no ground-truth label of train_unlabel or test exists anywhere in its memory
for a method to find (through the context, closures, gc or module globals). The child returns
predictions; the parent checks and scores them.

The child is a fresh interpreter (`python -m w2sbench.isolation.sealed FD SPEC`) started inside the bubblewrap
sandbox (w2sbench.isolation.sandbox): it cannot read task data, the artifact cache, results or the leaderboard,
cannot reach any address but loopback, cannot see the harness's processes, and can write only its
private /tmp. A denial reaches the user as one line naming what the method tried. The child talks to the
harness over one inherited socket. One child per method, started on first use and kept for the run, so
a method's tasks and seeds pay the start once; an inference engine (vLLM) a method asks for starts inside
it. Each job has a time limit; the child and everything it started die with the harness (bwrap
--die-with-parent and the sandbox's own pid namespace), however the harness dies.

`--unsealed` runs the same child without the sandbox (results then say so, and the leaderboard refuses
them); it still dies with the harness (PR_SET_PDEATHSIG), but engines it started may not.
"""

from __future__ import annotations

import atexit
import errno
import importlib
import os
import signal
import socket
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError
from ..training.students import Trainer
from . import replies, sandbox
from .quotas import Cgroup, Quotas, limit_file_size

PROTOCOL = "sealed-process-v3"  # part of the method stage's cache key


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


# ---- naming a method so that a fresh interpreter can load the same class -----------------------------------
def method_spec(cls: type) -> str:
    """How the child finds the class: 'module:QualName' for one in an installed package, else
    'path/file.py:QualName' (a file method, or a module that only the harness's import path reaches)."""
    from ..methods.identity import method_source

    source = method_source(cls)
    if source.kind == "package":
        return f"{cls.__module__}:{cls.__qualname__}"
    file = source.root / "__init__.py" if source.kind == "folder" else source.root
    return f"{file}:{cls.__qualname__}"


def load_spec(spec: str) -> type:
    """The class a method_spec() names (in the child)."""
    if ".py:" in spec:
        from ..methods.registry import load_method

        return load_method(spec)
    module, _, qualname = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


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
        from ..training.devices import release_memory

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
        from ..training.devices import release_memory

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
        from ..training.devices import cuda_unavailable_reason

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


def _die_with_parent() -> None:
    """Unsealed child: the kernel kills it when the harness dies (the sandbox does this by itself)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


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

    cls = load_spec(spec)
    found = method_source(cls).sha256
    if found != code_sha256:
        raise W2SError(
            f"the method's code changed on disk after the run started (it hashes to {found[:12]}..., "
            f"the run recorded {code_sha256[:12]}...): run again"
        )
    return cls


def _child_main(conn: Any, spec: str, code_sha256: str) -> None:
    if os.environ.get(sandbox.POLICY_ENV):
        sandbox.install_reporter()
    else:
        _die_with_parent()
    models = _Models()
    try:
        cls, failure = _load_checked(spec, code_sha256), None
    except BaseException as e:  # report the import failure on the first job
        cls, failure = None, _failure(e)
        if failure[0] == "error":
            failure = ("error", f"loading {spec}: {failure[1]}", failure[2])
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
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
class SealedRunner:
    """A child process that runs one method's jobs, in the sandbox unless `policy` is None; started lazily,
    closed at exit. Each job may take at most `timeout_s` seconds."""

    def __init__(
        self,
        spec: str,
        name: str,
        policy: sandbox.Policy | None,
        timeout_s: float,
        code_sha256: str,
        quotas: Quotas | None = None,
    ):
        self.spec, self.name, self.policy, self.timeout_s = spec, name, policy, timeout_s
        self.quotas = quotas  # memory, processes, file size (the tmpfs sizes are in the policy); None: none
        self.cgroup: Cgroup | None = None
        self.code_sha256 = code_sha256  # what the results will say ran: the child checks the code it loads
        self.process: subprocess.Popen | None = None
        self.conn: Connection | None = None  # jobs out (pickle: the harness writes them)
        self.sock: socket.socket | None = None  # replies in (plain data only: replies.read)
        self.jobs = 0  # jobs sent; each reply must echo its job's number

    def _start(self) -> None:
        parent, child = socket.socketpair()
        argv = [sys.executable, "-m", "w2sbench.isolation.sealed", str(child.fileno()), self.spec, self.code_sha256]
        if self.policy is not None:
            env = {
                k: v for k, v in os.environ.items() if k in sandbox.ENV_PASS or k.startswith(sandbox.ENV_PASS_PREFIXES)
            }
            if os.environ.get("PYTHONPATH"):
                env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            argv = sandbox.command(self.policy, argv, env)
        quotas = self.quotas
        if quotas is not None:
            self.cgroup = Cgroup.create(quotas)  # None where no control group can be made: not enforced
            if self.cgroup is not None:
                argv = self.cgroup.wrap(argv)
        # Its own session: a stuck child is killed as a group; bwrap's --die-with-parent and the pid
        # namespace take everything inside with it.
        self.process = subprocess.Popen(
            argv,
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=None if quotas is None else lambda: limit_file_size(quotas),
        )
        child.close()
        self.conn = Connection(os.dup(parent.fileno()))
        self.sock = parent
        atexit.register(self.close)

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)

    def run(self, job: MethodJob) -> tuple[Any, dict]:
        """(predictions, compute record) of one job. The reply is read as plain data (w2sbench/isolation/replies.py) and
        checked against what this job gave the method; a reply refused ends the process, whose stream can
        no longer be trusted, and the next job starts a fresh one."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self.conn is not None and self.process is not None and self.sock is not None
        where = f"on task {job.task!r} seed {job.seed}"
        self.jobs += 1
        n_test = len(job.test_texts)
        try:
            self.conn.send((self.jobs, job))
            if not self.conn.poll(self.timeout_s):
                self._kill()
                self.close()
                raise W2SError(
                    f"method {self.name!r} did not finish {where} within its time limit of "
                    f"{self.timeout_s:g} s (the setting's method_timeout; change it with --method-timeout): "
                    "stopped"
                )
            doc, values = replies.read(self.sock, self.jobs, n_test)
            return self._accept(job, doc, values, where)
        except replies.ReplyError as e:
            self._kill()
            self.close()
            raise W2SError(f"method {self.name!r} sent a reply the harness refuses {where}: {e}") from None
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.process.poll() if self.process is not None else None
            over = self._over_quota()
            self.close()
            if over:
                raise W2SError(self._exceeded(over, where)) from None
            raise W2SError(f"method {self.name!r}: its sealed process died (exit code {code}) {where}") from None

    def _over_quota(self) -> str | None:
        """The quota the method's process group passed ('memory', 'processes'), if any."""
        if self.cgroup is None:
            return None
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=5)  # an OOM kill: the reply stream closes as the process dies
            except subprocess.TimeoutExpired:
                pass
        return self.cgroup.exceeded()

    def _exceeded(self, what: str, where: str) -> str:
        assert self.quotas is not None
        limit = self.quotas.describe(what)
        kind = {"memory": "memory limit", "processes": "limit on processes and threads", "tmp": "/tmp size limit"}
        kind |= {"shm": "/dev/shm size limit", "file": "file size limit"}
        return f"method {self.name!r} exceeded its {kind[what]} of {limit} {where}: stopped"

    def _accept(self, job: MethodJob, doc: dict, values: Any, where: str) -> tuple[Any, dict]:
        status, n_test = doc["status"], len(job.test_texts)
        if status == "denied":
            raise W2SError(f"method {self.name!r} {replies.message(doc)} ({where})")
        if status == "error" and self.quotas is not None:
            over = self._quota_error(replies.os_error(doc))
            if over:
                raise W2SError(self._exceeded(over, where))
        if status == "error":
            hidden = self._hidden_host_path(replies.os_error(doc))
            if hidden:
                raise W2SError(f"method {self.name!r} tried to {hidden}: denied by the sandbox ({where})")
            raise W2SError(f"method {self.name!r} failed {where}: {replies.message(doc)}")
        if status == "not_numbers":
            raise W2SError(f"method {self.name!r} returned predictions that are not numbers ({replies.message(doc)})")
        if status == "shape":
            raise W2SError(
                f"method {self.name!r} returned predictions of shape {replies.shape(doc)}; "
                f"expected ({n_test},): p(label=1) per test text"
            )
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
        return self.cgroup.exceeded() if self.cgroup is not None else None

    def _hidden_host_path(self, error: dict | None) -> str | None:
        """'read X' / 'write X' when a file error names a host path the sandbox kept from the method (it exists
        here, or its folder does, and the sandbox does not show it), else None: a plain missing file."""
        if (
            self.policy is None
            or not error
            or not error["filename"]
            or error["errno"] not in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR)
        ):
            return None
        path = os.path.abspath(error["filename"])
        if any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.policy.read_only) and not any(
            path == h or path.startswith(h.rstrip("/") + "/") for h in self.policy.hidden
        ):
            return None
        if os.path.lexists(path):
            return f"read {path}"
        if os.path.isdir(os.path.dirname(path)):
            return f"write {path}"
        return None

    def close(self) -> None:
        if self.process is None:
            return
        try:
            if self.conn is not None:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._kill()
        if self.conn is not None:
            self.conn.close()
        if self.sock is not None:
            self.sock.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        self.process, self.conn, self.sock, self.cgroup = None, None, None, None


if __name__ == "__main__":  # the child: python -m w2sbench.isolation.sealed FD SPEC CODE_SHA256
    _child_main(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3])
