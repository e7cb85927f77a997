"""The method API: what a W2S method receives (a sealed context: no ground truth anywhere) and returns
(p(label=1) for each test text).

Two forms:
- a loss: subclass LossMethod and write `loss(logits, weak_probs, step_frac)` (and optionally
  `targets(ctx)` for per-example targets/weights); the fixed trainer trains the strong student with it;
- anything else: subclass Method and write `run(context) -> predictions on the test texts`.

The context is built in a separate process from a typed job of plain data (see w2sbench/sealed.py), so
nothing reachable from it, not even through closures or module globals, holds a ground-truth label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import W2SError
from ..training.loss import LossFn, soft_cross_entropy
from ..training.recipe import Recipe
from ..training.students import Student, Trainer
from . import params
from .params import Hyperparameter

SPLITS_SEEN = ("train_unlabel", "test")


def _new_compute() -> dict:
    return {"train_examples": 0, "train_example_epochs": 0, "predict_examples": 0, "inference_prompts": 0}


@dataclass
class MethodContext:
    """Everything a method may use: texts, weak soft labels, the strong model's fixed trainer (frozen
    features + head, or fine-tuning), the models through the inference backend, a seeded RNG. Never a
    ground-truth label of train_unlabel or test.

    Not frozen, on purpose: two fields are records the harness reads back after the method returns.
    `compute` counts what the method trained and asked the models; `saw` names what it read (weak labels,
    features, model outputs), so that results can say what the method used and a method that claims to
    be teacher-free can be checked. `rng` is one generator per context (repeated reads continue it)."""

    task: str
    setting: str
    seed: int
    unlabel_texts: tuple[str, ...]
    test_texts: tuple[str, ...]
    trainer: Trainer = field(repr=False)  # the strong model's fixed trainer
    label_words: tuple[str, ...]
    _weak_unlabel: np.ndarray = field(repr=False)  # weak p(label=1) on train_unlabel
    _weak_test: np.ndarray = field(repr=False)  # weak p(label=1) on test
    prompt_template: str = "{text}"
    # (role, prompts, label_words) -> [n, len(label_words)] next-token probabilities of the label words
    _label_probs: Callable[[str, list[str], list[str]], np.ndarray] | None = field(default=None, repr=False)
    # (role, prompts, max_tokens, temperature, seed) -> completions
    _generate: Callable[..., list[str]] | None = field(default=None, repr=False)
    compute: dict = field(default_factory=_new_compute)
    saw: set = field(default_factory=set)
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    @property
    def recipe(self) -> Recipe:
        """The setting's fixed recipe for the strong model."""
        return self.trainer.recipe

    # ---- data ----------------------------------------------------------------------------------------
    @property
    def weak_unlabel(self) -> np.ndarray:
        """Weak p(label=1) on train_unlabel (a copy)."""
        self.saw.add("weak soft labels on train_unlabel")
        return self._weak_unlabel.copy()

    @property
    def weak_test(self) -> np.ndarray:
        """Weak p(label=1) on test (a copy)."""
        self.saw.add("weak soft labels on test")
        return self._weak_test.copy()

    def strong_features(self, split: str) -> np.ndarray:
        """Frozen strong-model features of 'train_unlabel' or 'test' (cached, shared by all methods).
        Only in the frozen regime: a fine-tuned strong model has no fixed features."""
        _check_split(split)
        if self.trainer.regime != "frozen":
            raise W2SError(
                f"strong_features() exists only in the frozen regime; this setting fine-tunes "
                f"({self.trainer.regime}): train through train_strong()"
            )
        self.saw.add(f"strong-model features of {split}")
        return self.trainer.features[split].copy()

    def texts(self, split: str) -> tuple[str, ...]:
        _check_split(split)
        return self.unlabel_texts if split == "train_unlabel" else self.test_texts

    def prompts(self, split: str) -> list[str]:
        """The task's prompt around each text of a split (what the models see)."""
        return [self.prompt_template.format(text=t) for t in self.texts(split)]

    # ---- models through the inference backend -------------------------------------------------------------
    def label_probs(self, prompts: list[str], role: str = "strong", label_words: list[str] | None = None) -> np.ndarray:
        """p(label=1) per prompt from the `role` model's next-token probabilities of the label words
        (renormalised over the two words). The engine starts on first use, in this process."""
        if self._label_probs is None:
            raise RuntimeError("this context has no inference backend")
        words = list(label_words or self.label_words)
        self.compute["inference_prompts"] += len(prompts)
        self.saw.add(f"{role} model (inference)")
        return np.asarray(self._label_probs(role, list(prompts), words), dtype=np.float32)[:, 1]

    def zero_shot(self, split: str, role: str = "strong") -> np.ndarray:
        """p(label=1) of the `role` model prompted zero-shot with the task prompt on a split's texts."""
        return self.label_probs(self.prompts(split), role)

    def generate(
        self, prompts: list[str], max_tokens: int, role: str = "strong", temperature: float = 0.0
    ) -> list[str]:
        """Completions from the `role` model (greedy at temperature 0; seeded by the run's seed)."""
        if self._generate is None:
            raise RuntimeError("this context has no inference backend")
        self.compute["inference_prompts"] += len(prompts)
        self.saw.add(f"{role} model (inference)")
        return self._generate(role, list(prompts), max_tokens, temperature, self.seed)

    # ---- the fixed trainer ------------------------------------------------------------------------------
    def train_strong(
        self,
        targets: np.ndarray,
        loss_fn: LossFn | None = None,
        weights: np.ndarray | None = None,
        subset: np.ndarray | None = None,
    ) -> StrongStudent:
        """Train the strong student with the setting's fixed trainer on train_unlabel (or the `subset`
        indices of it) against soft targets p(label=1), one per train_unlabel text (targets and weights
        are indexed like train_unlabel; `subset` picks rows). Seeded by this run's seed."""
        if self.trainer.regime == "frozen":
            self.saw.update(f"strong-model features of {split}" for split in SPLITS_SEEN)
        student = self.trainer.fit("train_unlabel", targets, self.seed, loss_fn or soft_cross_entropy, weights, subset)
        n_used = len(self.unlabel_texts) if subset is None else len(subset)
        self.compute["train_examples"] += int(n_used)
        self.compute["train_example_epochs"] += int(n_used) * self.trainer.recipe.epochs
        return StrongStudent(student, self)


