"""The method stage in its own process: sealed labels by construction.

The harness (parent) sends the child a MethodJob of plain data only: texts, weak soft labels, the strong
model's fixed trainer (its cached features, or the model folder and texts to fine-tune on), the prompt
template and label words, model folders. The child never
receives a Task, a Splits or an Example, and never loads a dataset, so no ground-truth label of
train_unlabel or test exists anywhere in its memory for a method to find (through the context, closures,
gc or module globals). The child returns predictions; the parent checks and scores them.

One child per method, started on first use (multiprocessing "spawn": a fresh interpreter, nothing
inherited from the parent's memory) and kept for the rest of the run, so a method's tasks and seeds pay
the interpreter start once. An inference engine (vLLM) a method asks for starts inside the child.

Limits: this seals the API, it is not an OS sandbox: code that reads the task's data files from disk
itself is not stopped here; results record what the method read through the context.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing as mp
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import W2SError
from .training.students import Trainer

PROTOCOL = "sealed-process-v1"  # part of the method stage's cache key


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


# ---- naming a method so that a fresh interpreter can load the same class -----------------------------------
def method_spec(cls: type) -> str:
    """'module:QualName' for an importable class, 'path/file.py:Name' for one loaded from a file."""
    module = cls.__module__
    if module.startswith("w2sbench_user_method_") or module in ("__main__", "__mp_main__"):
        import sys

        path = getattr(sys.modules.get(module), "__file__", None)
        if not path:
            raise W2SError(f"method {getattr(cls, 'name', cls.__name__)!r}: cannot find the file that defines it")
        return f"{Path(path).resolve()}:{cls.__qualname__}"
    return f"{module}:{cls.__qualname__}"


def load_spec(spec: str) -> type:
    """The class a method_spec() names (in the child)."""
    if ".py:" in spec:
        from .methods.registry import load_method

        return load_method(spec)
    module, _, qualname = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# ---- the child ------------------------------------------------------------------------------------------------
class _Models:
    """The child's inference engines, started on first use and shared by all jobs of this child."""

    def __init__(self) -> None:
        self.backends: dict[tuple[str, str, str], Any] = {}
        self.memo: dict[tuple, np.ndarray] = {}

    def backend(self, name: str, model_dir: str, purpose: str, tensor_parallel_size: int = 1) -> Any:
        """Per model as well as purpose: "auto" may pick vLLM for one model and hf for another."""
        from .inference import get_backend

        key = (name, model_dir, purpose)
        if key not in self.backends:
            self.backends[key] = get_backend(name, Path(model_dir), purpose=purpose,
                                             tensor_parallel_size=tensor_parallel_size)[0]
        return self.backends[key]

    def close(self) -> None:
        for b in self.backends.values():
            b.close()


def _context(job: MethodJob, models: _Models) -> Any:
    """A MethodContext from a job's plain data; its callables close over that data and nothing else."""
    from .cache import hash_texts
    from .methods.base import MethodContext

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
        task=job.task, setting=job.setting, seed=job.seed,
        unlabel_texts=tuple(job.unlabel_texts), test_texts=tuple(job.test_texts), trainer=job.trainer,
        label_words=tuple(job.label_words), prompt_template=job.prompt_template,
        _weak_unlabel=np.asarray(job.weak_unlabel, dtype=np.float32),
        _weak_test=np.asarray(job.weak_test, dtype=np.float32),
        _label_probs=label_probs, _generate=generate,
    )


def _user_frame(tb: str) -> str:
    """The last 'File ..., line N' of a traceback: where the method failed, for a one-line error."""
    frames = [line.strip() for line in tb.splitlines() if line.strip().startswith("File ")]
    return f" ({frames[-1]})" if frames else ""


def run_job(cls: type, job: MethodJob, models: Optional[_Models] = None) -> tuple[Any, dict]:
    """Run one method seed on one task's plain data; returns (predictions, compute record)."""
    models = models or _Models()
    ctx = _context(job, models)
    probs = cls().run(ctx)
    try:
        out: Any = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        out = f"<not numbers: {type(probs).__name__}>"
    return out, {**ctx.compute, "sealed": True, "saw": sorted(ctx.saw)}


def _child_main(conn: Any, spec: str) -> None:
    models = _Models()
    try:
        cls = load_spec(spec)
    except BaseException as e:  # report the import failure on the first job
        cls, failure = None, f"loading {spec}: {type(e).__name__}: {e}"
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if job is None:
            break
        if cls is None:
            conn.send(("error", failure))
            continue
        try:
            conn.send(("ok", *run_job(cls, job, models)))
        except BaseException as e:
            tb = traceback.format_exc()
            conn.send(("error", f"{type(e).__name__}: {e}{_user_frame(tb)}"))
    models.close()
    conn.close()


# ---- the parent -------------------------------------------------------------------------------------------------
class SealedRunner:
    """A child process that runs one method's jobs; started lazily, closed at exit."""

    def __init__(self, spec: str, name: str):
        self.spec, self.name = spec, name
        self.process: Optional[mp.process.BaseProcess] = None
        self.conn: Any = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        # Not a daemon: a daemon may not start processes, and vLLM's engine runs in its own.
        self.process = ctx.Process(target=_child_main, args=(child, self.spec), name=f"w2sbench-method-{self.name}")
        self.process.start()
        child.close()
        self.conn = parent
        atexit.register(self.close)

    def run(self, job: MethodJob) -> tuple[Any, dict]:
        if self.process is None or not self.process.is_alive():
            self._start()
        try:
            self.conn.send(job)
            reply = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.process.exitcode if self.process else None
            self.close()
            raise W2SError(f"method {self.name!r}: its sealed process died (exit code {code}) on task "
                           f"{job.task!r} seed {job.seed}") from None
        if reply[0] == "error":
            raise W2SError(f"method {self.name!r} failed on task {job.task!r} seed {job.seed}: {reply[1]}")
        return reply[1], reply[2]

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self.conn.close()
        self.process = None
