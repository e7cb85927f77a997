"""The label_tokens readout (the AAR sandbox's "label as text" causal-LM training) and rank-stabilised LoRA.

The loss is checked against a value worked out by hand on a four-word vocabulary; the trainer's step loss
against the full-vocabulary cross-entropy computed straight from the model; a method's loss sees [b, 2]
logits under both readouts. Models: 1-2 layer random Qwen3-shaped ones (tests/random_models.py) and the
real packaged SmolLM2-135M-Instruct for the prior and the save/load checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from random_models import random_model  # noqa: E402

from w2sbench.errors import ConfigError, W2SError  # noqa: E402
from w2sbench.inference.base import ANSWER_TAIL, encode  # noqa: E402
from w2sbench.methods.builtin import LogConf  # noqa: E402
from w2sbench.settings import load_setting  # noqa: E402
from w2sbench.training import Recipe, soft_cross_entropy  # noqa: E402
from w2sbench.training.finetune import FineTunedStudent, build_student, fine_tune, train_student  # noqa: E402
from w2sbench.training.loss import label_token_loss  # noqa: E402

SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
LABEL_IDS = [10, 11]  # two words of the tiny models' 64-token vocabulary


pytestmark = pytest.mark.usefixtures("two_torch_threads")


def _tiny_qwen(seed: int = 0):
    return random_model("Qwen/Qwen3-4B-Base", scale=1 / 36, seed=seed, vocab_size=64, bos_token_id=1, eos_token_id=2)


def _ids(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, 64, size=int(rng.integers(3, 12))).tolist() for _ in range(n)]


def _recipe(head: str, **extra) -> Recipe:
    train = {"epochs": 2, "batch_size": 8, "lr": 5e-3, "schedule": "linear", "warmup_frac": 0.25, "head": head}
    return Recipe.from_dict({**train, "lora": {"r": 4, "alpha": 4}, **extra})


# ------------------------------------------------------------------------------------------- the loss


def test_label_token_loss_equals_the_hand_computed_value_on_a_tiny_vocabulary() -> None:
    """Vocabulary of 4 words, logits z = (1, 2, 0, -1), label words a = word 0, b = word 1, target t = 0.25.
    By hand: sum_j e^z_j = e + e^2 + 1 + e^-1 = 2.718282 + 7.389056 + 1 + 0.367879 = 11.475217, whose log is
    2.440189; log p_a = 1 - 2.440189 = -1.440189 and log p_b = 2 - 2.440189 = -0.440189, so the
    full-vocabulary cross-entropy -(1-t) log p_a - t log p_b = 0.75 * 1.440189 + 0.25 * 0.440189 = 1.190189.
    Split as the trainer computes it: the 2-way cross-entropy on (z_a, z_b) = (1, 2),
    0.75 * log(1 + e) + 0.25 * log(1 + e^-1) = 0.75 * 1.313262 + 0.25 * 0.313262 = 1.063262, plus the label
    mass -log(p_a + p_b) = 2.440189 - log(e + e^2) = 2.440189 - 2.313262 = 0.126927: 1.190189 again."""
    z = torch.tensor([[1.0, 2.0, 0.0, -1.0]])
    t = torch.tensor([0.25])
    two = z[:, [0, 1]]
    mass = torch.logsumexp(z, -1) - torch.logsumexp(two, -1)
    assert float(mass) == pytest.approx(0.126927, abs=1e-6)
    assert float(soft_cross_entropy(two, t, 0.0)) == pytest.approx(1.063262, abs=1e-6)
    loss = label_token_loss(two, mass, t, 0.0, soft_cross_entropy)
    assert float(loss) == pytest.approx(1.190189, abs=1e-6)
    # and it is torch's cross-entropy against the target that puts 1 - t on word a and t on word b
    target = torch.tensor([[0.75, 0.25, 0.0, 0.0]])
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(z, target)), abs=1e-6)
    assert math.isclose(0.75 * 1.440189 + 0.25 * 0.440189, 1.190189, abs_tol=1e-6)


def test_the_trainers_step_loss_is_the_full_vocabulary_cross_entropy() -> None:
    """Step 0 of a label_tokens run (one micro-batch, before the first update) reports the mean over the
    batch of -(1-t) log p_a - t log p_b, p the model's own next-token distribution at each input's last token."""
    ids = _ids(8, 0)
    targets = np.random.default_rng(1).random(8).astype(np.float32)
    recipe = _recipe("label_tokens", epochs=1)
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu", label_ids=LABEL_IDS)
    with torch.no_grad():  # LoRA's B starts at zero: the model is still the base model
        logp = torch.stack(
            [torch.log_softmax(student.lm()(input_ids=torch.tensor([r])).logits[0, -1], -1) for r in ids]
        )
    t = torch.from_numpy(targets)
    want = float((-(1 - t) * logp[:, LABEL_IDS[0]] - t * logp[:, LABEL_IDS[1]]).mean())
    history = train_student(student, ids, targets, recipe, seed=0, max_steps=1)
    assert history[0]["loss"] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("head", ["linear", "label_tokens"])
def test_a_methods_loss_sees_two_way_logits_under_both_readouts(head: str) -> None:
    """loss(logits [b, 2], targets [b], step_frac): the same call under both readouts, so every loss-only
    method (here logconf, whose batch quantile needs [b, 2]) runs unchanged."""
    seen: list[tuple[int, ...]] = []
    logconf = LogConf()

    def spy(logits, targets, step_frac):
        seen.append(tuple(logits.shape))
        assert logits.dtype == torch.float32 and logits.requires_grad
        return logconf.loss(logits, targets, step_frac)

    ids = _ids(8, 0)
    recipe = _recipe(head, epochs=1, grad_accum=2)
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu", label_ids=LABEL_IDS)
    train_student(student, ids, np.linspace(0, 1, 8, dtype=np.float32), recipe, seed=0, loss_fn=spy)
    assert seen == [(4, 2), (4, 2)]  # one step of 8 examples in two micro-batches of 4
    assert student.predict_ids(ids).shape == (8,)


def test_label_tokens_gradient_accumulation_matches_one_big_batch() -> None:
    """Micro-batches of 4 (padded differently) == one micro-batch of 8, loss and predictions."""
    ids = _ids(16, 0)
    targets = np.random.default_rng(1).random(16).astype(np.float32)
    out = []
    for accum in (1, 2):
        recipe = _recipe("label_tokens", grad_accum=accum)
        student = build_student(_tiny_qwen(), recipe, seed=3, device="cpu", label_ids=LABEL_IDS)
        history = train_student(student, ids, targets, recipe, seed=3)
        out.append((student.predict_ids(ids), [h["loss"] for h in history]))
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[1][0], out[0][0], atol=1e-4)
    assert np.abs(out[0][0] - out[0][0].mean()).max() > 1e-3  # and training did separate the inputs


def test_vocab_logits_are_the_models_own_next_token_logits() -> None:
    """Right-padded rows, the last real token's hidden state through the LM head == the model's forward."""
    student = build_student(_tiny_qwen(), _recipe("label_tokens"), seed=0, device="cpu", label_ids=LABEL_IDS)
    rows = _ids(5, 2)
    with torch.no_grad():
        got = student.vocab_logits(rows)
        want = torch.stack([student.lm()(input_ids=torch.tensor([r])).logits[0, -1] for r in rows])
        two = student.logits(rows)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(two, want[:, LABEL_IDS], atol=1e-5, rtol=1e-5)


def test_label_tokens_refuses_what_it_cannot_read() -> None:
    with pytest.raises(W2SError, match="two label words"):
        build_student(_tiny_qwen(), _recipe("label_tokens"), seed=0, device="cpu", label_ids=[10])
    with pytest.raises(W2SError, match="pooling"):
        build_student(_tiny_qwen(), _recipe("label_tokens"), seed=0, pooling="mean", device="cpu", label_ids=LABEL_IDS)
    with pytest.raises(ValueError, match="head must be one of"):
        Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1e-3, "head": "probe"})


# ------------------------------------------------------------------------------------------------ LoRA


@pytest.mark.parametrize("rslora, scale", [(True, 32 / math.sqrt(32)), (False, 1.0)])
def test_rslora_scales_alpha_by_the_square_root_of_r(rslora: bool, scale: float) -> None:
    """The sandbox's use_rslora=True: alpha / sqrt(r) = 5.66 at r = alpha = 32 (plain LoRA: alpha / r = 1)."""
    from peft.tuners.lora import LoraLayer

    lora = {"r": 32, "alpha": 32, "rslora": rslora, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    recipe = Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1e-3, "lora": lora})
    student = build_student(_tiny_qwen(), recipe, seed=0, device="cpu")
    layers = {n: m for n, m in student.model.named_modules() if isinstance(m, LoraLayer)}
    assert layers and all(m.scaling["default"] == pytest.approx(scale) for m in layers.values())
    targeted = {n.split(".")[-1] for n in layers}
    assert targeted == {"q_proj", "k_proj", "v_proj", "o_proj"}


