"""Row transforms that a text template cannot express: turning multiple-choice and preference data into
binary examples (show the right answer or a wrong one; show a pair in random order).

A task names one in its YAML (`formatter: sciq` or `formatter: {name: ..., options: {...}}`). The
formatter runs after the task's `filter` and before its `text` template and `label` block; the fields
it returns are merged over the raw row, so the template reads them like any column (by convention the
binary label is `hard_label`, 1 = the shown answer is right / the preferred response is second).

Randomness is seeded per row from the row's own content (plus the formatter's name and seed), never
from a shared generator: the same hub row gets the same text on every machine, whatever the file
order, the split it sits in, or which other rows were filtered out.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from w2sbench.errors import ConfigError, UnknownNameError

__all__ = ["Formatter", "register", "get_formatter", "formatter_names", "row_rng", "apply_formatter", "parse_spec"]

# (row, rng, options) -> fields to merge over the row, or None to drop the row.
Formatter = Callable[[Mapping[str, Any], random.Random, Mapping[str, Any]], "dict[str, Any] | None"]

_REGISTRY: dict[str, Formatter] = {}


def register(name: str) -> Callable[[Formatter], Formatter]:
    """Decorator: make a formatter available to task YAMLs under `name`."""

    def wrap(fn: Formatter) -> Formatter:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"formatter {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def formatter_names() -> list[str]:
    return sorted(_REGISTRY)


def get_formatter(name: str) -> Formatter:
    if name not in _REGISTRY:
        raise UnknownNameError("formatter", name, formatter_names())
    return _REGISTRY[name]


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, int, dict[str, Any], dict[str, str]]:
    """`formatter:` as written in a YAML -> (name, seed, options, join)."""
    if isinstance(spec, str):
        return spec, 0, {}, {}
    return spec["name"], int(spec.get("seed", 0)), dict(spec.get("options") or {}), dict(spec.get("join") or {})


def row_rng(row: Mapping[str, Any], name: str, seed: int = 0) -> random.Random:
    """A generator seeded by the row's canonical JSON: deterministic and independent of row order."""
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{name}\x00{seed}\x00{canonical}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def apply_formatter(
    rows: Iterable[Mapping[str, Any]], spec: str | Mapping[str, Any], yaml_path: Path | str = ""
) -> list[dict[str, Any]]:
    """Run the task's formatter over rows; dropped rows (None) disappear. Bad options name the YAML field."""
    name, seed, options, join = parse_spec(spec)
    fn = get_formatter(name)
    out: list[dict[str, Any]] = []
    for row in rows:
        rng = row_rng(row, name, seed)  # seeded on the raw row, before any joining
        row = dict(row)
        for field, sep in join.items():
            value = row.get(field)
            if isinstance(value, (list, tuple)):
                row[field] = sep.join(str(v) for v in value)
        try:
            extra = fn(row, rng, options)
        except _OptionError as exc:
            raise ConfigError(str(yaml_path), f"formatter.options.{exc.option}", exc.message) from None
        except KeyError as exc:
            raise ConfigError(
                str(yaml_path), "formatter", f"{name!r} needs column {exc.args[0]!r}; columns: {', '.join(sorted(row))}"
            ) from None
        if extra is not None:
            out.append({**row, **extra})
    return out


class _OptionError(Exception):
    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option, self.message = option, message


def _opt(options: Mapping[str, Any], key: str, default: Any = None, required: bool = False) -> Any:
    if required and key not in options:
        raise _OptionError(key, "is required")
    return options.get(key, default)


# ------------------------------------------------------------------------------- the Burns et al. formatters


@register("sciq")
def sciq(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any]:
    """allenai/sciq: the correct answer or one of the three distractors, each half the time (Burns et al.)."""
    if rng.random() < 0.5:
        return {"answer": row["correct_answer"], "hard_label": 1}
    distractors = [row["distractor1"], row["distractor2"], row["distractor3"]]
    return {"answer": rng.choice(distractors), "hard_label": 0}


