"""The reference methods that ship with w2sbench. Each names its source and shows its formula; the
loss-only ones are a `loss()` the fixed trainer calls per minibatch (logits [b, 2], soft weak targets
p1 [b], step_frac in [0, 1]) returning a per-example loss [b]."""

from __future__ import annotations

import numpy as np
import torch

from ..training import soft_cross_entropy
from .base import LossMethod, Method, MethodContext


class Vanilla(LossMethod):
    """Naive weak-to-strong: the strong student trained with cross-entropy on the weak soft labels
    (Burns et al. 2023, "xent"): loss = -(1-w) log p0 - w log p1."""

    name = "vanilla"
    description = "strong model trained on the weak soft labels (cross-entropy)"


class VanillaHard(LossMethod):
    """Cross-entropy on the weak labels hardened at 0.5 (Burns et al. 2023, hard-label baseline):
    target = 1[w >= 0.5]."""

    name = "vanilla_hard"
    description = "strong model trained on the weak labels thresholded at 0.5"

    def targets(self, ctx: MethodContext) -> tuple[np.ndarray, np.ndarray | None]:
        return (ctx.weak_unlabel >= 0.5).astype(np.float32), None


class LogConf(LossMethod):
    """Auxiliary confidence loss (Burns et al. 2023, `logconf_loss_fn` in openai/weak-to-strong):
        c      = aux_coef * min(1, step_frac / warmup_frac)            (linear warm-up)
        t      = quantile over the batch of p0, at q = mean(w)          (class balance of the weak labels)
        s      = 1[p0 < t]                                             (the student's hardened prediction)
        target = (1 - c) * w + c * s                                   (s detached)
        loss   = -(1 - target) log p0 - target log p1
    Burns' code ramps c as aux_coef * step_frac during warm-up (reaching only 0.1*aux_coef, then jumping);
    we ramp linearly to aux_coef, as the paper describes."""

    name = "logconf"
    description = "auxiliary confidence loss: weak labels mixed with the student's hardened predictions (Burns)"

    aux_coef: float = 0.5
    warmup_frac: float = 0.2

    def coef(self, step_frac: float) -> float:
        ramp = min(1.0, step_frac / self.warmup_frac) if self.warmup_frac > 0 else 1.0
        return self.aux_coef * ramp

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        c = self.coef(step_frac)
        p0 = torch.softmax(logits.detach(), dim=-1)[:, 0]
        threshold = torch.quantile(p0, weak_probs.mean())
        hardened = (p0 < threshold).float()
        return soft_cross_entropy(logits, (1 - c) * weak_probs + c * hardened, step_frac)


class Product(LossMethod):
    """Product loss (Burns et al. 2023, `product_loss_fn`): the target is the product of the student's and
    the weak model's distributions, renormalised and detached:
        target_k = p_k^beta * w_k^alpha / sum_j p_j^beta * w_j^alpha,   loss = -sum_k target_k log p_k."""

    name = "product"
    description = "target = student prediction x weak label, renormalised (Burns)"

    alpha: float = 1.0
    beta: float = 1.0

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        p = torch.softmax(logits.detach(), dim=-1)
        target = p.pow(self.beta) * torch.stack([1 - weak_probs, weak_probs], dim=-1).pow(self.alpha)
        return soft_cross_entropy(logits, (target / target.sum(dim=-1, keepdim=True))[:, 1], step_frac)


class Window(LossMethod):
    """Confidence-window loss (EleutherAI/w2s, `confidence_window_loss` in w2s/loss.py): cross-entropy on
    the weak labels only where the student is still uncertain, max_k p_k < 0.5 + radius; other examples
    contribute 0 but still count in the batch mean (their code: sum over the window / batch size)."""

    name = "window"
    description = "cross-entropy on the weak labels only where the student is uncertain (EleutherAI/w2s)"

    radius: float = 0.15

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        uncertain = torch.softmax(logits.detach(), dim=-1).max(dim=-1).values < 0.5 + self.radius
        return soft_cross_entropy(logits, weak_probs, step_frac) * uncertain.float()


