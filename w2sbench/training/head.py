"""The frozen regime's trainer: a linear head (zero-initialised, as in Burns et al.) trained on
standardised, cached backbone features with AdamW and the recipe's schedule. Deterministic on CPU for a
given seed: the seed fixes the minibatch order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .loss import LossFn, soft_cross_entropy
from .recipe import Recipe, lr_factor


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


def train_head(
    features: np.ndarray,
    targets: np.ndarray,
    recipe: Recipe,
    seed: int,
    loss_fn: LossFn = soft_cross_entropy,
    weights: np.ndarray | None = None,
    desc: str | None = None,
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
        return _fit(xs, tt, ww, mean, std, recipe, seed, loss_fn, desc)
    finally:
        torch.set_num_threads(threads)


def _fit(xs, tt, ww, mean, std, recipe: Recipe, seed: int, loss_fn: LossFn, desc) -> LinearHead:
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(xs.shape[1], 2)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.AdamW(linear.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = xs.shape[0]
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warmup = recipe.warmup_fraction(total)
    step = 0
    for _ in tqdm(range(recipe.epochs), desc=desc, leave=False, disable=desc is None):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            for group in opt.param_groups:
                group["lr"] = recipe.lr * lr_factor(step, total, recipe.schedule, warmup)
            per_example = loss_fn(linear(xs[idx]), tt[idx], step / total)
            bw = ww[idx]
            loss = (per_example * bw).sum() / bw.sum().clamp_min(1e-12)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return LinearHead(
        mean=mean,
        std=std,
        weight=linear.weight.detach().numpy().copy(),
        bias=linear.bias.detach().numpy().copy(),
    )
