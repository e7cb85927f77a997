"""The fixed trainer behind the weak, ceiling and method stages, one per regime.

A Trainer fits a model of one role (weak or strong) on one split's inputs against soft targets
p(label=1) and returns a Student that predicts p(label=1) on the splits it was given. Both trainers are
plain picklable data, so the method process receives one and trains through it:
- FrozenTrainer -> HeadStudent: the backbone's cached features + a linear head (regime "frozen");
- FineTuneTrainer -> FineTunedStudent: LoRA adapters or every weight, plus the readout (regimes "lora", "full";
  a linear head, or the LM head's label-word logits: recipe.head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .head import LinearHead, train_head
from .loss import LossFn, soft_cross_entropy
from .recipe import Recipe


class Student(Protocol):
    def predict(self, split: str) -> np.ndarray: ...


class Trainer(Protocol):
    recipe: Recipe

    @property
    def regime(self) -> str: ...

    def fit(
        self,
        split: str,
        targets: np.ndarray,
        seed: int,
        loss_fn: LossFn | None = None,
        weights: np.ndarray | None = None,
        subset: np.ndarray | None = None,
    ) -> Student: ...


def _select(split_len: int, targets: np.ndarray, weights: np.ndarray | None, subset: np.ndarray | None):
    targets = np.asarray(targets, dtype=np.float32)
    if targets.shape != (split_len,):
        raise ValueError(
            f"targets must have one value per example of the split ({split_len}), got shape {targets.shape}"
        )
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
    recipe: Recipe

    @property
    def regime(self) -> str:
        return "frozen"

    def fit(self, split, targets, seed, loss_fn=None, weights=None, subset=None) -> HeadStudent:
        idx, t, w = _select(len(self.features[split]), targets, weights, subset)
        head = train_head(self.features[split][idx], t, self.recipe, seed, loss_fn or soft_cross_entropy, w)
        return HeadStudent(head, self.features)


@dataclass(frozen=True)
class FineTuneTrainer:
    """The model itself fine-tuned (LoRA when the recipe has a lora block, else every weight) with the
    recipe's readout: a linear head on its pooled state, or its LM head at the label words (label_tokens)."""

    model_dir: str
    inputs: dict[str, list[str]]  # split -> the texts the model reads
    recipe: Recipe
    pooling: str
    max_length: int
    label_words: tuple[str, ...] = ()  # the task's two label words (the label_tokens readout reads them)
    # where fit() trains: "cuda" (there, or fail with one line: the method process gets the harness's device),
    # "cpu", or None (CUDA where torch sees a GPU)
    device: str | None = None

    @property
    def regime(self) -> str:
        return "lora" if self.recipe.lora is not None else "full"

    def fit(self, split, targets, seed, loss_fn=None, weights=None, subset=None):
        from .finetune import fine_tune

        idx, t, w = _select(len(self.inputs[split]), targets, weights, subset)
        texts = [self.inputs[split][i] for i in idx]
        student = fine_tune(
            self.model_dir,
            texts,
            t,
            self.recipe,
            seed,
            loss_fn=loss_fn,
            weights=w,
            pooling=self.pooling,
            max_length=self.max_length,
            device=self.device,
            label_words=list(self.label_words) or None,
        )
        student.inputs = self.inputs
        return student
