"""w2sbench: one honest PGR for a weak-to-strong supervision method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = ["evaluate", "EvalResult", "load_method", "__version__"]

if TYPE_CHECKING:
    from .api import EvalResult, evaluate
    from .isolation.resolve import load_method


def __getattr__(name: str) -> Any:
    """`w2sbench.evaluate`, `w2sbench.EvalResult` and `w2sbench.load_method`, imported on first use:
    `import w2sbench` stays light (the leaderboard's install imports it without torch)."""
    if name in ("evaluate", "EvalResult"):
        from . import api

        return getattr(api, name)
    if name == "load_method":  # a built-in, or the stand-in of a method the sandbox describes
        from .isolation.resolve import load_method

        return load_method
    raise AttributeError(f"module 'w2sbench' has no attribute {name!r}")
