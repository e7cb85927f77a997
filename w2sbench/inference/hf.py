"""The transformers backend: always available, the reference the vLLM numbers are checked against.

Inputs are sorted by length and batched so that padding stays small; features use right padding (the last
real token is found from the attention mask), scoring and generation use left padding with explicit
position ids so that the next-token position is the last column for every row.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from w2sbench.inference.base import (
    ANSWER_TAIL,
    InferenceBackend,
    Pooling,
    check_pooling,
    encode,
    is_causal_lm,
    label_token_ids,
    load_tokenizer,
    model_max_length,
    read_config,
    renormalise_logprobs,
)
from w2sbench.inference.devices import release_memory
from w2sbench.provenance import package_version

_DTYPES = ("float32", "bfloat16", "float16")


def _torch_dtype(name: str) -> Any:
    import torch

    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {name!r}")
    return getattr(torch, name)


def _pad_id(model_dir: Path) -> int:
    tok = load_tokenizer(model_dir)
    for cand in (tok.pad_token_id, tok.eos_token_id, 0):
        if cand is not None:
            return int(cand)
    return 0


def _batches(ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped longest-first so that each batch holds similar lengths (little padding)."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class HFBackend(InferenceBackend):
    """transformers forward passes on CPU or one GPU; models are loaded once per folder and kept."""

    name = "hf"

    def __init__(self, dtype: str = "float32", device: str | None = None, batch_size: int | None = None):
        import torch

        _torch_dtype(dtype)
        self.dtype = dtype
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # 16 keeps a 270M model's activations small on a 2-core CPU; a GPU takes far more per batch.
        self.batch_size = batch_size or (16 if self.device == "cpu" else 64)
        self._models: dict[str, Any] = {}

    # -- loading -----------------------------------------------------------------------------------------
    def _model(self, model_dir: Path) -> Any:
        """One model per folder: the LM class for decoders (its base model gives features), else AutoModel."""
        key = str(Path(model_dir).resolve())
        if key not in self._models:
            from transformers import AutoModel, AutoModelForCausalLM

            cls = AutoModelForCausalLM if is_causal_lm(read_config(model_dir)) else AutoModel
            kwargs: dict[str, Any] = {"dtype": _torch_dtype(self.dtype)}
            if self.device.startswith("cuda"):
                release_memory()  # what earlier stages left cached, before another model takes its place
                kwargs["device_map"] = self.device  # straight into GPU memory, never whole in host memory
            model = cls.from_pretrained(key, **kwargs)
            self._models[key] = model.to(self.device).eval()
        return self._models[key]

    def _lm(self, model_dir: Path, what: str) -> Any:
        if not is_causal_lm(read_config(model_dir)):
            raise ValueError(f"{what} needs a causal language model; {model_dir} is not one")
        return self._model(model_dir)

    def _left_padded(self, model_dir: Path, ids: list[list[int]]) -> dict[str, Any]:
        """Left-padded batch with position ids counted from each row's first real token."""
        import torch

        width = max(len(x) for x in ids)
        pad = _pad_id(model_dir)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}

    # -- interface ---------------------------------------------------------------------------------------
    def features(
        self,
        model_dir: Path,
        texts: list[str],
        pooling: Pooling,
        max_length: int = 256,
        desc: str | None = None,
    ) -> np.ndarray:
        import torch

        check_pooling(pooling)
        model = self._model(model_dir)
        body = model.base_model if is_causal_lm(read_config(model_dir)) else model
        ids = encode(model_dir, texts, model_max_length(model_dir, cap=max_length))
        pad = _pad_id(model_dir)
        out: np.ndarray | None = None
        bar = tqdm(total=len(ids), desc=desc or "features (hf)", disable=desc is None, unit="text")
        with torch.inference_mode():
            for idx in _batches(ids, self.batch_size):
                rows = [ids[i] for i in idx]
                width = max(len(r) for r in rows)
                input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
                mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.device)
                hidden = body(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
                if pooling == "last":
                    last = mask.sum(-1) - 1  # right padding: the last real token of each row
                    pooled = hidden[torch.arange(len(rows), device=self.device), last]
                else:
                    m = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * m).sum(1) / m.sum(1)
                vecs = pooled.cpu().numpy().astype(np.float32)
                if out is None:
                    out = np.zeros((len(ids), vecs.shape[1]), dtype=np.float32)
                out[idx] = vecs
                bar.update(len(rows))
        bar.close()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def label_probs(
        self,
        model_dir: Path,
        prompts: list[str],
        label_words: list[str],
        desc: str | None = None,
        max_length: int | None = None,
    ) -> np.ndarray:
        import torch

        label_ids = label_token_ids(model_dir, label_words)
        model = self._lm(model_dir, "label_probs")
        ids = encode(model_dir, prompts, max_length, keep_tail=ANSWER_TAIL)
        out = np.zeros((len(ids), len(label_ids)), dtype=np.float32)
        index = torch.tensor(label_ids, device=self.device)
        bar = tqdm(total=len(ids), desc=desc or "label probs (hf)", disable=desc is None, unit="prompt")
        with torch.inference_mode():
            for idx in _batches(ids, self.batch_size):
                batch = self._left_padded(model_dir, [ids[i] for i in idx])
                # logits_to_keep=1: only the next-token position, never a [batch, seq, vocab] tensor.
                logits = model(**batch, logits_to_keep=1).logits[:, -1, :].float()
                out[idx] = renormalise_logprobs(logits[:, index].cpu().numpy())
                bar.update(len(idx))
        bar.close()
        return out

    def generate(
        self,
        model_dir: Path,
        prompts: list[str],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        desc: str | None = None,
    ) -> list[str]:
        import torch

        model = self._lm(model_dir, "generate")
        tok = load_tokenizer(model_dir)
        ids = encode(model_dir, prompts, None)
        texts: list[str] = [""] * len(ids)
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        bar = tqdm(total=len(ids), desc=desc or "generate (hf)", disable=desc is None, unit="prompt")
        with torch.inference_mode():
            for idx in _batches(ids, self.batch_size):
                batch = self._left_padded(model_dir, [ids[i] for i in idx])
                batch.pop("position_ids")  # generate() derives positions from the mask itself
                gen = model.generate(
                    **batch,
                    max_new_tokens=max_tokens,
                    pad_token_id=_pad_id(model_dir),
                    top_k=None,
                    top_p=None,
                    **sampling,
                )
                width = batch["input_ids"].shape[1]
                for row, i in enumerate(idx):
                    texts[i] = tok.decode(gen[row, width:], skip_special_tokens=True)
                bar.update(len(idx))
        bar.close()
        return texts

    def describe(self) -> dict[str, Any]:
        import torch

        return {
            "backend": self.name,
            "dtype": self.dtype,
            "device": self.device,
            "batch_size": self.batch_size,
            "torch": torch.__version__,
            "transformers": package_version("transformers"),
        }

    def close(self) -> None:
        self._models.clear()
        release_memory()


def merge_lora(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Fold a LoRA adapter into its base weights and save a plain model folder (with the tokenizer).

    Why: vLLM's LoRA path on CPU covers fewer architectures and layer types than peft, and it computes the
    low-rank update separately (different rounding). Serving merged weights lets vLLM run any fine-tuned
    model it can run at all, and gives both backends the very same weights, hence the same numbers.
    The folder is written next to `out_dir` and renamed into place, so a crash never leaves half a model.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModel, AutoModelForCausalLM

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    cls = AutoModelForCausalLM if is_causal_lm(read_config(base_dir)) else AutoModel
    base = cls.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        merged.save_pretrained(tmp)
        load_tokenizer(base_dir).save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
