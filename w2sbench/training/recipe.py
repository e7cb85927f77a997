"""The recipe: the one typed set of training hyperparameters that the fixed trainer reads.

A setting's `train` block is parsed into one Recipe per role when the setting loads (Setting.recipes),
so the weak model's own learning rate (`weak_lr`) is applied in one place and every stage, cache key and
method process sees the same typed object.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

ROLES = ("weak", "strong")
HEADS = ("linear", "label_tokens")
"""How a fine-tuned student reads p(label=1) (training.finetune says why each):
- linear: a zero-initialised 2-way linear head on the pooled last hidden state (Burns et al.);
- label_tokens: the model's own LM head at the answer position, p(label) from the two label words'
  next-token probabilities (the AAR sandbox's causal-LM "label as text" readout)."""


@dataclass(frozen=True)
class Recipe:
    """Both trainers read the first six fields; the rest only matter when a backbone is fine-tuned."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine, linear or constant, after the warm-up
    warmup_frac: float = 0.0
    grad_accum: int = 1  # micro-batches per optimizer step (memory only: the step still sees batch_size)
    warmup_steps: int | None = None  # overrides warmup_frac when set
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = None
    dtype: str = "float32"
    lora: dict[str, Any] | None = None  # None: full fine-tuning (or the frozen regime's head)
    head: str = "linear"  # the readout of the fine-tuning regimes: "linear" or "label_tokens" (HEADS)
    gradient_checkpointing: bool | str = False  # True, False or "auto": switched on at the first out-of-memory
    compile: bool = False

    @classmethod
    def from_dict(cls, train: dict[str, Any]) -> Recipe:
        """A recipe from a `train` block; keys the trainer does not read (weak_lr, notes) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in train.items() if k in known}
        for key, kind in (
            ("epochs", int),
            ("batch_size", int),
            ("grad_accum", int),
            ("lr", float),
            ("weight_decay", float),
            ("warmup_frac", float),
        ):
            if key in kwargs:
                kwargs[key] = kind(kwargs[key])
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
        if kwargs.get("lora") is not None:
            kwargs["lora"] = dict(kwargs["lora"])
        recipe = cls(**kwargs)
        if recipe.epochs < 1 or recipe.batch_size < 1 or recipe.grad_accum < 1 or recipe.lr <= 0:
            raise ValueError(f"recipe needs epochs, batch_size, grad_accum >= 1 and lr > 0; got {train}")
        if recipe.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {recipe.head!r}")
        if recipe.gradient_checkpointing not in (True, False, "auto"):
            raise ValueError(
                f"gradient_checkpointing must be true, false or 'auto', got {recipe.gradient_checkpointing!r}"
            )
        return recipe

    @classmethod
    def for_role(cls, train: dict[str, Any], role: str) -> Recipe:
        """The role's recipe: the weak model may have its own learning rate (`weak_lr`)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        recipe = cls.from_dict(train)
        if role == "weak" and "weak_lr" in train:
            recipe = replace(recipe, lr=float(train["weak_lr"]))
        return recipe

    def key(self) -> dict[str, Any]:
        """Every field, for cache keys and records: a changed default changes the key too."""
        return asdict(self)

    @property
    def micro_batch_size(self) -> int:
        return math.ceil(self.batch_size / self.grad_accum)

    def warmup_fraction(self, total_steps: int) -> float:
        if self.warmup_steps is not None:
            return min(1.0, self.warmup_steps / max(1, total_steps))
        return self.warmup_frac


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
