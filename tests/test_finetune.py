"""The LoRA / full fine-tuning regime (w2sbench.training.finetune) and random-weight architectures
(tests/random_models.py).

Kept small for a shared 2-core CPU: the real packaged MiniLM on a dozen short texts, and 1-2 layer
random-weight models in the Qwen3 / GPT-2 shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from random_models import config_dict, count_parameters, random_config, random_model, save_random_model  # noqa: E402

from w2sbench.errors import MissingPackageError, UnknownNameError  # noqa: E402
from w2sbench.training import Recipe  # noqa: E402
from w2sbench.training.finetune import FineTunedStudent, build_student, fine_tune, step_groups, train_student  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "good film",
    "great movie, loved it",
    "bad film",
    "awful, I hated it",
    "wonderful acting",
    "terrible plot",
    "a delight",
    "a bore",
]
LABELS = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=np.float32)
LORA = {"r": 4, "alpha": 8, "dropout": 0.0}


pytestmark = pytest.mark.usefixtures("two_torch_threads")


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    from w2sbench.model_folders import resolve_model

    return resolve_model(MINILM)


@pytest.fixture(scope="module")
def minilm_runs(minilm_dir: Path):
    """Two identical LoRA runs on the real MiniLM (mean pooling): the base for several checks."""
    recipe = {"epochs": 4, "batch_size": 4, "lr": 2e-3, "schedule": "constant", "optimizer": "adamw", "lora": LORA}
    runs = [
        fine_tune(minilm_dir, TEXTS, LABELS, recipe, seed=0, pooling="mean", max_length=16, device="cpu")
        for _ in range(2)
    ]
    return runs


def test_lora_on_minilm_learns_and_predicts_probabilities(minilm_runs) -> None:
    student = minilm_runs[0]
    p = student.predict_texts(TEXTS)
    assert p.shape == (len(TEXTS),) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    # the zero-initialised head starts at ln 2 per example; 8 steps on separable texts must beat it clearly
    assert student.meta["final_loss"] < 0.5 * np.log(2)
    assert np.mean((p > 0.5) == (LABELS > 0.5)) == 1.0


def test_lora_is_deterministic_on_cpu(minilm_runs) -> None:
    a, b = (s.predict_texts(TEXTS) for s in minilm_runs)
    np.testing.assert_array_equal(a, b)


def test_save_and_load_give_the_same_predictions(minilm_runs, tmp_path: Path) -> None:
    student = minilm_runs[0]
    student.save(tmp_path / "s")
    assert (tmp_path / "s" / "adapter" / "adapter_config.json").is_file()
    again = FineTunedStudent.load(tmp_path / "s", device="cpu")
    np.testing.assert_allclose(again.predict_texts(TEXTS), student.predict_texts(TEXTS), atol=1e-6)


def test_weights_zero_out_examples(minilm_dir: Path) -> None:
    """Examples with weight 0 must not move the model: training only on them leaves the head at zero."""
    recipe = {"epochs": 1, "batch_size": 4, "lr": 1e-2, "lora": LORA}
    w = np.zeros(4, dtype=np.float32)
    student = fine_tune(
        minilm_dir, TEXTS[:4], LABELS[:4], recipe, seed=0, weights=w, pooling="mean", max_length=16, device="cpu"
    )
    assert float(student.head.weight.detach().abs().sum()) == 0.0
    np.testing.assert_allclose(student.predict_texts(TEXTS[:2]), 0.5, atol=1e-6)


# ------------------------------------------------------------------------------------ random Qwen shape


def _tiny_qwen(seed: int = 0):
    return random_model("Qwen/Qwen3-4B-Base", scale=1 / 36, seed=seed, vocab_size=64, bos_token_id=1, eos_token_id=2)


def _ids(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, 64, size=int(rng.integers(3, 12))).tolist() for _ in range(n)]


def _train_tiny(batch: int, accum: int, ids, targets) -> tuple[np.ndarray, list[dict]]:
    recipe = Recipe.from_dict(
        {
            "epochs": 2,
            "batch_size": batch,
            "grad_accum": accum,
            "lr": 5e-3,
            "schedule": "linear",
            "warmup_frac": 0.25,
            "lora": {"r": 4, "alpha": 4},
        }
    )
    student = build_student(_tiny_qwen(), recipe, seed=3, device="cpu")
    history = train_student(student, ids, targets, recipe, seed=3)
    return student.predict_ids(ids), history


def test_gradient_accumulation_matches_one_big_batch() -> None:
    """batch 8 as 2 micro-batches of 4 (sorted by length, padded differently) == one micro-batch of 8."""
    ids = _ids(16, 0)
    targets = np.random.default_rng(1).random(16).astype(np.float32)
    p_one, h_one = _train_tiny(8, 1, ids, targets)
    p_acc, h_acc = _train_tiny(8, 2, ids, targets)
    assert len(h_one) == len(h_acc) == 4  # 16 examples / batch 8 x 2 epochs: same number of optimizer steps
    np.testing.assert_allclose([h["loss"] for h in h_acc], [h["loss"] for h in h_one], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p_acc, p_one, atol=1e-4)
    assert np.abs(p_one - 0.5).max() > 1e-3  # and training did move the predictions


def _train_under_a_memory_limit(checkpointing, accum: int, fits) -> tuple[np.ndarray, list[dict], FineTunedStudent]:
    """Train the tiny Qwen while `fits(n_rows, checkpointing_on)` decides whether a micro-batch "fits": one
    that does not raises CUDA's out-of-memory error before any work, as a real card would."""
    ids = _ids(16, 0)
    targets = np.random.default_rng(1).random(16).astype(np.float32)
    recipe = Recipe.from_dict(
        {
            "epochs": 2,
            "batch_size": 8,
            "grad_accum": accum,
            "lr": 5e-3,
            "schedule": "linear",
            "warmup_frac": 0.25,
            "gradient_checkpointing": checkpointing,
            "lora": {"r": 4, "alpha": 4},
        }
    )
    student = build_student(_tiny_qwen(), recipe, seed=3, device="cpu")
    real_logits = student.logits

    def limited(rows, body=None):
        if not fits(len(rows), student.checkpointing):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_logits(rows, body)

    student.logits = limited
    history = train_student(student, ids, targets, recipe, seed=3)
    del student.logits  # predictions unlimited
    return student.predict_ids(ids), history, student


