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


class ICM(Method):
    """Teacher-free: internal coherence maximization (Wen et al. 2025, "Unsupervised Elicitation of Language
    Models", arXiv:2506.10139) in the frozen regime. Labels for train_unlabel are searched for that the strong
    model finds mutually predictable and consistent with its own belief, with no weak label read; the strong
    student is then trained on them by the fixed trainer and predicts test.

    The paper scores a labelling by how well the model predicts each label from all the others (in context)
    and searches by annealing over label changes. Here, with y in {-1, +1}^n on train_unlabel:
      mutual predictability: a ridge probe on the strong model's standardised, centred features Z of
        train_unlabel, each label predicted from the others (leave-one-out). With H = Z (Z'Z + ridge n I)^-1 Z'
        the leave-one-out residual is (y_i - (Hy)_i) / (1 - H_ii); their sum of squares (PRESS) is y'Qy,
        Q = (I - H) D^-2 (I - H), D = diag(1 - H_ii);
      the model's own belief: l_i, the strong model's zero-shot log-odds of label 1 (ctx.zero_shot on
        train_unlabel, the task prompt), centred at its median and scaled to unit variance;
      U(y) = y'Qy - prior_weight * s * sum_i y_i l_i,   minimised,
    s the median |change of y'Qy| over single flips of the starting labels (so that prior_weight is a
    ratio). A flip of y_k changes U by 4 Q_kk - 4 y_k (Qy)_k + 2 prior_weight s y_k l_k: O(n) per accepted
    flip. The search starts from the zero-shot median split, makes `sweeps` Metropolis passes in a seeded
    random order at a temperature falling geometrically from start_temperature * s to end_temperature * s,
    then greedy passes until no flip lowers U; y and -y score alike on y'Qy, and the belief term breaks the
    tie (the labels are also oriented to correlate positively with the zero-shot scores).

    Why the belief term: the paper's in-context predictor knows the task from its prompt and pretraining,
    a probe fitted from scratch does not. Searched from random labels, y'Qy alone finds splits of the
    representation that are as coherent as the task's and unrelated to it (50-68% label accuracy on four
    of the five default tasks, benchmarks/icm_search.py); the zero-shot belief anchors the search to the
    task the prompt asks about.
    Centring Z means no probe predicts a labelling's mean, so lopsided labellings score badly, which stands
    in for the paper's consistency step against degenerate solutions (and assumes neither class is rare).
    Deterministic per seed (ctx.rng); under a second per task and seed at 1,000 examples and 640 features.

    In a regime that fine-tunes there are no fixed features, and leave-one-out predictability would take a
    fine-tune per example: the method refuses there with one line."""

    name = "icm"
    description = (
        "teacher-free: train_unlabel labelled by mutual predictability under the strong model's features and its "
        "zero-shot belief (internal coherence maximization, Wen et al. 2025), then the strong student trained on them"
    )
    uses_weak_labels = False
    paper = "https://arxiv.org/abs/2506.10139"  # the leaderboard card's paper field

    ridge: float = 1.0  # the probe's ridge penalty, per example
    prior_weight: float = 0.5  # the zero-shot belief's weight against mutual predictability
    sweeps: int = 30  # annealing passes over train_unlabel
    start_temperature: float = 0.1  # relative to s (see above)
    end_temperature: float = 0.01

    def run(self, ctx: MethodContext) -> np.ndarray:
        from ..errors import W2SError

        if ctx.trainer.regime != "frozen":
            raise W2SError(
                f"icm needs the strong model's frozen features; setting {ctx.setting!r} fine-tunes "
                f"({ctx.trainer.regime}), where leave-one-out predictability would take a fine-tune per example"
            )
        labels = coherent_labels(
            ctx.strong_features("train_unlabel"),
            ctx.zero_shot("train_unlabel"),
            ctx.rng,
            ridge=self.ridge,
            prior_weight=self.prior_weight,
            sweeps=self.sweeps,
            start_temperature=self.start_temperature,
            end_temperature=self.end_temperature,
        )
        ctx.compute["icm_positive_fraction"] = float(labels.mean())
        return ctx.train_strong(labels.astype(np.float32)).predict("test")


def coherent_labels(
    features: np.ndarray,
    prior: np.ndarray,
    rng: np.random.Generator,
    ridge: float = 1.0,
    prior_weight: float = 0.5,
    sweeps: int = 30,
    start_temperature: float = 0.1,
    end_temperature: float = 0.01,
) -> np.ndarray:
    """ICM's search (the ICM class says what it minimises): 0/1 labels [n] of the rows of `features` [n, d],
    with `prior` [n] the model's own p(label=1) per row (its zero-shot answer)."""
    x = np.asarray(features, dtype=np.float64)
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    n, d = z.shape
    hat = z @ np.linalg.solve(z.T @ z + ridge * n * np.eye(d), z.T)  # [n, n]
    resid = (np.eye(n) - hat) / (1.0 - np.diag(hat))[:, None]  # rows: leave-one-out residual operators
    q = resid.T @ resid  # y'Qy: the sum of squared leave-one-out residuals
    p = np.clip(np.asarray(prior, dtype=np.float64), 1e-6, 1 - 1e-6)
    logit = np.log(p) - np.log1p(-p)
    belief = (logit - np.median(logit)) / (logit.std() or 1.0)
    y = np.where(belief > 0, 1.0, -1.0)  # the zero-shot median split
    g = q @ y
    diag = np.diag(q).copy()
    scale = float(np.median(np.abs(4 * diag - 4 * y * g))) or 1.0
    lin = 2 * prior_weight * scale * belief  # a flip of y_k adds y_k lin_k from the belief term
    for t in scale * np.geomspace(start_temperature, end_temperature, sweeps) if sweeps > 0 else ():
        order = rng.permutation(n)
        bar = -t * np.log(rng.random(n))  # Metropolis: flip k when its change is below t log(1/u)
        for k, limit in zip(order, bar):
            if 4 * diag[k] - 4 * y[k] * g[k] + y[k] * lin[k] < limit:
                g -= 2 * y[k] * q[k]  # Q is symmetric: row k, contiguous
                y[k] = -y[k]
    while True:  # greedy: every flip that lowers U, until none does
        changes = 4 * diag - 4 * y * g + y * lin
        k = int(np.argmin(changes))
        if changes[k] >= -1e-12:
            break
        g -= 2 * y[k] * q[k]
        y[k] = -y[k]
    if np.dot(y - y.mean(), belief) < 0:  # only without a belief term can the search end mirrored
        y = -y
    return (y > 0).astype(np.int64)
