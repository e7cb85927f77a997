"""The fixed trainer: every model in a setting (weak, ceiling, each method's student) is trained by this
code with the setting's recipe, so methods differ only in what they declare (loss, targets, weights, data).

Regime "frozen": backbone features are computed once and cached; a linear head (zero-initialised, as in
Burns et al.) is trained on standardised features with Adam and the setting's schedule. Deterministic on
CPU for a given seed: the seed fixes the minibatch order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
"""loss(logits [b, 2], targets [b] = soft p(label=1), step_frac in [0, 1]) -> per-example loss [b]."""


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
    """Cross-entropy against soft targets: -(1-t) log p0 - t log p1, per example."""
    logp = torch.log_softmax(logits, dim=-1)
    return -((1 - targets) * logp[:, 0] + targets * logp[:, 1])


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_frac: float = 0.0

    @classmethod
    def from_setting(cls, train: dict[str, Any], lr_key: str = "lr") -> "TrainConfig":
        return cls(
            epochs=int(train["epochs"]),
            batch_size=int(train["batch_size"]),
            lr=float(train.get(lr_key, train["lr"])),
            weight_decay=float(train.get("weight_decay", 0.0)),
            schedule=str(train.get("schedule", "cosine")),
            warmup_frac=float(train.get("warmup_frac", 0.0)),
        )


def lr_factor(step: int, total: int, schedule: str, warmup_frac: float) -> float:
    """Multiplier of the base learning rate at a step: linear warm-up, then cosine/linear decay or constant."""
    warmup = int(round(warmup_frac * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    return 1.0


@dataclass
class LinearHead:
    """p(label=1 | x) = softmax(W ((x - mean) / std) + b)[1]."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # [2, d]
    bias: np.ndarray  # [2]

    def logits(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float32) - self.mean) / self.std
        return z @ self.weight.T + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = torch.from_numpy(self.logits(features))
        return torch.softmax(logits, dim=-1)[:, 1].numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std, "weight": self.weight, "bias": self.bias}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "LinearHead":
        return cls(a["mean"], a["std"], a["weight"], a["bias"])


def train_head(
    features: np.ndarray,
    targets: np.ndarray,
    config: TrainConfig,
    seed: int,
    loss_fn: LossFn = soft_cross_entropy,
    weights: Optional[np.ndarray] = None,
    desc: Optional[str] = None,
) -> LinearHead:
    """Train a linear head on frozen features against soft targets p(label=1) in [0, 1].

    weights (optional, >= 0) scale each example's loss; the batch loss is their weighted mean."""
    x = np.asarray(features, dtype=np.float32)
    t = np.asarray(targets, dtype=np.float32)
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(f"features must be [n, d] and targets [n]; got {x.shape} and {t.shape}")
    if not np.all((t >= 0) & (t <= 1)):
        raise ValueError("targets must be probabilities in [0, 1]")
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xs = torch.from_numpy((x - mean) / std)
    tt, ww = torch.from_numpy(t), torch.from_numpy(w)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # [32 x d] @ [d x 2] gains nothing from threads and loses to their overhead
    try:
        return _fit(xs, tt, ww, mean, std, config, seed, loss_fn, desc)
    finally:
        torch.set_num_threads(threads)


def _fit(xs, tt, ww, mean, std, config: TrainConfig, seed: int, loss_fn: LossFn, desc) -> LinearHead:
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(xs.shape[1], 2)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.AdamW(linear.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = xs.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    step = 0
    for _ in tqdm(range(config.epochs), desc=desc, leave=False, disable=desc is None):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            for group in opt.param_groups:
                group["lr"] = config.lr * lr_factor(step, total, config.schedule, config.warmup_frac)
            per_example = loss_fn(linear(xs[idx]), tt[idx], step / total)
            bw = ww[idx]
            loss = (per_example * bw).sum() / bw.sum().clamp_min(1e-12)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return LinearHead(
        mean=mean, std=std,
        weight=linear.weight.detach().numpy().copy(), bias=linear.bias.detach().numpy().copy(),
    )
