"""A setting's architectures with random weights, built from their configs: no download needed.

Why: the GPU settings name models we cannot fetch on our machines (no hub). Smoke tests and throughput
measurements need only the shapes, so the published config.json of each model is written out below and a
model of the same class is built from it with random weights. ``scale`` shrinks width and depth for tiny
CPU variants that keep the family's structure (head size, grouped-query ratio, tied embeddings).

Sources: the config.json files published on the Hugging Face hub for each id (Qwen/Qwen1.5-0.5B-Chat and
Qwen/Qwen1.5-0.5B share one; Qwen/Qwen3-4B-Base; meta-llama/Meta-Llama-3-8B; openai-community/gpt2,
gpt2-medium, gpt2-large, gpt2-xl), copied field by field; fields that only matter for generation defaults
(generation limits, chat tokens) are left out. Parameter counts the tests check: Qwen3-4B-Base 4,022,468,096,
Qwen1.5-0.5B 0.464B, gpt2 124M, gpt2-large 774M, gpt2-xl 1.56B. Qwen1.5-0.5B ties its output layer to the
input embedding (`tie_word_embeddings: true`, the Qwen maintainers' own example of a tied config in
llama.cpp PR #6578), although its safetensors file stores both copies (1.2 GB in bf16, hence "0.6B" on
its hub page).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from w2sbench.errors import UnknownNameError

_QWEN15_05B: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 2816,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "num_key_value_heads": 16,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

_QWEN3_4B: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 2560,
    "initializer_range": 0.02,
    "intermediate_size": 9728,
    "max_position_embeddings": 32768,
    "max_window_layers": 36,
    "num_attention_heads": 32,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

_LLAMA3_8B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "mlp_bias": False,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "vocab_size": 128256,
}


def _gpt2(n_embd: int, n_layer: int, n_head: int) -> dict[str, Any]:
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "n_ctx": 1024,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": None,
        "n_layer": n_layer,
        "n_positions": 1024,
        "resid_pdrop": 0.1,
        "summary_first_dropout": 0.1,
        "tie_word_embeddings": True,
        "vocab_size": 50257,
    }


CONFIGS: dict[str, dict[str, Any]] = {
    "Qwen/Qwen1.5-0.5B-Chat": _QWEN15_05B,
    "Qwen/Qwen1.5-0.5B": _QWEN15_05B,
    "Qwen/Qwen3-4B-Base": _QWEN3_4B,
    "meta-llama/Meta-Llama-3-8B": _LLAMA3_8B,
    "openai-community/gpt2": _gpt2(768, 12, 12),
    "openai-community/gpt2-medium": _gpt2(1024, 24, 16),
    "openai-community/gpt2-large": _gpt2(1280, 36, 20),
    "openai-community/gpt2-xl": _gpt2(1600, 48, 25),
}
"""Published configs by hub id; the short GPT-2 names below are aliases (the hub redirects them)."""

ALIASES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
}

# The same quantity goes by different names across families.
_KEYS = {
    "hidden": ("hidden_size", "n_embd"),
    "layers": ("num_hidden_layers", "n_layer"),
    "heads": ("num_attention_heads", "n_head"),
    "inter": ("intermediate_size",),
}


def config_dict(model_id: str, scale: float = 1.0, **overrides: Any) -> dict[str, Any]:
    """The published config of `model_id`, shrunk by `scale` (0 < scale <= 1), with `overrides` applied last.

    Scaling keeps the head size and the query/key-value group ratio, so attention kernels see the same
    head shapes as the full model; layers, heads and the MLP width shrink by `scale` (at least 1 each)."""
    key = ALIASES.get(model_id, model_id)
    if key not in CONFIGS:
        raise UnknownNameError("random-weight architecture", model_id, list(CONFIGS) + list(ALIASES))
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    cfg = copy.deepcopy(CONFIGS[key])
    if scale < 1:
        get = lambda what: next(k for k in _KEYS[what] if k in cfg)  # noqa: E731
        hidden_k, layers_k, heads_k = get("hidden"), get("layers"), get("heads")
        heads = cfg[heads_k]
        head_dim = cfg.get("head_dim") or cfg[hidden_k] // heads
        group = heads // cfg.get("num_key_value_heads", heads)
        new_heads = max(group, round(heads * scale) // group * group)
        cfg[heads_k] = new_heads
        if "num_key_value_heads" in cfg:
            cfg["num_key_value_heads"] = new_heads // group
        cfg[hidden_k] = new_heads * head_dim if "head_dim" not in cfg else max(8, round(cfg[hidden_k] * scale / 8) * 8)
        cfg[layers_k] = max(1, round(cfg[layers_k] * scale))
        if "intermediate_size" in cfg:
            cfg["intermediate_size"] = max(8, round(cfg["intermediate_size"] * scale / 8) * 8)
        if "max_window_layers" in cfg:
            cfg["max_window_layers"] = cfg[layers_k]
    cfg.update(overrides)
    return cfg


def random_config(model_id: str, scale: float = 1.0, **overrides: Any) -> Any:
    """A transformers config object for `config_dict(model_id, scale, **overrides)`."""
    from transformers import AutoConfig

    cfg = config_dict(model_id, scale, **overrides)
    fields = {k: v for k, v in cfg.items() if k != "model_type"}
    return AutoConfig.for_model(cfg["model_type"], **fields)


def random_model(
    model_id: str,
    scale: float = 1.0,
    seed: int = 0,
    dtype: Any = None,
    device: Any = None,
    attn_implementation: str = "sdpa",
    **overrides: Any,
) -> Any:
    """A causal LM of `model_id`'s architecture with random weights (the family's own initialisation).

    `device` builds it in place (a 4B model initialises in seconds on a GPU, minutes on a CPU); `dtype`
    defaults to float32."""
    import torch
    from transformers import AutoModelForCausalLM

    config = random_config(model_id, scale, **overrides)
    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype or torch.float32, attn_implementation=attn_implementation
        )
    return model


def save_random_model(
    model_id: str,
    out_dir: Path | str,
    scale: float = 1.0,
    seed: int = 0,
    tokenizer_dir: Path | str | None = None,
    **overrides: Any,
) -> Path:
    """Write a random-weight model folder that the resolver, the trainer and the backends accept.

    No tokenizer of these families ships offline, so `tokenizer_dir` lends one (e.g. the packaged MiniLM's);
    the vocabulary is then resized to that tokenizer's, unless `vocab_size` is overridden."""
    out = Path(out_dir)
    tokenizer = None
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        overrides.setdefault("vocab_size", len(tokenizer))
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            token_id = getattr(tokenizer, name, None)
            if token_id is not None:
                overrides.setdefault(name, int(token_id))
    model = random_model(model_id, scale, seed, **overrides)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def count_parameters(config: Any, embeddings: bool = True) -> int:
    """Parameters of a model with this config, from the shapes alone (meta device: nothing allocated).

    With embeddings=False the input embedding, position embedding and output layer are left out: that N is
    the one whose 2N FLOPs per token a forward pass costs (the usual MFU convention)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    if embeddings:
        return total
    skip = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    out = model.get_output_embeddings()
    if out is not None:
        skip |= {id(p) for p in out.parameters()}
    return total - sum(p.numel() for p in model.parameters() if id(p) in skip)
