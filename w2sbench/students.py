"""The fixed trainer behind the weak, ceiling and method stages, whatever the setting's regime.

A Trainer fits a model of one role (weak or strong) on one split's inputs against soft targets
p(label=1) and returns a Student that predicts p(label=1) on the splits it was given. Both kinds are plain
picklable data, so the method stage can run in a separate process:
- FrozenTrainer: the backbone's cached features + a linear head (regime "frozen");
- FineTuneTrainer: LoRA adapters or every weight, plus the head (regimes "lora" and "full", w2sbench.lora).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from .training import LinearHead, LossFn, TrainConfig, soft_cross_entropy, train_head


class Student(Protocol):
    def predict(self, split: str) -> np.ndarray: ...


class Trainer(Protocol):
    regime: str
    epochs: int

    def splits(self) -> tuple[str, ...]: ...

    def fit(self, split: str, targets: np.ndarray, seed: int, loss_fn: Optional[LossFn] = None,
            weights: Optional[np.ndarray] = None, subset: Optional[np.ndarray] = None) -> Student: ...


def _select(split_len: int, targets: np.ndarray, weights: Optional[np.ndarray], subset: Optional[np.ndarray]):
    targets = np.asarray(targets, dtype=np.float32)
    if targets.shape != (split_len,):
        raise ValueError(f"targets must have one value per example of the split ({split_len}), got shape {targets.shape}")
    idx = np.arange(split_len) if subset is None else np.asarray(subset, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("cannot train on an empty subset")
    w = None if weights is None else np.asarray(weights, dtype=np.float32)[idx]
    return idx, targets[idx], w


@dataclass(frozen=True)
class HeadStudent:
    head: LinearHead
    features: dict[str, np.ndarray]

    def predict(self, split: str) -> np.ndarray:
        return self.head.predict_proba(self.features[split])


@dataclass(frozen=True)
class FrozenTrainer:
    """A linear head on frozen, cached backbone features (one [n, d] array per split)."""

    features: dict[str, np.ndarray]
    config: TrainConfig
    regime: str = "frozen"

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def splits(self) -> tuple[str, ...]:
        return tuple(self.features)

    def fit(self, split, targets, seed, loss_fn=None, weights=None, subset=None) -> HeadStudent:
        idx, t, w = _select(len(self.features[split]), targets, weights, subset)
        head = train_head(self.features[split][idx], t, self.config, seed, loss_fn or soft_cross_entropy, w)
        return HeadStudent(head, self.features)


@dataclass(frozen=True)
class TunedStudent:
    student: Any  # w2sbench.lora.LoraStudent
    inputs: dict[str, list[str]]

    def predict(self, split: str) -> np.ndarray:
        return self.student.predict(self.inputs[split])


@dataclass(frozen=True)
class FineTuneTrainer:
    """The model itself fine-tuned (LoRA or full, as the recipe says) with a head on its pooled state."""

    model_dir: str
    inputs: dict[str, list[str]]  # split -> the texts the model reads
    recipe: dict
    pooling: str
    max_length: int
    regime: str = "lora"

    @property
    def epochs(self) -> int:
        return int(self.recipe["epochs"])

    def splits(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    def fit(self, split, targets, seed, loss_fn=None, weights=None, subset=None) -> TunedStudent:
        from .lora import fit_lora

        idx, t, w = _select(len(self.inputs[split]), targets, weights, subset)
        texts = [self.inputs[split][i] for i in idx]
        student = fit_lora(self.model_dir, texts, t, self.recipe, seed, loss_fn=loss_fn, weights=w,
                           pooling=self.pooling, max_length=self.max_length)
        return TunedStudent(student, self.inputs)


def recipe_for(train: dict, role: str) -> dict:
    """The setting's recipe for a role: the weak model may have its own learning rate (weak_lr)."""
    recipe = {k: v for k, v in train.items() if k != "weak_lr"}
    if role == "weak" and "weak_lr" in train:
        recipe["lr"] = train["weak_lr"]
    return recipe


def train_config_for(train: dict, role: str) -> TrainConfig:
    return TrainConfig.from_setting(train, "weak_lr" if role == "weak" else "lr")


def served_predictions(student: TunedStudent, splits: tuple[str, ...], backend_name: str, workdir: Path,
                       tensor_parallel_size: int = 1) -> tuple[dict[str, np.ndarray], str]:
    """A fine-tuned student's p(label=1) computed through the inference backend (vLLM where it runs the
    model): the LoRA adapter is merged into the base weights (inference.merge_lora says why: vLLM then
    serves a plain folder and both backends see the same weights), the engine pools the hidden states,
    and the trained head reads them. Returns the predictions and the backend's name."""
    from .inference import get_backend, merge_lora, renormalise_logprobs

    tuned = student.student
    saved = tuned.save(workdir / "student")
    if (saved / "adapter").exists():
        model_dir = merge_lora(Path(tuned.model_dir), saved / "adapter", workdir / "merged")
    else:
        model_dir = saved / "model"
    backend, _ = get_backend(backend_name, model_dir, purpose="features", tensor_parallel_size=tensor_parallel_size)
    weight = tuned.head.weight.detach().cpu().double().numpy()
    bias = tuned.head.bias.detach().cpu().double().numpy()
    try:
        out = {}
        for split in splits:
            feats = np.asarray(backend.features(model_dir, list(student.inputs[split]), tuned.pooling, tuned.max_length),
                               dtype=np.float64)
            out[split] = renormalise_logprobs(feats @ weight.T + bias)[:, 1]  # the head's softmax
    finally:
        backend.close()  # the engine serves a temporary folder that is about to go
    return out, backend.name
