"""The reference methods that ship with w2sbench."""

from __future__ import annotations

from .base import LossMethod
from .registry import register_method


@register_method
class Vanilla(LossMethod):
    """Naive weak-to-strong: the strong student trained with cross-entropy on the weak soft labels
    (Burns et al. 2023, "xent"): loss = -(1-w) log p0 - w log p1."""

    name = "vanilla"
    description = "strong model trained on the weak soft labels (cross-entropy)"
