"""A fine-tuned weak model's soft labels, computed through the inference backend (vLLM where it runs the
model), as the AAR sandbox serves its weak labels.

The LoRA adapter is merged into the base weights (merge_lora says why: vLLM then serves a plain folder and
both backends see the same weights). Then, by the student's readout:
- label_tokens: the engine scores the next token after each prompt and p(label=1) is the two label words'
  renormalised probability (the backends' label_probs: one position, both words always present), which is
  how the sandbox reads its weak labels (vLLM, one generated token, the label tokens' logprobs compared);
- linear: the engine pools the merged model's hidden states and the trained head reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from w2sbench.inference import get_backend, merge_lora, renormalise_logprobs
from w2sbench.inference.base import model_max_length
from w2sbench.inference.devices import release_memory


class FineTunedStudent(Protocol):
    """What serving needs of a fine-tuned student (training.finetune.FineTunedStudent has it); a protocol, so
    that inference, below training, does not import it."""

    model_dir: str | None
    readout: str
    pooling: str
    max_length: int
    label_words: Any
    inputs: dict[str, Any]
    head: Any

    def save(self, folder: Path) -> Path: ...

    def release(self) -> None: ...


def served_predictions(
    student: FineTunedStudent, splits: tuple[str, ...], backend_name: str, workdir: Path, tensor_parallel_size: int = 1
) -> tuple[dict[str, np.ndarray], str]:
    """p(label=1) of the student on each split's texts; returns the predictions and the backend's name.

    The student is saved, then released (its weights dropped and their GPU memory handed back) before the
    engine starts: on a GPU the engine needs that memory. It predicts nothing afterwards."""
    saved = student.save(workdir / "student")
    head = None
    if student.readout != "label_tokens":
        head = (student.head.weight.detach().cpu().double().numpy(), student.head.bias.detach().cpu().double().numpy())
    student.release()
    release_memory()
    if (saved / "adapter").exists():
        model_dir = merge_lora(Path(student.model_dir), saved / "adapter", workdir / "merged")
    else:
        model_dir = saved / "model"
    if head is None:
        return _served_label_probs(student, splits, backend_name, model_dir, tensor_parallel_size)
    backend, _ = get_backend(backend_name, model_dir, purpose="features", tensor_parallel_size=tensor_parallel_size)
    weight, bias = head
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


def _served_label_probs(
    student: FineTunedStudent, splits: tuple[str, ...], backend_name: str, model_dir: Path, tensor_parallel_size: int
) -> tuple[dict[str, np.ndarray], str]:
    backend, _ = get_backend(backend_name, model_dir, purpose="label_probs", tensor_parallel_size=tensor_parallel_size)
    # the same truncation as in training (training.finetune._encode): the model's limit, the answer cue kept
    max_length = model_max_length(model_dir, cap=student.max_length)
    try:
        out = {
            split: backend.label_probs(
                model_dir, list(student.inputs[split]), student.label_words, max_length=max_length
            )[:, 1].astype(np.float32)
            for split in splits
        }
    finally:
        backend.close()
    return out, backend.name
