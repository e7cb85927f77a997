"""A built-in method's identity is its own code (the methods package), not the whole harness: an edit to the
site, the CLI or a docstring elsewhere leaves the reference submissions' pins valid, while an edit to the
trainer or the inference code changes the harness hash that the method stage's cache key and the results
carry (w2sbench/methods/identity.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from w2sbench.leaderboard.records import submission_digest
from w2sbench.leaderboard.reproduce import outdated
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


def _submission(sha: str, harness: str | None, settings: tuple[str, ...] = ("tiny", "tiny-smollm2")) -> dict:
    return {
        "method": {
            "name": "vanilla",
            "source": {"kind": "package", "package": "w2sbench", "entry": "vanilla", "sha256": sha},
        },
        "results": [
            {"setting": {"name": s}, **({"harness": {"sha256": harness}} if harness else {})} for s in settings
        ],
    }


def _record(doc: dict, harness: str, ok: bool = True) -> dict:
    """The parts of a record of reproduction (leaderboard/records/) that `outdated` reads."""
    return {
        "submission": {"sha256": submission_digest(doc)},
        "method": doc["method"]["name"],
        "code_sha256": doc["method"]["source"]["sha256"],
        "harness_sha256": harness,
        "ok": ok,
        "failures": [] if ok else ["tiny/sms_spam: w2s accuracy 80.0% reproduced vs 90.0% submitted"],
    }


def _outdated(sha: str, harness: str | None, reproduced: bool = True, **kwargs) -> str | None:
    settings = kwargs.pop("settings", ("tiny", "tiny-smollm2"))
    doc = _submission(sha, harness, settings)
    return outdated(doc, _record(doc, harness_source()["sha256"]) if reproduced else None, **kwargs)


def test_make_seed_reruns_only_what_no_longer_matches():
    sha, harness = builtin_sha(), harness_source()["sha256"]
    assert _outdated(sha, harness) is None
    assert "method's code changed" in _outdated("0" * 64, harness)
    assert "harness" in _outdated(sha, "1" * 64)
    assert "harness" in _outdated(sha, None)  # made before the harness was recorded
    assert "not reproduced" in _outdated(sha, harness, reproduced=False)
    # a seed setting the submission has no results on (a new official setting): rerun it there
    assert _outdated(sha, harness, settings=("tiny",)) == "it has no results on setting 'tiny-smollm2'"
    doc = _submission(sha, harness, ("tiny",))
    assert outdated(doc, _record(doc, harness), settings=("tiny",)) is None
    # the record: of another file, failed, or made under another harness
    other = _submission(sha, harness)
    record = _record(other, harness)
    other["results"][0]["note"] = "edited after its reproduction"
    assert "changed after it was reproduced" in outdated(other, record)
    doc = _submission(sha, harness)
    assert outdated(doc, _record(doc, harness, ok=False)).startswith("did not reproduce: tiny/sms_spam")
    assert "harness" in outdated(doc, _record(doc, "2" * 64))
    third_party = _submission("0" * 64, None)
    third_party["method"]["source"]["package"] = "someone_elses"
    assert outdated(third_party, None) is None  # only the reference methods are make_seed.sh's