class Entropy(LogConf):
    """Entropy-regularised loss (EleutherAI/w2s `entropy`: their log-confidence loss with harden=False):
        target = (1 - c) * w + c * p,   loss = -sum_k target_k log p_k = (1 - c) CE(w, p) + c H(p),
    c ramped as in logconf. Deviation, on purpose: their code detaches p in the target, and with a
    softmax that makes the auxiliary gradient exactly zero (d/dz CE = p - target = (1 - c)(p - w)), i.e.
    vanilla at a (1 - c)-scaled rate. We keep p attached, which is the entropy minimisation the name says."""

    name = "entropy"
    description = "cross-entropy on the weak labels plus the student's own entropy, warmed up (EleutherAI/w2s)"

    def loss(self, logits: torch.Tensor, weak_probs: torch.Tensor, step_frac: float) -> torch.Tensor:
        c = self.coef(step_frac)
        p1 = torch.softmax(logits, dim=-1)[:, 1]
        return soft_cross_entropy(logits, (1 - c) * weak_probs + c * p1, step_frac)


class ConfidentOnly(LossMethod):
    """Train only on the examples the weak model is confident about, weak p outside [low, high]
    (the confidence filter of the Anthropic automated alignment researcher study, AAR); soft targets.
    Falls back to every example when the filter would leave none."""

    name = "confident_only"
    description = "vanilla on the subset where the weak label is outside [low, high] (AAR; default [0.25, 0.75])"

    low: float = 0.25
    high: float = 0.75

    def subset(self, weak: np.ndarray) -> np.ndarray:
        keep = np.flatnonzero((weak < self.low) | (weak > self.high))
        return keep if len(keep) else np.arange(len(weak))

    def run(self, ctx: MethodContext) -> np.ndarray:
        weak = ctx.weak_unlabel
        keep = self.subset(weak)
        ctx.compute["kept_fraction"] = float(len(keep) / len(weak))
        return ctx.train_strong(weak, self.loss, subset=keep).predict("test")


class Bootstrap(Method):
    """Iterative self-training (bootstrapping; Burns et al. 2023 sec. 4.3.1 in spirit, classic
    pseudo-labelling): train on the weak soft labels, then `rounds` times relabel train_unlabel with the
    student's own predictions hardened at 0.5, target = (1 - mix) * w + mix * 1[p >= 0.5], and retrain."""

    name = "bootstrap"
    description = "the strong student relabels train_unlabel with its own predictions and retrains"

    rounds: int = 2
    mix: float = 0.5

    def run(self, ctx: MethodContext) -> np.ndarray:
        weak = ctx.weak_unlabel
        student = ctx.train_strong(weak)
        for _ in range(self.rounds):
            pseudo = (student.predict("train_unlabel") >= 0.5).astype(np.float32)
            student = ctx.train_strong((1 - self.mix) * weak + self.mix * pseudo)
        return student.predict("test")


class StrongZeroShot(Method):
    """No teacher: the strong model prompted zero-shot with the task prompt; p(label=1) is the
    next-token probability of the second label word renormalised over the two (through the inference
    backend, vLLM where available). Never reads the weak labels."""

    name = "strong_zeroshot"
    description = "the strong model prompted zero-shot, no teacher and no training"
    uses_weak_labels = False

    def run(self, ctx: MethodContext) -> np.ndarray:
        return ctx.zero_shot("test", role="strong")


class Majority(Method):
    """The cheat the AAR study caught: predict the most frequent weak label for every test text. It reads
    the weak labels but trains nothing; the prediction is the weak positive rate on train_unlabel
    (hardened at 0.5), the same for every test text, so AUROC is 0.5."""

    name = "majority"
    description = "predict the most frequent weak label everywhere (a baseline to beat, AAR)"

    def run(self, ctx: MethodContext) -> np.ndarray:
        rate = float(np.mean(ctx.weak_unlabel >= 0.5))
        return np.full(len(ctx.test_texts), rate, dtype=np.float32)
