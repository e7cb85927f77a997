"""AAR task families: a folder in the AAR layout (train_label.jsonl, train_unlabel.jsonl, test.jsonl),
pairwise (chat) and binary (math, code), pointed at by $W2SBENCH_AAR_DIR. The fixtures are invented
rows in that layout (tests/fixtures/aar/<family>/); the expected prompts are written out by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from w2sbench.errors import ConfigError
from w2sbench.tasks import Task, load_task, resolve_tasks

REPO = Path(__file__).resolve().parent.parent
AAR_TASKS = REPO / "tasks" / "aar"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "aar"


pytestmark = pytest.mark.usefixtures("isolated_data", "no_network")


@pytest.fixture(autouse=True)
def _aar_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("W2SBENCH_AAR_DIR", str(FIXTURES))


def test_families_and_transfer_tags() -> None:
    assert {t.name for t in resolve_tasks("aar")} == {"aar_chat", "aar_math", "aar_code"}
    assert {t.name for t in resolve_tasks("aar-indist")} == {"aar_chat"}
    assert {t.name for t in resolve_tasks("aar-heldout")} == {"aar_math", "aar_code"}
    for task in resolve_tasks("aar"):
        assert task.config["source"]["type"] == "aar" and task.config["balance"] is False
        assert "${W2SBENCH_AAR_DIR}" in task.config["source"]["path"]


def test_pairwise_prompt_labels_and_premade_splits() -> None:
    task = load_task("aar_chat")
    assert task.label_words == ["A", "B"]  # the sandbox's label tokens: no leading space (core/data.py)
    splits = task.load_splits()
    # the AAR prompt exactly: "Question: {prompt}\nAnswer A: {first}\nAnswer B: {second}\nLabel:"
    got = {(task.prompt(e.text), e.label) for e in splits.train_label}
    assert got == {
        ("Question: Say hi politely.\nAnswer A: Hello! How can I help?\nAnswer B: What do you want.\nLabel:", 0),
        ("Question: Name a prime number.\nAnswer A: Nine.\nAnswer B: Seven.\nLabel:", 1),
        ("Question: What is 3 * 4?\nAnswer A: 12\nAnswer B: 7\nLabel:", 0),
    }
    assert {(e.text, e.label) for e in splits.test} == {
        ("Question: What is the capital of Italy?\nAnswer A: Rome.\nAnswer B: Milan.", 0),
        ("Question: Spell 'cat' backwards.\nAnswer A: tca\nAnswer B: tac", 1),
    }
    # the Italy row is also in train_unlabel.jsonl: it is kept in test and removed from training
    assert [e.text.splitlines()[0] for e in sorted(splits.train_unlabel, key=lambda e: e.text)] == [
        "Question: Give a synonym for big.",
        "Question: Translate 'gato' to English.",
    ]
    assert splits.sizes() == {"train_label": 3, "train_unlabel": 2, "test": 2}


def test_binary_code_keeps_newlines_and_maps_true_false() -> None:
    task = load_task("aar_code")
    assert task.label_words == ["False", "True"]
    splits = task.load_splits()
    test = sorted((task.prompt(e.text), e.label) for e in splits.test)
    assert test == [
        ("Question: Write sq(x) returning x squared.\nAnswer: def sq(x):\n    return x * x\nLabel:", 1),
        ("Question: Write sq(x) returning x squared.\nAnswer: def sq(x):\n    return x + x\nLabel:", 0),
    ]
    assert splits.sizes() == {"train_label": 2, "train_unlabel": 3, "test": 2}


def test_yaml_sizes_cap_premade_splits_with_a_seed() -> None:
    task = load_task("aar_code")
    a = task.load_splits({"train_unlabel": 2})
    assert len(a.train_unlabel) == 2 and len(a.test) == 2
    assert a == task.load_splits({"train_unlabel": 2})
    texts = {e.text for seed in range(8) for e in task.load_splits({"train_unlabel": 1}, seed=seed).train_unlabel}
    assert len(texts) > 1, "the capped subset is a seeded sample, not always the first rows"


def test_unset_variable_and_missing_folder_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("W2SBENCH_AAR_DIR")
    with pytest.raises(ConfigError, match="W2SBENCH_AAR_DIR") as info:
        load_task("aar_math").load_splits()
    assert info.value.field == "source.path"
    monkeypatch.setenv("W2SBENCH_AAR_DIR", str(tmp_path))  # no math/ inside
    with pytest.raises(ConfigError, match="no such folder") as info:
        load_task("aar_math").load_splits()
    assert info.value.field == "source.path"
    (tmp_path / "math").mkdir()
    shutil.copy(FIXTURES / "code" / "test.jsonl", tmp_path / "math" / "test.jsonl")
    with pytest.raises(ConfigError, match="train_unlabel.jsonl"):
        load_task("aar_math").load_splits()


def test_unlabelled_files_explain_why_labels_are_needed(tmp_path: Path) -> None:
    config = yaml.safe_load((AAR_TASKS / "aar_math.yaml").read_text(encoding="utf-8"))
    config["source"]["path"] = str(FIXTURES / "unlabelled")
    path = tmp_path / "aar_math.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="sealed") as info:
        Task.from_file(path).load_splits()
    assert info.value.field == "source.path" and "test.jsonl" in str(info.value)


def test_a_user_copy_points_at_its_own_folder(tmp_path: Path) -> None:
    """A relative path is read from the YAML's folder: copy the family YAML next to the data and go."""
    shutil.copytree(FIXTURES / "chat", tmp_path / "mychat")
    config = yaml.safe_load((AAR_TASKS / "aar_chat.yaml").read_text(encoding="utf-8"))
    config["source"]["path"] = "mychat"
    path = tmp_path / "aar_chat.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert Task.from_file(path).load_splits().sizes() == {"train_label": 3, "train_unlabel": 2, "test": 2}


