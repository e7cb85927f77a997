"""The loss contract every trainer and every loss-only method shares."""

from __future__ import annotations

from collections.abc import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
"""loss(logits [b, 2], targets [b] = soft p(label=1), step_frac in [0, 1]) -> per-example loss [b]."""


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
    """Cross-entropy against soft targets: -(1-t) log p0 - t log p1, per example."""
    logp = torch.log_softmax(logits, dim=-1)
    return -((1 - targets) * logp[:, 0] + targets * logp[:, 1])
