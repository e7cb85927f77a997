"""Suites: named, versioned task lists (tasks/suites/<name>.yaml) with development and held-out tasks;
`default` is tasks.DEFAULT_SUITE."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from w2sbench.errors import ConfigError, UnknownNameError
from w2sbench.paths import repo_root
from w2sbench.scoring import is_heldout
from w2sbench.tasks import DEFAULT_SUITE, list_suites, list_tasks, load_suite, resolve_tasks

pytestmark = pytest.mark.usefixtures("isolated_data")

REPO = repo_root()
V1 = ["rotten_tomatoes", "vader_amazon", "vader_nyt", "election_tweets", "vader_tweets"]


def test_suite_v1_by_name_and_suite_files_are_not_tasks() -> None:
    assert "v1" in list_suites() and DEFAULT_SUITE == "v2"
    assert [t.name for t in resolve_tasks("v1")] == V1
    assert all(is_heldout(t.tags) == (t.name in ("election_tweets", "vader_tweets")) for t in resolve_tasks("v1"))
    assert "v1" not in list_tasks() and not any(p.parent.name == "suites" for p in list_tasks().values())


def test_default_is_suite_v2() -> None:
    assert {"v1", "v2"} <= set(list_suites()) and DEFAULT_SUITE == "v2"
    v2 = load_suite("v2")
    assert [t.name for t in resolve_tasks("default")] == list(v2.tasks) == [t.name for t in resolve_tasks("v2")]
    assert load_suite("default") == v2
    assert "v2" not in list_tasks()


def test_v2_is_ten_tasks_from_six_families_held_out_by_whole_family() -> None:
    suite = load_suite("v2")
    assert len(suite.tasks) >= 10 and len(suite.families) >= 6
    assert sorted(t for members in suite.families.values() for t in members) == sorted(suite.tasks)
    for family, members in suite.families.items():
        roles = {t in suite.heldout for t in members}
        assert len(roles) == 1, f"family {family} is split between development and held-out"
    assert suite.heldout and suite.development
    for task in resolve_tasks("v2"):
        assert is_heldout(task.tags) == (task.name in suite.heldout)
        assert "candidate" not in task.tags


def test_v1_task_files_are_byte_identical() -> None:
    """Suite v1's numbers stay reproducible only while its task files (and so their hashes) do not move."""
    digests = {n: hashlib.sha256((REPO / "tasks" / f"{n}.yaml").read_bytes()).hexdigest()[:16] for n in V1}
    assert digests == {
        "rotten_tomatoes": "72daea10c3bb6805",
        "vader_amazon": "e7664df5c7f0d7ab",
        "vader_nyt": "51c22d05e4f8dc35",
        "election_tweets": "d6b626b77ee7ed93",
        "vader_tweets": "10acebc8dc4087a7",
    }


def test_a_suite_that_disagrees_with_a_tasks_tags_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mytasks"
    (folder / "suites").mkdir(parents=True)
    (folder / "local_a.yaml").write_text(
        (REPO / "tests" / "fixtures" / "reviews.yaml").read_text().replace("task: reviews", "task: local_a")
    )
    (folder / "suites" / "mine.yaml").write_text(
        "suite: mine\nversion: 1\ndescription: x\ndevelopment: [rotten_tomatoes]\nheldout: [local_a]\n"
    )
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", str(folder))
    with pytest.raises(ConfigError, match=r"field 'heldout.0': 'local_a' is not tagged held-out"):
        resolve_tasks("mine")
    (folder / "suites" / "mine.yaml").write_text(
        "suite: mine\nversion: 1\ndescription: x\ndevelopment: [nope]\nheldout: []\n"
    )
    with pytest.raises(ConfigError, match="no task 'nope'"):
        load_suite("mine")
    with pytest.raises(UnknownNameError, match="suite"):
        load_suite("nothere")
