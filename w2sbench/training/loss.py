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


def label_token_loss(
    logits: torch.Tensor, label_mass: torch.Tensor, targets: torch.Tensor, step_frac: float, loss_fn: LossFn
) -> torch.Tensor:
    """The label_tokens readout's per-example loss: the method's loss on the two label words' logits plus
    the label-mass term, loss_fn(z[:, [a, b]], t, step_frac) - log(p_a + p_b).

    `logits` [b, 2] are the label words' next-token logits z_a, z_b and `label_mass` [b] is
    -log(p_a + p_b) = logsumexp(z) - logsumexp(z_a, z_b) of the full-vocabulary softmax p = softmax(z).
    With loss_fn = soft_cross_entropy this is exactly the full-vocabulary cross-entropy against the target
    that puts mass 1 - t on token a and t on token b (the AAR sandbox's loss):
        -(1-t) log p_a - t log p_b = -(1-t) z_a - t z_b + logsumexp(z)
                                   = [-(1-t) z_a - t z_b + logsumexp(z_a, z_b)] + [logsumexp(z) - logsumexp(z_a, z_b)].
    The second term reads no label: whatever a method's loss, it keeps the answer on the label words."""
    return loss_fn(logits, targets, step_frac) + label_mass