def _check_split(split: str) -> None:
    if split not in SPLITS_SEEN:
        raise ValueError(f"a method sees only 'train_unlabel' and 'test' texts, not {split!r}")


@dataclass(frozen=True)
class StrongStudent:
    """A strong model trained by the fixed trainer; predicts p(label=1) on the splits a method sees."""

    student: Student
    ctx: MethodContext

    def predict(self, split: str = "test") -> np.ndarray:
        _check_split(split)
        probs = self.student.predict(split)
        self.ctx.compute["predict_examples"] += int(len(probs))
        return probs


class Method:
    """A W2S method. Subclasses set `name` (the registry key), `description`, and implement run().

    Hyperparameters are typed class fields with defaults (`aux_coef: float = 0.5`, see params.py):
    `Cls(aux_coef=0.25)` checks and sets them, and config(), the cache key, the results record and the
    name in results (`run_name`) follow from them."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    uses_weak_labels: ClassVar[bool] = True  # False marks the result teacher-free
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {}  # collected from the fields, never written by hand

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.hyperparameters = params.collect(cls)

    def __init__(self, **hyperparameters: Any) -> None:
        for key, value in params.check_overrides(type(self), hyperparameters).items():
            setattr(self, key, value)

    def config(self) -> dict[str, Any]:
        """Hyperparameters that determine the output (part of the cache key and the results record): the
        declared fields' values. A method from before declared fields may override it."""
        return {key: getattr(self, key) for key in type(self).hyperparameters}

    def hyperparameter_values(self) -> dict[str, Any]:
        """The declared fields' values, checked: what the method process rebuilds the method from
        (`type(self)(**values)`)."""
        cls = type(self)
        values = params.check_overrides(cls, {key: getattr(self, key) for key in cls.hyperparameters}, self.name)
        if not cls.hyperparameters and self.config() != cls().config():
            raise W2SError(
                f"method {self.name!r} was given configured ({self.config()}), but its hyperparameters are not "
                "declared as typed class fields, so its sealed process cannot rebuild it: declare them as fields "
                "(CONTRIBUTING.md, 'Adding a method')"
            )
        return values

    @property
    def run_name(self) -> str:
        """The method's name in results: `name`, plus the hyperparameters that differ from their defaults,
        e.g. `logconf[aux_coef=0.25]` (the same text selects it on the command line)."""
        cls = type(self)
        return params.run_name(self.name, cls.hyperparameters, {k: getattr(self, k) for k in cls.hyperparameters})

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={getattr(self, k)!r}" for k in type(self).hyperparameters)
        return f"{type(self).__name__}({values})"

    def run(self, ctx: MethodContext) -> np.ndarray:
        raise NotImplementedError


class LossMethod(Method):
    """Train the strong student on the weak soft labels of train_unlabel with `loss`, predict test."""

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        """Per-example loss [b] from student logits [b, 2], targets p(label=1) [b] and training progress."""
        return soft_cross_entropy(logits, weak_probs, step_frac)

    def targets(self, ctx: MethodContext) -> tuple[np.ndarray, np.ndarray | None]:
        """Training targets and optional per-example weights; default: the weak soft labels, unweighted."""
        return ctx.weak_unlabel, None

    def run(self, ctx: MethodContext) -> np.ndarray:
        targets, weights = self.targets(ctx)
        return ctx.train_strong(targets, self.loss, weights).predict("test")
