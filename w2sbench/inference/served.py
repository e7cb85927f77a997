"""A fine-tuned weak model's soft labels, computed through the inference backend (vLLM where it runs the
model), as the AAR sandbox serves its weak labels.

The LoRA adapter is merged into the base weights (merge_lora says why: vLLM then serves a plain folder and
both backends see the same weights), the engine pools the hidden states, and the trained head reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from w2sbench.inference import get_backend, merge_lora, renormalise_logprobs

if TYPE_CHECKING:
    from w2sbench.training.finetune import FineTunedStudent


def served_predictions(
    student: FineTunedStudent, splits: tuple[str, ...], backend_name: str, workdir: Path, tensor_parallel_size: int = 1
) -> tuple[dict[str, np.ndarray], str]:
    """p(label=1) of the student on each split's texts; returns the predictions and the backend's name."""
    saved = student.save(workdir / "student")
    if (saved / "adapter").exists():
        model_dir = merge_lora(Path(student.model_dir), saved / "adapter", workdir / "merged")
    else:
        model_dir = saved / "model"
    backend, _ = get_backend(backend_name, model_dir, purpose="features", tensor_parallel_size=tensor_parallel_size)
    weight = student.head.weight.detach().cpu().double().numpy()
    bias = student.head.bias.detach().cpu().double().numpy()
    try:
        out = {}
        for split in splits:
            feats = np.asarray(
                backend.features(model_dir, list(student.inputs[split]), student.pooling, student.max_length),
                dtype=np.float64,
            )
            out[split] = renormalise_logprobs(feats @ weight.T + bias)[:, 1]  # the head's softmax
    finally:
        backend.close()  # the engine serves a temporary folder that is about to go
    return out, backend.name
