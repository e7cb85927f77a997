"""Where derived artifacts live: one cache folder, overridable for tests and shared clusters."""

from __future__ import annotations

import os
import sys
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


DATA_WHEELS_ENV = "W2SBENCH_DATA_WHEELS"


def data_wheel_dir() -> Path:
    """The folder of pinned data wheels (data-wheels.txt) that wheel-sourced tasks read their rows from.

    scripts/setup.sh downloads them into the environment's own share/ folder, so the harness finds them
    without configuration, beside the packages the other offline tasks read; $W2SBENCH_DATA_WHEELS points
    elsewhere (a shared folder, a test's). Never created here: a missing folder is a missing wheel.
    """
    root = os.environ.get(DATA_WHEELS_ENV)
    return Path(root).expanduser() if root else Path(sys.prefix) / "share" / "w2sbench" / "data-wheels"