def test_aar_source_rejects_fields_of_other_sources(tmp_path: Path) -> None:
    config = yaml.safe_load((AAR_TASKS / "aar_chat.yaml").read_text(encoding="utf-8"))
    config["source"]["split"] = "train"
    path = tmp_path / "aar_chat.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Task.from_file(path)
    assert info.value.field == "source.split"


# ------------------------------------------------------------------------------ aar-mini: the shipped fixtures

# The AAR sandbox's prompt templates and label tokens (w2s_research/core/data.py): COMPARISON_TEMPLATE with
# COMPARISON_LABEL_TOKENS for pairwise rows, BINARY_TEMPLATE with BINARY_LABEL_TOKENS for binary rows.
SANDBOX_PAIRWISE = "Question: {prompt}\nAnswer A: {first}\nAnswer B: {second}\nLabel:"
SANDBOX_BINARY = "Question: {question}\nAnswer: {choice}\nLabel:"
SANDBOX_LABELS = {"pairwise": ["A", "B"], "binary": ["False", "True"]}
MINI = REPO / "tasks" / "aar" / "mini"


def _rows(family: str, split: str) -> list[dict]:
    import json

    return [json.loads(line) for line in (MINI / "data" / family / f"{split}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family, kind", [("chat", "pairwise"), ("math", "binary"), ("code", "binary")])
def test_mini_fixtures_are_in_the_sandbox_row_format_and_prompt(family: str, kind: str) -> None:
    """Rows as the sandbox's load_jsonl reads them (pairwise: prompt/first/second + label "A"/"B"; binary:
    question/choice + JSON true/false), balanced, disjoint; the task's prompt is the sandbox's template."""
    task = load_task(f"aar_{family}_mini")
    assert "aar-mini" in task.tags and task.label_words == SANDBOX_LABELS[kind]
    texts: dict[str, set[str]] = {}
    for split in ("train_label", "train_unlabel", "test"):
        rows = _rows(family, split)
        fields = {"prompt", "first", "second", "label", "subset"} if kind == "pairwise" else None
        fields = fields or {"question", "choice", "label", "subset"}
        assert all(set(r) == fields for r in rows)
        labels = [r["label"] for r in rows]
        allowed = {"A", "B"} if kind == "pairwise" else {True, False}
        assert set(labels) == allowed and labels.count(labels[0]) == len(labels) // 2  # balanced
        expected = {}
        for r in rows:
            prompt = SANDBOX_PAIRWISE.format(**r) if kind == "pairwise" else SANDBOX_BINARY.format(**r)
            label = ("A", "B").index(r["label"]) if kind == "pairwise" else int(r["label"])
            expected[prompt] = label
        examples = getattr(task.load_splits(), split)
        got = {task.prompt(e.text): e.label for e in examples}
        assert got == expected  # every row, its prompt exactly as the sandbox formats it, its label
        texts[split] = set(got)
    assert not (texts["test"] & texts["train_unlabel"]) and not (texts["test"] & texts["train_label"])
    assert not (texts["train_label"] & texts["train_unlabel"])


def test_mini_data_is_what_its_generator_writes(tmp_path: Path) -> None:
    """The shipped rows are reproducible: scripts/make_aar_mini.py (seed 0) writes the same files."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(REPO / "scripts" / "make_aar_mini.py"), "--out", str(tmp_path)], check=True)
    for family in ("chat", "math", "code"):
        for split in ("train_label", "train_unlabel", "test"):
            name = f"{family}/{split}.jsonl"
            assert (tmp_path / name).read_text() == (MINI / "data" / name).read_text(), name
