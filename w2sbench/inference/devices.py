"""Where the stages run, and GPU memory handed back between them.

Why a module of its own: on a GPU every stage shares one card. A trained student that is still referenced,
or blocks the CUDA caching allocator keeps after it is gone, count as used memory for the next stage, and
vLLM will not start an engine unless the memory it asks for is free at that moment ("Free memory on device
... is less than desired GPU memory utilization"). So:

- `release_memory()` is called wherever a model's last use ends (after each fit, before an inference engine
  starts, after each method job in the method process): a garbage collection (transformers and peft models
  hold reference cycles, so dropping the last name does not free them) and, where this process has used
  CUDA, `torch.cuda.empty_cache()`, which hands the allocator's cached blocks back to the driver, where
  another process (a vLLM engine core, the method process) can have them;
- `engine_memory_fraction()` sizes a vLLM engine from the memory that is free when it starts,
  min(0.85, free/total - 0.05), instead of a fixed 0.85 of the card that another process may hold part of;
- `resolve_device()` / `cuda_unavailable_reason()`: a stage that must run on CUDA and cannot says why in one
  line, instead of training on the CPU without a word.

On a CPU-only machine nothing here touches CUDA (`torch.cuda.is_initialized()` is false), so the CPU path
computes exactly what it computed before.
"""

from __future__ import annotations

import gc
import glob
import os
import sys
from typing import Any

from ..errors import W2SError

ENGINE_MEMORY_CAP = 0.85
"""The largest fraction of a card a vLLM engine takes (vLLM's own default is 0.9)."""
ENGINE_MEMORY_MARGIN = 0.05
"""Below the free fraction, for what the process itself allocates while the engine starts (CUDA context,
NCCL buffers) and what other processes allocate meanwhile."""
ENGINE_MEMORY_MIN = 0.05
"""Below this fraction an engine cannot hold a model and its KV cache: refuse with a line rather than let
vLLM fail deep inside its start."""


def release_memory() -> None:
    """Free what is no longer referenced, and hand the CUDA allocator's cached blocks back to the driver.

    Call it after dropping the last reference to a model. Never initialises CUDA: in a process that has not
    used it (every process of a CPU run) only the garbage collection happens."""
    gc.collect()
    torch = sys.modules.get("torch")  # a process that never imported torch holds no CUDA memory
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def cuda_unavailable_reason() -> str | None:
    """None when torch in this process can use a GPU; otherwise one line saying why not."""
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return (
            f"torch {torch.__version__} is a CPU build (scripts/setup.sh installs the CUDA one where nvidia-smi works)"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not glob.glob("/dev/nvidia[0-9]*"):
        return "no NVIDIA device node (/dev/nvidia0, ...) is visible to this process"
    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU: the driver or its library "
        "(libcuda) is not reachable (LD_LIBRARY_PATH?) or too old; nvidia-smi says more"
    )


def resolve_device(device: str | None = None) -> Any:
    """The torch.device to run on: `device` as given ('cuda', 'cuda:1', 'cpu'), or None for CUDA where torch
    sees a GPU, else the CPU. Asking for CUDA where there is none fails with one line."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        why = cuda_unavailable_reason()
        if why:
            raise W2SError(f"this stage must run on CUDA ({device}), but {why}")
    return dev


def memory_fraction(
    free: int, total: int, cap: float = ENGINE_MEMORY_CAP, margin: float = ENGINE_MEMORY_MARGIN
) -> float:
    """The fraction of a card an engine may ask for when `free` of its `total` bytes are free."""
    return round(min(cap, free / total - margin), 4)


def engine_memory_fraction(devices: int = 1) -> float:
    """What a vLLM engine starting now on the first `devices` GPUs may ask for: min(0.85, free/total - 0.05)
    on the card with the least free memory, measured after release_memory(). Raises when that is below 0.05."""
    import torch

    release_memory()
    fractions = []
    for index in range(max(1, min(devices, torch.cuda.device_count()))):
        free, total = torch.cuda.mem_get_info(index)
        fractions.append((memory_fraction(free, total), index, free, total))
    fraction, index, free, total = min(fractions)
    if fraction < ENGINE_MEMORY_MIN:
        raise W2SError(
            f"a vLLM engine cannot start: only {free / 2**30:.1f} GiB of {total / 2**30:.1f} GiB are free on "
            f"cuda:{index} (another process holds the rest: nvidia-smi lists them)"
        )
    return fraction
