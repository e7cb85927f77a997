"""The fixed trainer: every model in a setting (weak, ceiling, each method's student) is trained by this
package with the setting's recipe, so methods differ only in what they declare (loss, targets, weights,
data).

- recipe: the typed hyperparameters, one per role, parsed when the setting loads;
- loss: the loss contract (LossFn) and the soft cross-entropy every built-in starts from;
- head: the frozen regime's linear head on cached features;
- finetune: the lora and full regimes (a fine-tuned backbone plus a head);
- students: one Trainer and one Student type per regime, the objects stages and methods train through.

Importing the package is light (settings load it without torch); the torch modules load on first use.
"""

from importlib import import_module
from typing import Any

from .recipe import Recipe, lr_factor

_LAZY = {
    "LinearHead": "head",
    "train_head": "head",
    "LossFn": "loss",
    "soft_cross_entropy": "loss",
    "FineTuneTrainer": "students",
    "FrozenTrainer": "students",
    "HeadStudent": "students",
    "Student": "students",
    "Trainer": "students",
}

__all__ = ["Recipe", "lr_factor", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