def test_auto_checkpointing_switches_on_at_the_first_out_of_memory_step() -> None:
    """The failed step is redone with checkpointing on; the run equals one that checkpointed from the start."""
    with pytest.warns(UserWarning, match="out of memory at step 0"):
        p_auto, h_auto, student = _train_under_a_memory_limit("auto", 1, lambda n, ckpt: ckpt)
    p_on, h_on, _ = _train_under_a_memory_limit(True, 1, lambda n, ckpt: True)
    assert student.checkpointing
    assert student.meta["memory_fallbacks"] == [{"step": 0, "gradient_checkpointing": True, "micro_batch_size": 8}]
    assert len(h_auto) == len(h_on) == 4
    np.testing.assert_allclose(p_auto, p_on, atol=1e-6)
    assert [h["loss"] for h in h_auto] == pytest.approx([h["loss"] for h in h_on], abs=1e-6)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_step() -> None:
    """Checkpointing off and only 2 rows fit: micro-batches go 8 -> 4 -> 2 within step 0, and the run matches
    one planned with micro-batches of 2 (same examples per step, same normalised loss)."""
    with pytest.warns(UserWarning):
        p_small, h_small, student = _train_under_a_memory_limit(False, 1, lambda n, ckpt: n <= 2)
    p_planned, _, _ = _train_under_a_memory_limit(False, 4, lambda n, ckpt: True)
    assert not student.checkpointing
    assert [f["micro_batch_size"] for f in student.meta["memory_fallbacks"]] == [4, 2]
    assert {f["step"] for f in student.meta["memory_fallbacks"]} == {0}
    assert [h["micro_batch_size"] for h in h_small] == [2, 2, 2, 2]
    np.testing.assert_allclose(p_small, p_planned, atol=1e-5)


def test_out_of_memory_with_single_examples_says_what_to_set() -> None:
    with pytest.raises(torch.OutOfMemoryError, match="gradient_checkpointing: auto"), pytest.warns(UserWarning):
        _train_under_a_memory_limit(False, 1, lambda n, ckpt: False)


def test_recipe_refuses_an_unknown_checkpointing_value() -> None:
    with pytest.raises(ValueError, match="gradient_checkpointing"):
        Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1e-3, "gradient_checkpointing": "sometimes"})