@register("chosen_or_rejected")
def chosen_or_rejected(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any]:
    """Preference pairs as Burns et al. binarise Anthropic HH: show one side; label 1 if it is the chosen one."""
    chosen, rejected = _opt(options, "chosen", "chosen"), _opt(options, "rejected", "rejected")
    if rng.random() < 0.5:
        return {"response": row[chosen], "hard_label": 1}
    return {"response": row[rejected], "hard_label": 0}


@register("pairwise_random_order")
def pairwise_random_order(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any]:
    """A better/worse pair shown in random order as `first`, `second`; label 1 when the better one is second."""
    better, worse = row[_opt(options, "better", "chosen")], row[_opt(options, "worse", "rejected")]
    if rng.random() < 0.5:
        return {"first": worse, "second": better, "hard_label": 1}
    return {"first": better, "second": worse, "hard_label": 0}


# ------------------------------------------------------------------------------- multiple choice -> binary


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _choices(row: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(choice texts, their letters) from a list column, a list of columns, or a {text, label} struct column."""
    spec = _opt(options, "choices", required=True)
    if isinstance(spec, str):
        value = row[spec]
        if isinstance(value, Mapping):
            texts = list(value[_opt(options, "choices_text_key", "text")])
            letters = [str(x) for x in value.get(_opt(options, "choices_label_key", "label"), _LETTERS[: len(texts)])]
            return [str(t) for t in texts], letters
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise _OptionError("choices", f"column {spec!r} holds {type(value).__name__}, not a list of choices")
        texts = [str(t) for t in value]
    elif isinstance(spec, list):
        texts = [str(row[c]) for c in spec]
    else:
        raise _OptionError("choices", "must be a column name or a list of column names")
    return texts, list(_LETTERS[: len(texts)])


def _correct_index(
    row: Mapping[str, Any], options: Mapping[str, Any], texts: list[str], letters: list[str]
) -> int | None:
    """Index of the right choice, or None when the row has no usable answer (e.g. a hidden test label)."""
    raw = row[_opt(options, "answer", required=True)]
    kind = _opt(options, "answer_type", "index")
    try:
        if kind == "index":
            idx = int(raw) - int(_opt(options, "index_base", 0))
        elif kind == "letter":
            idx = letters.index(str(raw).strip())
        elif kind == "text":
            idx = texts.index(str(raw))
        else:
            raise _OptionError("answer_type", f"is {kind!r}; use index, letter or text")
    except (TypeError, ValueError):
        return None
    return idx if 0 <= idx < len(texts) else None


@register("choice_vs_distractor")
def choice_vs_distractor(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Multiple choice -> binary: the right answer (label 1) or a random wrong one (label 0), p = 0.5.

    Options: `choices` (list column, list of columns, or {text, label} struct column), `answer` (column),
    `answer_type` index|letter|text, `index_base` (1 for 1-based indices), `false_if_answer_contains`
    (a substring: such rows always show a wrong answer, as Burns et al. do for CosmosQA's "None of the
    above choices ."). Adds `answer`, `hard_label`, `choices_text` (one per line) and
    `choices_lettered` ("A) ..." per line). Wrong answers identical to the right one are never shown;
    a row with no usable answer is dropped.
    """
    texts, letters = _choices(row, options)
    idx = _correct_index(row, options, texts, letters)
    if idx is None:
        return None
    correct = texts[idx]
    wrong = [t for i, t in enumerate(texts) if i != idx and t != correct]
    forced_false = _opt(options, "false_if_answer_contains")
    label = 0 if forced_false and forced_false in correct else int(rng.random() < 0.5)
    if label == 0 and not wrong:
        return None
    shown = correct if label else rng.choice(wrong)
    return {
        "answer": shown,
        "hard_label": label,
        "choices_text": "\n".join(texts),
        "choices_lettered": "\n".join(f"{a}) {t}" for a, t in zip(letters, texts)),
    }
