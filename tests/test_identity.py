"""A built-in method's identity is its own code (the methods package), not the whole harness: an edit to the
site, the CLI or a docstring elsewhere leaves the reference submissions' pins valid, while an edit to the
trainer or the inference code changes the harness hash that the method stage's cache key and the results
carry (w2sbench/methods/identity.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from w2sbench.leaderboard.reproduce import outdated, submission_digest
from w2sbench.methods import identity, load_method
from w2sbench.methods.identity import harness_source, method_source

PACKAGE = Path(identity.__file__).resolve().parent.parent


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """A copy of the w2sbench package whose methods package identity.py reads."""
    root = tmp_path / "w2sbench"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__", "site", "*.pyc"))
    monkeypatch.setattr(identity, "METHODS_PACKAGE", root / "methods")
    harness_source.cache_clear()
    yield root
    harness_source.cache_clear()


def builtin_sha() -> str:
    return method_source(load_method("vanilla")).sha256


def test_a_builtin_is_identified_by_the_methods_package_only(copy):
    before, harness = builtin_sha(), harness_source()["sha256"]
    assert method_source(load_method("vanilla")).root == copy / "methods"
    assert method_source(load_method("logconf")).sha256 == before  # one package, one identity
    (copy / "cli.py").write_text((copy / "cli.py").read_text() + "\n# a docstring edit\n")
    (copy / "leaderboard" / "site.py").write_text("# another colour\n")
    (copy / "methods" / "NOTES.txt").write_text("not Python: not part of the identity\n")
    harness_source.cache_clear()
    assert builtin_sha() == before and harness_source()["sha256"] == harness

    (copy / "training" / "head.py").write_text((copy / "training" / "head.py").read_text() + "\n# changed\n")
    harness_source.cache_clear()
    assert builtin_sha() == before and harness_source()["sha256"] != harness  # the harness moved, not the method

    (copy / "methods" / "builtin.py").write_text((copy / "methods" / "builtin.py").read_text() + "\n# edit\n")
    assert builtin_sha() != before


def test_moving_the_methods_package_keeps_its_identity(copy, tmp_path, monkeypatch):
    before = builtin_sha()
    moved = tmp_path / "elsewhere" / "engine" / "methods"
    shutil.copytree(copy / "methods", moved)
    monkeypatch.setattr(identity, "METHODS_PACKAGE", moved)
    assert builtin_sha() == before


def test_the_harness_record_names_its_libraries():
    record = harness_source()
    assert record["files"] >= 5 and len(record["sha256"]) == 64
    assert record["libraries"]["torch"] and record["libraries"]["numpy"]


def _submission(
    sha: str, harness: str | None, reproduced: bool = True, settings: tuple[str, ...] = ("tiny", "tiny-smollm2")
) -> dict:
    doc = {
        "method": {
            "name": "vanilla",
            "source": {"kind": "package", "package": "w2sbench", "entry": "vanilla", "sha256": sha},
        },
        "results": [
            {"setting": {"name": s}, **({"harness": {"sha256": harness}} if harness else {})} for s in settings
        ],
    }
    if reproduced:
        doc["reproduced"] = {"ok": True, "submission_sha256": submission_digest(doc)}
    return doc


def test_make_seed_reruns_only_what_no_longer_matches():
    sha, harness = builtin_sha(), harness_source()["sha256"]
    assert outdated(_submission(sha, harness)) is None
    assert "method's code changed" in outdated(_submission("0" * 64, harness))
    assert "harness" in outdated(_submission(sha, "1" * 64))
    assert "harness" in outdated(_submission(sha, None))  # made before the harness was recorded
    assert "not reproduced" in outdated(_submission(sha, harness, reproduced=False))
    # a seed setting the submission has no results on (a new official setting): rerun it there
    assert outdated(_submission(sha, harness, settings=("tiny",))) == "it has no results on setting 'tiny-smollm2'"
    assert outdated(_submission(sha, harness, settings=("tiny",)), settings=("tiny",)) is None
    third_party = _submission("0" * 64, None)
    third_party["method"]["source"]["package"] = "someone_elses"
    assert outdated(third_party) is None  # only the reference methods are make_seed.sh's
