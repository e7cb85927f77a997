"""Making a submission: one method's metadata (its card) plus the results JSONs it produced, each cut
down to that method, so a file holds exactly what the leaderboard shows for it."""

from __future__ import annotations

import copy
import importlib.metadata
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ConfigError, W2SError
from ..paths import repo_root
from ..schema_io import validate, write_json

METHODS_DIR = "leaderboard/methods"  # where a submission's own code lives, one folder per method

SCHEMA_VERSION = 3  # 3: no record of reproduction inside (leaderboard/records/); code a built-in or a folder
PLACEHOLDER = "<fill in"  # strings left for the submitter; validation rejects them until replaced
CARD_FIELDS = ("authors", "code", "paper", "license", "contact", "recipe_notes")


def only_method(results: dict, method: str, path: str = "<results>") -> dict:
    """A copy of a results JSON holding one method (other methods' rows dropped)."""
    if method not in results.get("methods", {}):
        known = ", ".join(sorted(results.get("methods", {}))) or "none"
        raise ConfigError(path, "methods", f"no method {method!r} in these results (found: {known})")
    doc = copy.deepcopy(results)
    doc["methods"] = {method: doc["methods"][method]}
    doc["summary"] = {method: doc["summary"][method]} if method in doc.get("summary", {}) else {}
    for entry in doc["tasks"].values():
        entry["methods"] = {k: v for k, v in entry["methods"].items() if k == method}
    saw = doc.get("sealed", {}).get("method_saw")
    if isinstance(saw, dict):  # per-method record of what each method saw
        doc["sealed"]["method_saw"] = {k: v for k, v in saw.items() if k == method}
    doc.pop("comparison", None)  # differences between the run's methods: not part of one method's entry
    if isinstance(doc.get("transfer"), dict):
        doc["transfer"]["methods"] = {k: v for k, v in doc["transfer"]["methods"].items() if k == method}
    return doc


def default_card(method_cls: type | None) -> dict[str, Any]:
    """Card fields a Method class may declare (authors, code, paper, license, contact, non_default_recipe,
    recipe_notes as class attributes); built-in methods default to the repository's own code and licence,
    anything else to placeholders that validation rejects until filled in."""
    builtin = method_cls is not None and method_cls.__module__.startswith("w2sbench.")
    card: dict[str, Any] = {
        "authors": ["w2sbench maintainers (reference implementation)"] if builtin else [f"{PLACEHOLDER}: your name>"],
        "code": method_cls.__module__.replace(".", "/") + ".py" if builtin else f"{PLACEHOLDER}: URL of the code>",
        "paper": None,
        "license": "Apache-2.0" if builtin else f"{PLACEHOLDER}: licence of the code, e.g. MIT>",
        "contact": None,
        "non_default_recipe": False,
        "recipe_notes": None,
    }
    for key in (*CARD_FIELDS, "non_default_recipe"):
        value = getattr(method_cls, key, None) if method_cls is not None else None
        if value is not None:
            card[key] = list(value) if key == "authors" else value
    return card


def make_submission(
    results: list[tuple[str, dict]],
    method: str,
    method_cls: type | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A submission for `method` from (path, results JSON) pairs, one per setting."""
    if not results:
        raise W2SError("a submission needs at least one results JSON")
    docs = [only_method(doc, method, path) for path, doc in results]
    record = docs[0]["methods"][method]
    card = default_card(method_cls)
    meta = {
        "name": method,
        "version": record["version"],
        "authors": card["authors"],
        "description": record["description"] or f"{PLACEHOLDER}: one paragraph on what the method does>",
        "code": card["code"],
        "paper": card["paper"],
        "license": card["license"],
        "teacher_free": bool(record["teacher_free"]),
        "non_default_recipe": bool(card["non_default_recipe"]),
        "recipe_notes": card["recipe_notes"],
        "contact": card["contact"],
    }
    meta.update({k: v for k, v in (overrides or {}).items() if v is not None})
    meta["source"] = _source(method_cls, record)
    return {
        "schema_version": SCHEMA_VERSION,
        "method": meta,
        "results": docs,
        "submitted": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
            "w2sbench_version": __version__,
        },
    }


def _source(method_cls: type | None, record: dict) -> dict[str, Any]:
    """Where the leaderboard finds the method's code to reproduce it, pinned to the hash the results recorded."""
    if method_cls is None:
        return {
            "kind": "folder",
            "path": f"{PLACEHOLDER}: leaderboard/methods/NAME>",
            "entry": f"{PLACEHOLDER}: leaderboard/methods/NAME/__init__.py:ClassName>",
            "sha256": record["code"]["sha256"],
        }
    return code_entry(method_cls)


def code_entry(method_cls: type) -> dict[str, Any]:
    """How a submission names its method's code: a folder under leaderboard/methods/NAME/ (loaded from the
    repository), or an installed package pinned by version; with the hash the results recorded."""
    from ..methods.identity import method_source

    source = method_source(method_cls)
    if source.kind == "package":
        package = method_cls.__module__.partition(".")[0]
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = None
        return {
            "kind": "package",
            "package": package,
            "version": version,
            "entry": method_cls.name,
            "sha256": source.sha256,
        }
    root = repo_root()
    try:
        rel = source.root.relative_to(root).as_posix()
    except ValueError:
        rel = str(source.root)
    file = "__init__.py" if source.kind == "folder" else ""
    path = f"{rel}/{file}" if file else rel
    return {"kind": source.kind, "path": rel, "entry": f"{path}:{method_cls.__qualname__}", "sha256": source.sha256}


def check_schema(doc: Any, path: str) -> None:
    """Raise ConfigError for the most relevant violation of submission.schema.json (results included)."""
    validate(doc, "submission", path)


def write_submission(doc: dict[str, Any], path: Path) -> Path:
    """Schema-check, then write atomically (placeholders are allowed here; `validate` rejects them)."""
    check_schema(doc, str(path))
    return write_json(doc, path)


def method_class(name: str) -> type | None:
    """The registered Method class of `name`, or None where it cannot be loaded here (its card then
    starts from placeholders)."""
    from ..methods import load_method
    from ..methods.params import split_spec

    try:
        return load_method(split_spec(name)[0])  # a configured method's key: logconf[aux_coef=0.25]
    except W2SError:
        return None
