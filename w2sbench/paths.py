"""Where derived artifacts live: one cache folder, overridable for tests and shared clusters."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The root of every cached artifact (converted models, features, trained heads, predictions)."""
    root = os.environ.get("W2SBENCH_CACHE") or platformdirs.user_cache_dir("w2sbench")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path:
    """The checkout holding tasks/ and leaderboard/ (the package's parent folder)."""
    return Path(__file__).resolve().parent.parent
