"""Settings: named, versioned presets of a weak/strong model pair and the one fixed training recipe.

Built-ins live as YAML in w2sbench/settings/; a path to a YAML file works anywhere a name does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..cache import hash_of
from ..errors import ConfigError, UnknownNameError, W2SError
from ..isolation.quotas import Quotas, from_setting
from ..schema_io import read_yaml, validate
from ..training.recipe import ROLES, Recipe


@dataclass(frozen=True)
class ModelSpec:
    model: str
    pooling: str = "last"
    max_length: int = 256
    revision: str | None = None
    chat_template: bool = False
    input: str = "prompt"


DEFAULT_METHOD_TIMEOUT_S = 3600.0
# Run limits and the declared perturbation ranges change no number: results stay comparable across them.
HASH_EXCLUDED = ("limits", "robustness")
# How far the strong model's recipe may be moved to ask whether an order of methods survives it (a setting
# may declare its own under robustness.recipe): factors of the learning rate and of the epochs.
RECIPE_PERTURBATIONS = {"lr": (0.5, 2.0), "epochs": (0.5, 2.0)}


@dataclass(frozen=True)
class Setting:
    name: str
    version: int
    description: str
    weak: ModelSpec
    strong: ModelSpec
    regime: str
    train: dict[str, Any]  # the YAML's train block, as written
    recipes: dict[str, Recipe]  # what the trainer reads per role (weak_lr applied), parsed once at load
    baseline_seeds: int
    method_seeds: int
    config: dict[str, Any]
    path: str
    method_timeout_s: float = DEFAULT_METHOD_TIMEOUT_S
    quotas: Quotas = field(default_factory=Quotas)  # the method sandbox's limits (w2sbench/isolation/quotas.py)
    device: str = "cpu"  # the hardware its numbers are for: "cuda" (the YAML's `device:`) or "cpu" (absent)

    def spec(self, role: str) -> ModelSpec:
        return self.weak if role == "weak" else self.strong

    @property
    def needs_gpu(self) -> str | None:
        """Why this setting must run on CUDA ("declares device: cuda", "trains in bfloat16", ...), or None.
        Such a setting refuses the CPU unless told otherwise (evaluate(allow_cpu=True), eval --allow-cpu):
        on a CPU its bf16 recipe would silently train in fp32, for hours."""
        why = ["declares device: cuda"] if self.device == "cuda" else []
        recipes = self.recipes.values()
        if any(r.dtype == "bfloat16" for r in recipes):
            why.append("trains in bfloat16")
        if any(r.optimizer == "adamw_8bit" for r in recipes):
            why.append("uses the 8-bit AdamW of bitsandbytes (CUDA)")
        return ", ".join(why) or None

    @property
    def recipe_perturbations(self) -> dict[str, tuple[float, ...]]:
        declared = self.config.get("robustness", {}).get("recipe")
        return {k: tuple(float(f) for f in v) for k, v in (declared or RECIPE_PERTURBATIONS).items()}

    def perturbed(self, knob: str, factor: float) -> Setting:
        """This setting with the strong model's recipe (the ceiling's and every method's trainer) scaled within
        the declared range: the learning rate times `factor`, or the epochs times `factor` (rounded, at least
        1). The weak model keeps its recipe. The config records the change, so the hash differs and no cached
        ceiling or method stage is shared with the unperturbed setting."""
        allowed = self.recipe_perturbations
        if knob not in allowed or float(factor) not in allowed[knob]:
            declared = ", ".join(f"{k} x {'/'.join(f'{f:g}' for f in v)}" for k, v in allowed.items())
            raise W2SError(f"setting {self.name!r}: perturb {knob} x {factor:g} is not declared (declared: {declared})")
        strong = self.recipes["strong"]
        if knob == "lr":
            changed = replace(strong, lr=strong.lr * float(factor))
        else:
            changed = replace(strong, epochs=max(1, round(strong.epochs * float(factor))))
        config = {**self.config, "perturbed": {"strong": {knob: float(factor)}}}
        return replace(self, recipes={**self.recipes, "strong": changed}, config=config)

    @property
    def hash(self) -> str:
        """Hash of the full config: results and cached baselines are only comparable within one hash."""
        return hash_of({k: v for k, v in self.config.items() if k not in HASH_EXCLUDED}, 16)


def builtin_settings() -> dict[str, Path]:
    folder = resources.files("w2sbench").joinpath("settings")
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def load_setting(name_or_path: str) -> Setting:
    known = builtin_settings()
    if name_or_path in known:
        path = known[name_or_path]
    elif name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_file():
        path = Path(name_or_path)
    else:
        raise UnknownNameError("setting", name_or_path, known)
    config = read_yaml(path)
    validate(config, "setting", str(path))
    if path.stem != config["setting"]:
        raise ConfigError(str(path), "setting", f"must equal the file name {path.stem!r}, got {config['setting']!r}")
    try:
        recipes = {role: Recipe.for_role(config["train"], role) for role in ROLES}
    except (TypeError, ValueError) as e:
        raise ConfigError(str(path), "train", str(e)) from None
    if recipes["strong"].head == "label_tokens":
        if config["regime"] == "frozen":
            raise ConfigError(
                str(path), "train.head", "label_tokens reads the model's LM head: it needs regime lora or full"
            )
        for role in ROLES:
            if config[role].get("input", "prompt") != "prompt":
                raise ConfigError(
                    str(path),
                    f"{role}.input",
                    "head label_tokens reads the next token after the task's prompt: the input must be 'prompt'",
                )
    return Setting(
        name=config["setting"],
        version=config["version"],
        description=config["description"],
        weak=ModelSpec(**config["weak"]),
        strong=ModelSpec(**config["strong"]),
        regime=config["regime"],
        train=dict(config["train"]),
        recipes=recipes,
        baseline_seeds=config["seeds"]["baseline"],
        method_seeds=config["seeds"]["method"],
        config=config,
        path=str(path),
        method_timeout_s=float(config.get("limits", {}).get("method_timeout_s", DEFAULT_METHOD_TIMEOUT_S)),
        quotas=from_setting(config.get("limits", {}), str(path)),
        device=config.get("device", "cpu"),
    )
