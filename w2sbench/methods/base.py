"""The method API: what a W2S method receives (a sealed context: no ground truth anywhere) and returns
(p(label=1) for each test text).

Two forms:
- a loss: subclass LossMethod and write `loss(logits, weak_probs, step_frac)`; the fixed trainer trains
  the strong student on the weak soft labels with it;
- anything else: subclass Method and write `run(context) -> predictions on the test texts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional

import numpy as np
import torch

from ..training import LinearHead, LossFn, TrainConfig, soft_cross_entropy, train_head


@dataclass(frozen=True)
class MethodContext:
    """Everything a method may use. It holds texts, weak soft labels and the strong model's features,
    never a ground-truth label of train_unlabel or test."""

    task: str
    setting: str
    seed: int
    unlabel_texts: tuple[str, ...]
    test_texts: tuple[str, ...]
    weak_unlabel: np.ndarray  # weak p(label=1) on train_unlabel
    weak_test: np.ndarray  # weak p(label=1) on test
    train_config: TrainConfig
    label_words: tuple[str, ...]
    _features: Callable[[str], np.ndarray] = field(repr=False)
    compute: dict = field(default_factory=lambda: {"train_examples": 0, "train_example_epochs": 0})

    def strong_features(self, split: str) -> np.ndarray:
        """Frozen strong-model features of 'train_unlabel' or 'test' (cached, shared by all methods)."""
        if split not in ("train_unlabel", "test"):
            raise ValueError(f"a method sees only 'train_unlabel' and 'test' texts, not {split!r}")
        return self._features(split)

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def train_strong(
        self,
        targets: np.ndarray,
        loss_fn: Optional[LossFn] = None,
        weights: Optional[np.ndarray] = None,
        subset: Optional[np.ndarray] = None,
    ) -> "StrongStudent":
        """Train the strong student with the setting's fixed trainer on train_unlabel (or the `subset`
        indices of it) against soft targets p(label=1), one per train_unlabel text (targets and weights
        are indexed like train_unlabel; `subset` picks rows). Seeded by this run's seed."""
        targets = np.asarray(targets, dtype=np.float32)
        n = len(self.unlabel_texts)
        if targets.shape != (n,):
            raise ValueError(f"targets must have one value per train_unlabel text ({n}), got shape {targets.shape}")
        idx = np.arange(n) if subset is None else np.asarray(subset, dtype=np.int64)
        if len(idx) == 0:
            raise ValueError("train_strong: empty subset")
        w = None if weights is None else np.asarray(weights, dtype=np.float32)[idx]
        self.compute["train_examples"] += int(len(idx))
        self.compute["train_example_epochs"] += int(len(idx)) * self.train_config.epochs
        head = train_head(self.strong_features("train_unlabel")[idx], targets[idx], self.train_config, self.seed,
                          loss_fn or soft_cross_entropy, w)
        return StrongStudent(head, self)


@dataclass(frozen=True)
class StrongStudent:
    """A strong model trained by the fixed trainer; predicts p(label=1) on the splits a method sees."""

    head: LinearHead
    ctx: MethodContext

    def predict(self, split: str = "test") -> np.ndarray:
        return self.head.predict_proba(self.ctx.strong_features(split))


class Method:
    """A W2S method. Subclasses set `name` (the registry key), `description`, and implement run()."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    uses_weak_labels: ClassVar[bool] = True  # False marks the result teacher-free

    def config(self) -> dict:
        """Hyperparameters that determine the output (part of the cache key and the results record)."""
        return {}

    def run(self, ctx: MethodContext) -> np.ndarray:
        raise NotImplementedError


class LossMethod(Method):
    """Train the strong student on the weak soft labels of train_unlabel with `loss`, predict test."""

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        return soft_cross_entropy(logits, weak_probs, step_frac)

    def targets(self, ctx: MethodContext) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Training targets and optional per-example weights; default: the weak soft labels, unweighted."""
        return ctx.weak_unlabel, None

    def run(self, ctx: MethodContext) -> np.ndarray:
        targets, weights = self.targets(ctx)
        return ctx.train_strong(targets, self.loss, weights).predict("test")
