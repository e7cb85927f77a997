"""The fine-tuning regimes' trainer: LoRA adapters (regime "lora") or every weight (regime "full"), with
one of two readouts (the recipe's `head`):

- `linear` (default): a zero-initialised 2-way linear head on the pooled last hidden state, as Burns et
  al. train their students. The head starts at p = 0.5 everywhere: it knows nothing of the base model's
  own answer.
- `label_tokens`: the causal LM's own LM head at the answer position (the prompt's last token), as the AAR
  sandbox trains its weak and strong models ("label as text"). The two label words' next-token logits
  are the student's 2-way logits, p(label=1) is their renormalised probability, and the loss is the
  full-vocabulary cross-entropy, so the base model's prior over the answer is where training starts.

Same contract as the frozen regime's head trainer (training.head): inputs + soft targets p(label=1) + a
loss loss_fn(logits [b, 2], targets [b], step_frac) -> per-example loss, optional per-example weights, a
seed; the student predicts p(label=1). A method's loss sees [b, 2] logits under both readouts, so every
loss-only method runs unchanged. Under `label_tokens` the trainer adds the label-mass term
(training.loss.label_token_loss), with z the vocabulary logits at the answer position, a and b the label
words' first tokens, p = softmax(z) and t the target p(label=1):

    full-vocabulary CE  -(1-t) log p_a - t log p_b  =  CE_2(t; z_a, z_b)  +  (-log(p_a + p_b))

i.e. the 2-way cross-entropy on the label words' logits plus the negative log of the probability mass the
model puts on the two label words. The trainer's per-example loss is loss_fn(z[:, [a, b]], t, step_frac)
- log(p_a + p_b): for the default soft cross-entropy (vanilla) it is exactly the sandbox's full-vocabulary
cross-entropy with the target mass split over the two label tokens; for any other method its own loss on
the two label words, plus the same label-free term that keeps the answer on the label words. Public API:

    fine_tune(model_dir, texts, targets, recipe, seed, loss_fn=None, weights=None, pooling="last",
              max_length=256, device=None, label_words=None) -> FineTunedStudent
    FineTunedStudent.predict(split) / .predict_texts(texts) -> p(label=1);  .save(dir);  .load(dir)

Lower-level pieces for benchmarks and methods that hold token ids or an in-memory model:
`build_student(model, recipe, ...)`, `train_student(student, ids, ...)`.

Why each choice:
- one optimizer step always sees `batch_size` examples; `grad_accum` only splits them into micro-batches
  (memory), and the loss is normalised by the whole step's weight, so accumulation changes rounding only;
- within a step the examples are sorted by length before they are cut into micro-batches: less padding, and
  the step's set of examples (hence the gradient) is unchanged;
- only the last-token (or mean) hidden state reaches the head: the backbone's base model is called and,
  under `label_tokens`, the LM head runs on the answer position's hidden state only, so full-vocabulary
  logits are computed for one position per example ([b, vocab]), never for every position;
- under `label_tokens` an input longer than max_length keeps its first tokens and its last
  ANSWER_TAIL (the prompt's closing cue, e.g. "Label:" or a chat template's assistant turn), so the answer
  position survives truncation (inference.base.encode); the linear readout truncates on the right;
- sdpa attention; bf16 autocast with bf16 frozen weights and fp32 trainable ones on CUDA when the recipe
  says bfloat16 (fp32 on CPU: deterministic, and CPU bf16 autocast is slow); fused AdamW on CUDA;
  torch.compile of the backbone when the recipe asks (CUDA only);
- activation checkpointing when the recipe asks, or ("auto") when memory needs it: a step that runs out of
  memory is redone with checkpointing on, then with micro-batches halved. Either way the step sees the same
  examples and the same normalised loss, so only rounding changes; each fallback is recorded in
  `student.meta["memory_fallbacks"]`;
- dropout is switched off everywhere (Burns et al. do the same) so that a seed fixes the run; LoRA's own
  dropout follows the recipe (0 by default);
- multi-GPU is left to an existing launcher (accelerate / torchrun with DDP), not done here.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MissingPackageError, W2SError
from ..inference.devices import release_memory, resolve_device
from .loss import LossFn, label_token_loss, soft_cross_entropy
from .recipe import Recipe, lr_factor

STUDENT_FILE = "student.json"
HEAD_FILE = "head.pt"


# ----------------------------------------------------------------------------------------------- student


@dataclass
class FineTunedStudent:
    """A fine-tuned backbone (peft-wrapped for LoRA) with its readout (a linear head, or the LM head's
    label-word logits); predicts p(label=1) on the texts of the splits it was given (`inputs`, set by the
    trainer) or on any texts."""

    model: Any  # the causal LM or encoder as loaded (PeftModel when LoRA)
    head: torch.nn.Linear | None  # the linear readout's head; None under label_tokens
    pooling: str
    max_length: int
    pad_id: int
    device: torch.device
    bf16: bool
    model_dir: str | None = None
    tokenizer: Any = None
    causal: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)  # split -> the texts the model reads
    readout: str = "linear"  # "linear" or "label_tokens" (recipe.head)
    label_words: list[str] = field(default_factory=list)  # label_tokens: the task's two label words
    label_ids: list[int] = field(default_factory=list)  # label_tokens: their first token ids

    # -- forward -----------------------------------------------------------------------------------------
    def body(self) -> Any:
        """The transformer without its LM head: calling it yields hidden states, never vocabulary logits."""
        model = self.model
        if hasattr(model, "get_base_model"):  # PeftModel: LoRA layers are injected in place
            model = model.get_base_model()
        return model.base_model if self.causal else model

    @property
    def checkpointing(self) -> bool:
        return bool(getattr(self.body(), "is_gradient_checkpointing", False))

    def enable_checkpointing(self) -> None:
        """Recompute each layer's activations in the backward pass instead of storing them."""
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def lm(self) -> Any:
        """The causal LM with its LM head (LoRA layers injected in place when peft-wrapped)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def logits(self, rows: Sequence[Sequence[int]], body: Any = None) -> torch.Tensor:
        """The readout's 2-way logits [b, 2] in float32 for token-id rows: the linear head's, or the two label
        words' next-token logits at the answer position."""
        if self.readout == "label_tokens":
            return self.outputs(rows, body)[0]
        return self.head(self._pooled(rows, body).float())

    def outputs(self, rows: Sequence[Sequence[int]], body: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the trainer needs per example: the 2-way logits [b, 2] and, under label_tokens, the label-mass
        term -log(p_a + p_b) [b] of the full-vocabulary softmax (None under the linear readout)."""
        if self.readout != "label_tokens":
            return self.logits(rows, body), None
        z = self.vocab_logits(rows, body)
        two = z[:, self.label_ids]
        return two, torch.logsumexp(z, dim=-1) - torch.logsumexp(two, dim=-1)

    def vocab_logits(self, rows: Sequence[Sequence[int]], body: Any = None) -> torch.Tensor:
        """Full-vocabulary next-token logits [b, vocab] (float32) at each row's last token, through the model's
        own LM head (and its final soft-capping, where the architecture has one)."""
        hidden = self._pooled(rows, body)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            z = self.lm().get_output_embeddings()(hidden).float()
        cap = _softcap(self.lm().config)
        return torch.tanh(z / cap) * cap if cap else z

    def _pooled(self, rows: Sequence[Sequence[int]], body: Any = None) -> torch.Tensor:
        """The pooled last hidden state [b, hidden] of right-padded token-id rows."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if self.causal:
            kwargs["use_cache"] = False
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            hidden = (self.body() if body is None else body)(**kwargs).last_hidden_state
        if self.pooling == "last":
            return hidden[torch.arange(len(rows), device=self.device), mask.sum(-1) - 1]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)

    def predict_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 32) -> np.ndarray:
        """p(label=1) for token-id rows; batches are grouped by length, results in input order."""
        if self.model is None:
            raise ValueError("this student was released (FineTunedStudent.release): its model is gone")
        out = np.zeros(len(ids), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                p1 = torch.softmax(self.logits([ids[i] for i in idx]), dim=-1)[:, 1]
                out[idx] = p1.cpu().numpy()
        self.model.train(was_training)
        return out

    def predict_texts(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """p(label=1) for each text, tokenized exactly as in training."""
        if self.model_dir is None:
            raise ValueError("this student was built from an in-memory model: use predict_ids")
        return self.predict_ids(_encode(self.model_dir, list(texts), self.max_length, self.readout), batch_size)

    def predict(self, split: str) -> np.ndarray:
        """p(label=1) on one of the splits the trainer handed over."""
        if split not in self.inputs:
            raise ValueError(f"this student has no texts for split {split!r} (it has {sorted(self.inputs)})")
        return self.predict_texts(self.inputs[split])

    def release(self) -> None:
        """Drop the model and the head so that their memory can go back (inference.devices.release_memory):
        after a fit whose predictions are made, and before an inference engine starts beside it. The
        student predicts nothing afterwards; save() first what is still needed."""
        self.model, self.head = None, None

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, out_dir: Path | str) -> Path:
        """adapter/ (peft format, mergeable with w2sbench.inference.merge_lora) or model/ (full fine-tuning),
        head.pt (linear readout) and student.json. The base model is referenced by its folder, not copied."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        is_lora = hasattr(self.model, "get_base_model")
        self.model.save_pretrained(out / ("adapter" if is_lora else "model"))
        if not is_lora and self.tokenizer is not None:
            self.tokenizer.save_pretrained(out / "model")
        if self.head is not None:
            torch.save({k: v.detach().cpu() for k, v in self.head.state_dict().items()}, out / HEAD_FILE)
        info = {
            "format": 1,
            "base_model_dir": self.model_dir,
            "regime": "lora" if is_lora else "full",
            "pooling": self.pooling,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "causal": self.causal,
            "bf16": self.bf16,
            "readout": self.readout,
            "label_words": list(self.label_words),
            "label_ids": list(self.label_ids),
            **self.meta,
        }
        (out / STUDENT_FILE).write_text(json.dumps(info, indent=1))
        return out

    @classmethod
    def load(cls, out_dir: Path | str, device: str | None = None) -> FineTunedStudent:
        out = Path(out_dir)
        info = json.loads((out / STUDENT_FILE).read_text())
        dev = _device(device)
        bf16 = bool(info["bf16"]) and dev.type == "cuda"
        if info["regime"] == "lora":
            from peft import PeftModel

            base = _load_backbone(info["base_model_dir"], info["causal"], bf16, dev)
            model = PeftModel.from_pretrained(base, str(out / "adapter"))
        else:
            model = _load_backbone(str(out / "model"), info["causal"], bf16, dev)
        readout = info.get("readout", "linear")
        head = None
        if readout == "linear":
            head = _new_head(_hidden_size(model), dev)
            head.load_state_dict(torch.load(out / HEAD_FILE, map_location=dev))
        model.to(dev).eval()
        fixed = ("format", "base_model_dir", "regime", "pooling", "max_length", "pad_id", "causal", "bf16")
        fixed += ("readout", "label_words", "label_ids")
        meta = {k: v for k, v in info.items() if k not in fixed}
        return cls(
            model=model,
            head=head,
            pooling=info["pooling"],
            max_length=info["max_length"],
            pad_id=info["pad_id"],
            device=dev,
            bf16=bf16,
            model_dir=info["base_model_dir"],
            tokenizer=None,
            causal=info["causal"],
            meta=meta,
            readout=readout,
            label_words=list(info.get("label_words", [])),
            label_ids=list(info.get("label_ids", [])),
        )


# ---------------------------------------------------------------------------------------------- building


def _device(device: str | None) -> torch.device:
    """None: CUDA where torch sees a GPU, else the CPU; 'cuda' where there is none fails with one line."""
    return resolve_device(device)


def _encode(model_dir: str, texts: list[str], max_length: int, readout: str = "linear") -> list[list[int]]:
    """Token ids as the student reads them; under label_tokens an over-long input keeps its closing tokens."""
    from ..inference.base import ANSWER_TAIL, encode, model_max_length

    tail = ANSWER_TAIL if readout == "label_tokens" else 0
    return encode(model_dir, texts, model_max_length(model_dir, cap=max_length), keep_tail=tail)


def _softcap(config: Any) -> float | None:
    """The architecture's final logit soft-capping (Gemma 2), applied after the LM head; None when it has none."""
    config = getattr(config, "text_config", None) or config
    cap = getattr(config, "final_logit_softcapping", None)
    return float(cap) if cap else None


def _check_label_token_model(model: Any) -> None:
    """label_tokens applies the LM head to one hidden state itself: refuse architectures whose logits need
    more than the head and a soft-cap (a logit scale), rather than read them wrong."""
    config = getattr(model.config, "text_config", None) or model.config
    for key in ("logit_scale", "logits_scaling"):
        value = getattr(config, key, None)
        if value not in (None, 1, 1.0):
            raise W2SError(
                f"head label_tokens does not support {type(model).__name__} (its config scales logits: {key})"
            )
    if model.get_output_embeddings() is None:
        raise W2SError(f"head label_tokens needs a model with an LM head; {type(model).__name__} has none")


def _no_dropout_config(model_dir: str) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    for key, value in config.to_dict().items():
        if ("dropout" in key or "pdrop" in key) and isinstance(value, float):
            setattr(config, key, 0.0)
    return config


def _load_backbone(model_dir: str, causal: bool, bf16: bool, device: torch.device) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM

    cls = AutoModelForCausalLM if causal else AutoModel
    kwargs: dict[str, Any] = {
        "config": _no_dropout_config(model_dir),
        "dtype": torch.bfloat16 if bf16 else torch.float32,
    }
    if device.type == "cuda":
        # Straight into GPU memory: loaded on the CPU first, Qwen3-4B in bf16 (8 GB) would not fit beside the
        # CUDA runtime in a method process's host-memory quota; the weights are the same either way.
        kwargs["device_map"] = str(device)
    try:
        model = cls.from_pretrained(model_dir, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError):  # an architecture without sdpa support: its default attention
        model = cls.from_pretrained(model_dir, **kwargs)
    return model.to(device)


def _hidden_size(model: Any) -> int:
    config = model.config
    config = getattr(config, "text_config", None) or config
    for key in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise ValueError("cannot tell the model's hidden size from its config")


def _new_head(hidden: int, device: torch.device) -> torch.nn.Linear:
    head = torch.nn.Linear(hidden, 2).to(device)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return head


def _switch_off_dropout(model: Any) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def build_student(
    model: Any,
    recipe: Recipe,
    seed: int,
    pooling: str = "last",
    max_length: int = 256,
    pad_id: int = 0,
    device: str | None = None,
    causal: bool | None = None,
    model_dir: str | None = None,
    tokenizer: Any = None,
    label_ids: Sequence[int] | None = None,
    label_words: Sequence[str] | None = None,
) -> FineTunedStudent:
    """Wrap a loaded transformers model for training: LoRA adapters (or all weights trainable) + the recipe's
    readout (a zero head, or the LM head read at the label words `label_ids`).

    The seed fixes the adapters' random initialisation. On CUDA with a bfloat16 recipe the frozen weights
    are cast to bf16 and the trainable ones kept in fp32."""
    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
    dev = _device(device)
    bf16 = recipe.dtype == "bfloat16" and dev.type == "cuda"
    if causal is None:
        causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (model.config.architectures or []))
    label_tokens = recipe.head == "label_tokens"
    if label_tokens:
        if not causal:
            raise W2SError(
                f"head label_tokens needs a causal language model; {model_dir or type(model).__name__} is not one"
            )
        if pooling != "last":
            raise W2SError("head label_tokens reads the answer position, the last token: pooling must be 'last'")
        if label_ids is None or len(label_ids) != 2 or label_ids[0] == label_ids[1]:
            raise W2SError(f"head label_tokens needs the two label words' distinct token ids, got {label_ids!r}")
        _check_label_token_model(model)
    _switch_off_dropout(model)
    torch.manual_seed(seed)
    if recipe.lora is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise MissingPackageError("peft", "the lora training regime") from None
        lora = recipe.lora
        targets = lora.get("target_modules", "all-linear")
        config = LoraConfig(
            r=int(lora["r"]),
            lora_alpha=float(lora["alpha"]),
            lora_dropout=float(lora.get("dropout", 0.0)),
            target_modules=targets,
            bias="none",
            use_rslora=bool(lora.get("rslora", False)),  # scale alpha/sqrt(r) instead of alpha/r
        )
        for p in model.parameters():
            p.requires_grad_(False)
        model = get_peft_model(model, config)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
        out_emb = model.get_output_embeddings() if causal and not label_tokens else None
        if out_emb is not None and out_emb.weight is not model.get_input_embeddings().weight:
            out_emb.weight.requires_grad_(False)  # never used: the linear head reads hidden states
    model.to(dev)
    if bf16:
        for p in model.parameters():
            p.data = p.data.to(torch.float32 if p.requires_grad else torch.bfloat16)
    student = FineTunedStudent(
        model=model,
        head=None if label_tokens else _new_head(_hidden_size(model), dev),
        pooling=pooling,
        max_length=max_length,
        pad_id=pad_id,
        device=dev,
        bf16=bf16,
        model_dir=model_dir,
        tokenizer=tokenizer,
        causal=causal,
        meta={"recipe": asdict(recipe), "seed": seed},
        readout=recipe.head,
        label_words=list(label_words or []),
        label_ids=[int(i) for i in label_ids] if label_tokens else [],
    )
    if recipe.gradient_checkpointing is True:
        student.enable_checkpointing()
    model.train()
    return student