def test_logits_take_a_wrapped_body_without_asking_its_truth_value() -> None:
    """torch.compile's wrapper raises on bool() (it defers to len(), which the model lacks); the trainer
    passes that wrapper as `body`, so logits() must test it against None only."""
    recipe = Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1e-3, "lora": {"r": 2, "alpha": 2}})
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu")

    class Wrapped:
        def __init__(self, module):
            self.module = module

        def __call__(self, **kwargs):
            return self.module(**kwargs)

        def __len__(self):
            raise TypeError("Qwen3Model does not support len()")

    ids = _ids(3, 0)
    torch.testing.assert_close(student.logits(ids, Wrapped(student.body())), student.logits(ids))


def test_loss_decreases_on_a_learnable_rule() -> None:
    """Label = whether token 5 occurs: a tiny random Qwen-shaped model must fit it better over the steps."""
    rng = np.random.default_rng(0)
    ids = [rng.integers(6, 64, size=8).tolist() for _ in range(32)]
    for row in ids[:16]:
        row[int(rng.integers(0, 8))] = 5
    targets = np.array([1.0] * 16 + [0.0] * 16, dtype=np.float32)
    recipe = Recipe.from_dict(
        {"epochs": 6, "batch_size": 8, "lr": 1e-2, "schedule": "constant", "lora": {"r": 8, "alpha": 16}}
    )
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu")
    history = train_student(student, ids, targets, recipe, seed=0)
    assert history[0]["loss"] == pytest.approx(np.log(2), abs=1e-5)  # zero head: p = 0.5 for every input
    assert np.mean([h["loss"] for h in history[-4:]]) < 0.8 * np.log(2)
    p = student.predict_ids(ids)
    assert np.all((p >= 0) & (p <= 1))


