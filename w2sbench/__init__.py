"""w2sbench: one honest PGR for a weak-to-strong supervision method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = ["evaluate", "EvalResult", "__version__"]

if TYPE_CHECKING:
    from .api import EvalResult, evaluate


def __getattr__(name: str) -> Any:
    """`w2sbench.evaluate` and `w2sbench.EvalResult`, imported on first use: `import w2sbench` stays light
    (the leaderboard's install imports it without torch)."""
    if name in ("evaluate", "EvalResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'w2sbench' has no attribute {name!r}")
