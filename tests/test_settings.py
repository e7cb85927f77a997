"""Settings: every built-in validates, the CLI lists them, malformed ones name file and field, and a GPU
setting without its models fails with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from random_models import CONFIGS  # noqa: E402

from w2sbench.errors import ConfigError, UnknownNameError  # noqa: E402
from w2sbench.settings import builtin_settings, load_setting  # noqa: E402
from w2sbench.training import Recipe  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GPU_SETTINGS = ("aar-qwen", "burns-gpt2", "burns-gpt2-xl", "eleuther")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "w2sbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


@pytest.mark.parametrize("name", sorted(builtin_settings()))
def test_every_builtin_setting_validates(name: str) -> None:
    s = load_setting(name)
    assert s.name == name and s.weak.model != s.strong.model
    if s.regime in ("lora", "full"):
        recipe = Recipe.from_dict(s.train)  # the trainer accepts the recipe as written
        assert (recipe.lora is not None) == (s.regime == "lora")


def test_gpu_settings_carry_the_reference_recipes() -> None:
    aar = load_setting("aar-qwen")
    assert (aar.weak.model, aar.strong.model) == ("Qwen/Qwen1.5-0.5B-Chat", "Qwen/Qwen3-4B-Base")
    assert aar.train["lora"]["r"] == 32 and aar.train["lora"]["alpha"] == 32
    assert (aar.train["lr"], aar.train["batch_size"], aar.train["epochs"]) == (1e-4, 32, 5)
    assert (aar.train["schedule"], aar.train["warmup_frac"], aar.train["dtype"]) == ("linear", 0.1, "bfloat16")
    burns = load_setting("burns-gpt2")
    assert burns.regime == "full" and burns.train["lr"] == 1e-5 and burns.train["weak_lr"] == 5e-5
    assert load_setting("burns-gpt2-xl").strong.model.endswith("gpt2-xl")
    eleuther = load_setting("eleuther")
    assert eleuther.train["lora"]["r"] == 8 and eleuther.train["warmup_steps"] == 40
    for name in GPU_SETTINGS:  # every GPU setting's shapes can be built without a download
        s = load_setting(name)
        assert s.weak.model in CONFIGS and s.strong.model in CONFIGS


def test_settings_command_lists_models_and_recipe() -> None:
    out = _cli("settings")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name in builtin_settings():
        s = load_setting(name)
        line = next(line for line in lines if line.split()[0] == name)
        assert s.weak.model in line and s.strong.model in line and f"[{s.regime}]" in line
        assert f"{s.train['epochs']} epochs, batch {s.train['batch_size']}" in line
    aar_line = next(line for line in lines if line.startswith("aar-qwen"))
    assert "LoRA r=32 alpha=32" in aar_line and "lr 0.0001" in aar_line and "5 epochs" in aar_line
    assert "seeds 16 baseline / 5 method" in aar_line


def _write(tmp_path: Path, name: str, edit) -> Path:
    config = yaml.safe_load((REPO / "w2sbench" / "settings" / "aar-qwen.yaml").read_text())
    config["setting"] = name
    edit(config)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda c: c["train"]["lora"].update(r=0), "train.lora.r"),
        (lambda c: c.update(regime="qlora"), "regime"),
        (lambda c: c["train"].update(warmup_steps=-1), "train.warmup_steps"),
        (lambda c: c["train"].update(betas=[0.9]), "train.betas"),
        (lambda c: c["train"].update(learning_rate=1e-4), "train.learning_rate"),
        (lambda c: c["strong"].pop("model"), "strong.model"),
    ],
)
def test_malformed_setting_names_file_and_field(tmp_path: Path, edit, field: str) -> None:
    path = _write(tmp_path, "broken", edit)
    with pytest.raises(ConfigError) as info:
        load_setting(str(path))
    assert info.value.field == field and str(path) in str(info.value)


def test_unknown_setting_suggests_a_name() -> None:
    with pytest.raises(UnknownNameError, match="aar-qwen"):
        load_setting("aar-qwn")


def test_eval_without_the_models_fails_in_one_line(tmp_path: Path) -> None:
    """No hub, nothing in the hub cache or W2SBENCH_MODEL_DIR: one line on stderr, exit 2, no traceback
    (--allow-cpu: on a CPU machine aar-qwen would otherwise stop first at its GPU, tests/test_gpu.py)."""
    env = {"HF_HOME": str(tmp_path / "hf"), "W2SBENCH_CACHE": str(tmp_path / "cache"), "W2SBENCH_MODEL_DIR": ""}
    out = _cli("eval", "--setting", "aar-qwen", "--tasks", "sms_spam", "--quiet", "--allow-cpu", env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("w2sbench: error:")


def test_eval_without_the_models_names_the_missing_model(tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "W2SBENCH_CACHE": str(tmp_path / "cache"), "W2SBENCH_MODEL_DIR": ""}
    out = _cli("eval", "--setting", "aar-qwen", "--tasks", "sms_spam", "--quiet", "--allow-cpu", env=env)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "Qwen/Qwen1.5-0.5B-Chat" in out.stderr or "Qwen/Qwen3-4B-Base" in out.stderr


def test_a_perturbed_recipe_moves_only_the_strong_trainer_and_gets_its_own_hash(tmp_path: Path) -> None:
    from w2sbench.errors import W2SError

    tiny = load_setting("tiny")
    assert tiny.recipe_perturbations == {"lr": (0.5, 2.0), "epochs": (0.5, 2.0)}  # declared in tiny.yaml
    half = tiny.perturbed("lr", 0.5)
    assert half.recipes["strong"].lr == pytest.approx(tiny.recipes["strong"].lr / 2)
    assert (
        half.recipes["weak"] == tiny.recipes["weak"] and half.recipes["strong"].epochs == tiny.recipes["strong"].epochs
    )
    assert tiny.perturbed("epochs", 0.5).recipes["strong"].epochs == round(tiny.recipes["strong"].epochs / 2)
    assert len({tiny.hash, half.hash, tiny.perturbed("lr", 2.0).hash}) == 3
    with pytest.raises(W2SError, match="perturb lr x 3 is not declared"):
        tiny.perturbed("lr", 3.0)
    # the declared range is not part of the setting's identity: without it, the same hash
    config = yaml.safe_load(Path(tiny.path).read_text())
    del config["robustness"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert load_setting(str(tmp_path / "tiny.yaml")).hash == tiny.hash