def test_full_fine_tuning_trains_backbone_weights() -> None:
    """regime "full" (no lora block): backbone weights change; the unused output layer does not."""
    model = random_model("gpt2", scale=1 / 12, seed=0, vocab_size=64, n_positions=32, tie_word_embeddings=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    recipe = Recipe.from_dict({"epochs": 1, "batch_size": 4, "lr": 1e-3, "optimizer": "adam"})
    student = build_student(model, recipe, seed=0, device="cpu")
    train_student(student, _ids(8, 2), np.array([0, 1] * 4, dtype=np.float32), recipe, seed=0)
    after = dict(model.named_parameters())
    assert not torch.equal(after["transformer.h.0.mlp.c_fc.weight"], before["transformer.h.0.mlp.c_fc.weight"])
    assert torch.equal(after["lm_head.weight"], before["lm_head.weight"])


def test_fine_tune_on_a_saved_random_qwen_and_merge(minilm_dir: Path, tmp_path: Path) -> None:
    """The causal path end to end: a random Qwen3-shaped folder (MiniLM's tokenizer lent), fit, save, and the
    saved adapter merges with inference.merge_lora into a backbone giving the same hidden states."""
    from transformers import AutoModelForCausalLM

    from w2sbench.inference import merge_lora

    base = save_random_model("Qwen/Qwen3-4B-Base", tmp_path / "qwen", scale=1 / 36, tokenizer_dir=minilm_dir)
    recipe = {"epochs": 1, "batch_size": 4, "lr": 1e-2, "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"}}
    student = fine_tune(base, TEXTS, LABELS, recipe, seed=0, pooling="last", max_length=16, device="cpu")
    student.save(tmp_path / "student")
    merged = merge_lora(base, tmp_path / "student" / "adapter", tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(str(merged)).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        want = plain.base_model(input_ids=ids).last_hidden_state
        got = student.body()(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------- recipe / inputs


def test_step_groups_sort_by_length_within_the_step() -> None:
    lengths = [3, 9, 1, 7, 5]
    assert step_groups([0, 1, 2, 3, 4], lengths, 2) == [[1, 3], [4, 0], [2]]
    assert step_groups([2, 0], lengths, 8) == [[0, 2]]


def test_recipe_reads_a_setting_train_block() -> None:
    r = Recipe.from_dict(
        {
            "epochs": 5,
            "batch_size": 32,
            "grad_accum": 3,
            "lr": 1e-4,
            "warmup_steps": 40,
            "betas": [0.9, 0.95],
            "max_length": 512,
            "weak_lr": 5e-4,
        }
    )
    assert r.micro_batch_size == 11 and r.betas == (0.9, 0.95)
    assert r.warmup_fraction(400) == pytest.approx(0.1) and r.warmup_fraction(20) == 1.0
    assert Recipe.from_dict({"epochs": 1, "batch_size": 4, "lr": 1e-3, "warmup_frac": 0.2}).warmup_fraction(10) == 0.2
    with pytest.raises(ValueError):
        Recipe.from_dict({"epochs": 0, "batch_size": 4, "lr": 1e-3})


def test_bad_targets_and_weights_are_refused() -> None:
    recipe = Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1e-3, "lora": {"r": 2, "alpha": 2}})
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu")
    ids = _ids(2, 0)
    with pytest.raises(ValueError, match="probabilities"):
        train_student(student, ids, np.array([0.5, 1.5]), recipe, seed=0)
    with pytest.raises(ValueError, match="one value per input"):
        train_student(student, ids, np.array([0.5]), recipe, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        train_student(student, ids, np.array([0.5, 0.5]), recipe, seed=0, weights=np.array([1.0, -1.0]))


def test_adamw_8bit_without_bitsandbytes_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    recipe = Recipe.from_dict(
        {"epochs": 1, "batch_size": 2, "lr": 1e-3, "optimizer": "adamw_8bit", "lora": {"r": 2, "alpha": 2}}
    )
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu")
    with pytest.raises(MissingPackageError, match="bitsandbytes"):
        train_student(student, _ids(2, 0), np.array([0.0, 1.0]), recipe, seed=0)


# -------------------------------------------------------------------------------------- random models


@pytest.mark.parametrize(
    "model_id, billions",
    [
        ("Qwen/Qwen3-4B-Base", 4.022),
        ("Qwen/Qwen1.5-0.5B-Chat", 0.464),
        ("gpt2", 0.124),
        ("gpt2-large", 0.774),
        ("gpt2-xl", 1.558),
    ],
)
def test_random_configs_have_the_published_sizes(model_id: str, billions: float) -> None:
    assert count_parameters(random_config(model_id)) / 1e9 == pytest.approx(billions, abs=0.001)


def test_scale_keeps_head_size_and_group_ratio() -> None:
    full, tiny = config_dict("Qwen/Qwen3-4B-Base"), config_dict("Qwen/Qwen3-4B-Base", 1 / 8)
    assert tiny["head_dim"] == full["head_dim"] == 128
    assert tiny["num_attention_heads"] // tiny["num_key_value_heads"] == 4
    assert tiny["num_hidden_layers"] == round(36 / 8) and tiny["intermediate_size"] < full["intermediate_size"]
    g = config_dict("gpt2-xl", 1 / 5)
    assert g["n_embd"] // g["n_head"] == 64 and g["n_layer"] == round(48 / 5)
    with pytest.raises(UnknownNameError):
        config_dict("gpt5")
    with pytest.raises(ValueError):
        config_dict("gpt2", 0)


def test_gpu_benchmark_smoke_runs_on_cpu() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_training.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    kinds = {(r["bench"], r.get("impl")) for r in records}
    assert {
        ("env", None),
        ("strong_train", "baseline"),
        ("strong_train", "w2sbench"),
        ("weak_score", "baseline"),
        ("weak_score", "w2sbench"),
    } <= kinds
    # both readouts, label_tokens (what aar-qwen trains) first, with aar-qwen's own recipe
    heads = {(r["bench"], r.get("head")) for r in records if r.get("impl") == "w2sbench"}
    assert {("strong_train", h) for h in ("label_tokens", "linear")} | {("weak_score", "label_tokens")} <= heads
    first = next(r for r in records if r["bench"] == "strong_train")
    assert first["impl"] == "w2sbench" and first["head"] == "label_tokens" and first["checkpointing"]
    for r in records:
        if r["bench"] != "env":
            assert "error" not in r and r["tokens_per_s"] > 0


def test_gpu_benchmark_skips_what_its_time_budget_leaves_no_room_for() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_training.py"), "--smoke", "--time-budget", "0"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert records[0]["bench"] == "env" and len(records) > 3
    assert all("time budget" in r["skipped"] for r in records[1:])
