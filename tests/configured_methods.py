"""Methods with hyperparameters for tests/test_api.py, in a module of their own: the sealed process loads
a test's method from its file, which must import nothing but w2sbench and numpy."""

from __future__ import annotations

from typing import Literal

import numpy as np

from w2sbench.methods import Method, MethodContext


class Constant(Method):
    """Predicts `p` for every test text (shifted by `shift` on odd seeds): its predictions show which values
    the sealed process built it with."""

    name = "constant_test"
    p: float = 0.5
    shift: Literal["none", "up"] = "none"

    def run(self, ctx: MethodContext) -> np.ndarray:
        up = 0.1 if self.shift == "up" and ctx.seed % 2 else 0.0
        return np.full(len(ctx.test_texts), self.p + up)


class OldStyle(Method):
    """A method from before declared fields: __init__ arguments and a hand-written config()."""

    name = "old_style_test"

    def __init__(self, p: float = 0.5):
        self.p = p

    def config(self) -> dict:
        return {"p": self.p}

    def run(self, ctx: MethodContext) -> np.ndarray:
        return np.full(len(ctx.test_texts), self.p)


class Lingering(Method):
    """Hostile: leaves a detached process that ignores SIGTERM, to outlive its run (LINGER_MARK in its
    command line, for the test to find it)."""

    name = "lingering_test"

    def run(self, ctx: MethodContext) -> np.ndarray:
        import subprocess
        import sys

        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)  # LINGER_MARK"
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL)
        return np.full(len(ctx.test_texts), 0.5)