# --------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def smollm_dir() -> Path:
    from w2sbench.model_folders import resolve_model

    return resolve_model(SMOLLM)


def test_label_tokens_starts_from_the_base_models_prior(smollm_dir: Path) -> None:
    """Before training, the label_tokens student predicts what the base model says zero-shot (LoRA's B is 0):
    the prior over the answer that a zero-initialised linear head throws away (it starts at 0.5)."""
    from w2sbench.inference.base import label_token_ids
    from w2sbench.inference.hf import HFBackend
    from w2sbench.training.finetune import _load_backbone

    prompts = ["Question: Is the sky blue?\nLabel:", "Question: Is fire cold?\nLabel:", "2 + 2 = 4. True or False?"]
    words = ["False", "True"]
    recipe = Recipe.from_dict(
        {"epochs": 1, "batch_size": 2, "lr": 1e-3, "head": "label_tokens", "lora": {"r": 4, "alpha": 4}}
    )
    model = _load_backbone(str(smollm_dir), True, False, torch.device("cpu"))
    student = build_student(
        model, recipe, seed=0, device="cpu", model_dir=str(smollm_dir), label_ids=label_token_ids(smollm_dir, words)
    )
    student.label_words = words
    got = student.predict_texts(prompts)
    want = HFBackend().label_probs(smollm_dir, prompts, words)[:, 1]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(got - 0.5).max() > 0.01  # a real prior, not a coin