# ---------------------------------------------------------------------------------------------- training


def _optimizer(params: list[torch.nn.Parameter], recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    fused = device.type == "cuda"
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay, fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay, fused=fused
        )
    if recipe.optimizer == "adamw_8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise MissingPackageError("bitsandbytes", "optimizer adamw_8bit (a CUDA machine)") from None
        return bnb.optim.AdamW8bit(params, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def step_groups(indices: Sequence[int], lengths: Sequence[int], micro_batch_size: int) -> list[list[int]]:
    """One optimizer step's examples cut into micro-batches of similar length (longest first, stable)."""
    ordered = sorted(indices, key=lambda i: -lengths[i])
    return [ordered[s : s + micro_batch_size] for s in range(0, len(ordered), micro_batch_size)]


def _relieve_memory(student: FineTunedStudent, recipe: Recipe, micro_batch: int, step: int) -> int:
    """After an out-of-memory step (whose tensors the caller has dropped): the cached blocks back, then
    checkpointing on (recipe "auto"), else half the micro-batch; the new micro-batch size. Re-raises when
    neither is left."""
    release_memory()
    if recipe.gradient_checkpointing == "auto" and not student.checkpointing:
        student.enable_checkpointing()
        change = {"step": step, "gradient_checkpointing": True, "micro_batch_size": micro_batch}
    elif micro_batch > 1:
        micro_batch = (micro_batch + 1) // 2
        change = {"step": step, "gradient_checkpointing": student.checkpointing, "micro_batch_size": micro_batch}
    else:
        raise torch.OutOfMemoryError(
            "out of memory with one example per micro-batch"
            + (
                ""
                if student.checkpointing
                else " (set gradient_checkpointing: auto or true in the setting's train block)"
            )
        )
    student.meta.setdefault("memory_fallbacks", []).append(change)
    warnings.warn(f"out of memory at step {step}: retrying the step with {change}", stacklevel=3)
    return micro_batch


def train_student(
    student: FineTunedStudent,
    ids: Sequence[Sequence[int]],
    targets: np.ndarray,
    recipe: Recipe,
    seed: int,
    loss_fn: LossFn | None = None,
    weights: np.ndarray | None = None,
    max_steps: int | None = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train in place; returns one record per optimizer step (loss, lr, tokens, seconds).

    loss_fn is called once per micro-batch on [b, 2] logits; per-example losses make accumulation exact up to
    rounding. Under the label_tokens readout the label-mass term is added per example (module docstring).
    `max_steps` stops early (benchmarks); the schedule still spans the full run."""
    loss_fn = loss_fn or soft_cross_entropy
    t = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    if t.shape != (len(ids),):
        raise ValueError(f"targets must have one value per input: {tuple(t.shape)} vs {len(ids)}")
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError("targets must be probabilities in [0, 1]")
    w = torch.ones_like(t) if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if w.shape != t.shape or bool((w < 0).any()):
        raise ValueError("weights must be one non-negative value per input")
    if any(len(r) == 0 for r in ids):
        raise ValueError("every input needs at least one token")
    lengths = [len(r) for r in ids]
    dev = student.device
    params = [p for p in student.model.parameters() if p.requires_grad]
    if student.head is not None:
        params += list(student.head.parameters())
    opt = _optimizer(params, recipe, dev)
    body = student.body()
    if recipe.compile and dev.type == "cuda":
        body = torch.compile(body, dynamic=True)
    n = len(ids)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warmup = recipe.warmup_fraction(total)
    gen = torch.Generator().manual_seed(seed)
    micro_batch = recipe.micro_batch_size
    history: list[dict[str, float]] = []
    step = 0
    student.model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=gen).tolist()
        for start in range(0, n, recipe.batch_size):
            if max_steps is not None and step >= max_steps:
                return history
            began = time.perf_counter()
            idx = order[start : start + recipe.batch_size]
            lr = recipe.lr * lr_factor(step, total, recipe.schedule, warmup)
            for group in opt.param_groups:
                group["lr"] = lr
            step_weight = w[idx].sum().clamp_min(1e-12).to(dev)
            while True:
                opt.zero_grad(set_to_none=True)
                step_loss, out_of_memory = 0.0, False
                logits = label_mass = per_example = loss = None
                try:
                    for micro in step_groups(idx, lengths, micro_batch):
                        logits, label_mass = student.outputs([ids[i] for i in micro], body)
                        if label_mass is None:
                            per_example = loss_fn(logits, t[micro].to(dev), step / total)
                        else:
                            per_example = label_token_loss(logits, label_mass, t[micro].to(dev), step / total, loss_fn)
                        loss = (per_example * w[micro].to(dev)).sum() / step_weight
                        loss.backward()
                        step_loss += float(loss.detach())
                except torch.OutOfMemoryError:
                    out_of_memory = True  # handled outside the except block, which still holds the tensors
                # The failed micro-batch's outputs hold its autograd graph (every saved activation): dropped
                # here, before the retry, or the retry runs beside them and runs out of memory again.
                logits = label_mass = per_example = loss = None
                if not out_of_memory:
                    break
                opt.zero_grad(set_to_none=True)
                micro_batch = _relieve_memory(student, recipe, micro_batch, step)
            if recipe.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            record = {
                "step": step,
                "loss": step_loss,
                "lr": lr,
                "tokens": float(sum(lengths[i] for i in idx)),
                "micro_batch_size": micro_batch,
                "seconds": time.perf_counter() - began,
            }
            history.append(record)
            if on_step is not None:
                on_step(record)
            step += 1
    return history


def fine_tune(
    model_dir: Path | str,
    texts: Sequence[str],
    targets: np.ndarray,
    recipe: Recipe | dict[str, Any],
    seed: int,
    loss_fn: LossFn | None = None,
    weights: np.ndarray | None = None,
    pooling: str = "last",
    max_length: int = 256,
    device: str | None = None,
    label_words: Sequence[str] | None = None,
) -> FineTunedStudent:
    """Fine-tune the model in `model_dir` on texts against soft targets p(label=1); see the module docstring.

    The regime follows the recipe: LoRA when it has a `lora` block, every weight otherwise; the readout
    follows its `head` (label_tokens needs the task's two `label_words`)."""
    from ..inference.base import is_causal_lm, label_token_ids, load_tokenizer, read_config

    model_dir = str(model_dir)
    rec = recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)
    dev = _device(device)
    causal = is_causal_lm(read_config(model_dir))
    tokenizer = load_tokenizer(model_dir)
    pad_id = next((int(c) for c in (tokenizer.pad_token_id, tokenizer.eos_token_id) if c is not None), 0)
    label_ids = None
    if rec.head == "label_tokens":
        if not label_words or len(label_words) != 2:
            raise W2SError(f"head label_tokens needs the task's two label words, got {label_words!r}")
        if not causal:
            raise W2SError(f"head label_tokens needs a causal language model; {model_dir} is not one")
        label_ids = label_token_ids(model_dir, list(label_words))
    ids = _encode(model_dir, list(texts), max_length, rec.head)
    model = _load_backbone(model_dir, causal, rec.dtype == "bfloat16" and dev.type == "cuda", dev)
    student = build_student(
        model,
        rec,
        seed,
        pooling=pooling,
        max_length=max_length,
        pad_id=pad_id,
        device=str(dev),
        causal=causal,
        model_dir=model_dir,
        tokenizer=tokenizer,
        label_ids=label_ids,
        label_words=label_words,
    )
    history = train_student(student, ids, targets, rec, seed, loss_fn=loss_fn, weights=weights)
    student.meta["final_loss"] = history[-1]["loss"] if history else None
    student.model.eval()
    return student