def test_label_tokens_student_saves_and_loads(smollm_dir: Path, tmp_path: Path) -> None:
    texts = ["Question: Is the sky blue?\nLabel:", "Question: Is fire cold?\nLabel:"] * 2
    recipe = {
        "epochs": 1,
        "batch_size": 4,
        "lr": 1e-3,
        "head": "label_tokens",
        "lora": {"r": 4, "alpha": 4, "rslora": True},
    }
    student = fine_tune(
        smollm_dir,
        texts,
        np.array([1, 0, 1, 0], np.float32),
        recipe,
        seed=0,
        max_length=32,
        label_words=["False", "True"],
    )
    student.save(tmp_path / "s")
    assert not (tmp_path / "s" / "head.pt").exists()  # no linear head: the LM head is the readout
    again = FineTunedStudent.load(tmp_path / "s", device="cpu")
    assert again.readout == "label_tokens" and again.label_words == ["False", "True"] and again.head is None
    np.testing.assert_allclose(again.predict_texts(texts), student.predict_texts(texts), atol=1e-6)


def test_truncation_keeps_the_answer_cue(smollm_dir: Path) -> None:
    """Over-long prompts read at their last token keep their first tokens and their last ANSWER_TAIL."""
    prompt = "Question: " + "very " * 200 + "long?\nAnswer: yes\nLabel:"
    full = encode(smollm_dir, [prompt], None)[0]
    cut = encode(smollm_dir, [prompt], 64, keep_tail=ANSWER_TAIL)[0]
    assert len(cut) == 64 and cut[:48] == full[:48] and cut[48:] == full[-ANSWER_TAIL:]
    assert encode(smollm_dir, [prompt], 64)[0] == full[:64]  # the plain rule: cut on the right
    short = encode(smollm_dir, ["Label:"], 64, keep_tail=ANSWER_TAIL)[0]
    assert short == encode(smollm_dir, ["Label:"], None)[0]


# ------------------------------------------------------------------------------------------- settings


def test_aar_qwen_reads_label_tokens_with_rslora_as_the_sandbox() -> None:
    aar = load_setting("aar-qwen")
    recipe = aar.recipes["strong"]
    assert recipe.head == "label_tokens" and recipe.lora["rslora"] is True
    assert recipe.lora["target_modules"] == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert recipe.betas == (0.9, 0.95) and recipe.weight_decay == 0.0 and recipe.max_grad_norm == 1.0
    assert (aar.baseline_seeds, aar.method_seeds) == (16, 5)
    twin = load_setting("aar-twin")
    assert twin.recipes["strong"].head == "label_tokens" and twin.recipes["strong"].lora["rslora"] is True
    assert twin.weak.chat_template and twin.regime == "lora"


def test_label_tokens_in_the_frozen_regime_names_the_field(tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load(Path(load_setting("tiny").path).read_text())
    config["setting"] = "frozen-label"
    config["train"]["head"] = "label_tokens"
    path = tmp_path / "frozen-label.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as info:
        load_setting(str(path))
    assert info.value.field == "train.head"


def test_answer_position_is_the_sandboxs_label_position() -> None:
    """Where the label_tokens readout reads the answer is where the sandbox puts the label token.
    Chat model (its template on): the sandbox tokenizes user turn + assistant turn "A" and trains the tokens
    after the generation prompt; our input is the generation prompt, read at its last token. Base model (no
    template): the sandbox's [BOS] + text + "Label:" + "A"; our prompt "...\nLabel:" (BOS added), read at its
    last token. In both, our ids + the label word's id are a prefix of the sandbox's training sequence."""
    from w2sbench.inference.base import encode, label_token_ids, load_tokenizer
    from w2sbench.model_folders import resolve_model
    from w2sbench.tasks import load_task

    task = load_task("aar_chat_mini")
    example = task.load_splits().test[0]
    prompt = task.prompt(example.text)
    label_word = task.label_words[example.label]

    chat = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    tok = load_tokenizer(chat)
    ours = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    sandbox_text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": label_word}], tokenize=False
    )
    sandbox_ids = tok(sandbox_text, add_special_tokens=False)["input_ids"]
    ours_ids = encode(chat, [ours], None)[0] + [label_token_ids(chat, [label_word, "Z"])[0]]
    assert sandbox_ids[: len(ours_ids)] == ours_ids

    base = resolve_model("google/gemma-3-270m")
    tok = load_tokenizer(base)
    head = prompt[: -len("Label:")]
    sandbox_ids = [tok.bos_token_id] + tok.encode(head, add_special_tokens=False)
    sandbox_ids += tok.encode("Label:", add_special_tokens=False) + tok.encode(label_word, add_special_tokens=False)
    ours_ids = encode(base, [prompt], None)[0] + [label_token_ids(base, [label_word, "Z"])[0]]
    assert ours_ids == sandbox_ids
