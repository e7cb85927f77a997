"""The task registry: declarative YAML files in folders, validated against a JSON Schema when loaded.

Adding a task means adding a YAML file (to the repository's tasks/, which installs with the package as
w2sbench/task_files/, or to a folder on $W2SBENCH_TASKS_PATH); no code changes. Errors name the file and the
dotted field.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w2sbench.errors import ConfigError, UnknownNameError
from w2sbench.paths import repo_root
from w2sbench.schema_io import read_yaml, validate

from . import sources
from .sources import Example, Splits

__all__ = [
    "Example",
    "Splits",
    "Task",
    "Suite",
    "task_dirs",
    "list_tasks",
    "list_suites",
    "load_suite",
    "load_task",
    "families_of",
    "resolve_tasks",
    "validate_config",
]

TASKS_PATH_ENV = "W2SBENCH_TASKS_PATH"
SUITES_DIR = "suites"
"""Each task folder's suites/ holds suite files (<name>.yaml: development and held-out task lists), not tasks."""
DEFAULT_SUITE = "v2"
"""What `--tasks default` (the CLI's and evaluate()'s default) runs."""


def builtin_task_dir() -> Path:
    """The registry that ships with w2sbench: w2sbench/task_files/ in an installed wheel, else the source
    checkout's tasks/ (an editable install)."""
    packaged = Path(__file__).resolve().parents[1] / "task_files"
    return packaged if packaged.is_dir() else repo_root() / "tasks"


def validate_config(config: Any, path: Path | str) -> None:
    """Check a parsed task against the schema and the rules a schema cannot say; raise ConfigError."""
    if not isinstance(config, dict):
        raise ConfigError(str(path), "", "a task file must be a YAML mapping")
    validate(config, "task", str(path))
    stem = Path(path).stem
    if config["task"] != stem:
        raise ConfigError(str(path), "task", f"is {config['task']!r} but must equal the file name {stem!r}")
    try:
        config["prompt"].format(text="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            str(path), "prompt", f"may use only {{text}} (write {{{{ }}}} for a literal brace): {exc!r}"
        ) from None
    if len(set(config["label_words"])) != 2:
        raise ConfigError(str(path), "label_words", "the two label words must differ")
    if config.get("group") and sources.split_parts(config) is not None:
        raise ConfigError(
            str(path), "group", "groups are dealt to splits cut from one pool; a source in parts has its splits already"
        )
    if config.get("formatter"):
        from .formatters import get_formatter, parse_spec

        try:
            get_formatter(parse_spec(config["formatter"])[0])
        except UnknownNameError as exc:
            raise ConfigError(str(path), "formatter", str(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    config = read_yaml(path)
    # Map keys are compared as strings (so `1:` and "1": mean the same); normalising them keeps the
    # config JSON-serialisable for hashing.
    label = config.get("label") if isinstance(config, dict) else None
    if isinstance(label, dict) and isinstance(label.get("map"), dict):
        label["map"] = {str(k): v for k, v in label["map"].items()}
    return config


@dataclass(frozen=True)
class Task:
    """One validated task file. Everything that determines its data is in `config` (hence `hash`)."""

    name: str
    path: Path
    config: dict[str, Any] = field(repr=False, compare=True)
    tags: list[str] = field(default_factory=list)
    label_words: list[str] = field(default_factory=list)
    prompt_template: str = "{text}"

    @classmethod
    def from_file(cls, path: Path | str) -> Task:
        path = Path(path)
        config = _read_yaml(path)
        validate_config(config, path)
        return cls(
            name=config["task"],
            path=path,
            config=config,
            tags=list(config.get("tags", [])),
            label_words=list(config["label_words"]),
            prompt_template=config["prompt"],
        )

    def __hash__(self) -> int:
        return hash((self.name, self.hash))

    @property
    def description(self) -> str:
        return self.config["description"]

    @property
    def card(self) -> dict[str, str]:
        return dict(self.config["card"])

    @property
    def metric(self) -> str:
        return self.config.get("metric", "accuracy")

    @property
    def version(self) -> int:
        return int(self.config["version"])

    @property
    def hash(self) -> str:
        """Content hash of the canonical config: cache keys and results use it to pin the exact task."""
        canonical = json.dumps(self.config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def prompt(self, text: str) -> str:
        return self.prompt_template.format(text=text)

    def load_examples(self) -> list[Example]:
        """All usable examples in file order (filtered, labelled, de-duplicated; not balanced)."""
        return sources.load_examples(self.config, self.path)

    def load_splits(self, sizes: dict[str, int] | None = None, seed: int | None = None) -> Splits:
        """The fixed splits; `sizes` (keys train_label/train_unlabel/test, optionally seed) override the YAML's."""
        return sources.load_splits(self.config, self.path, sizes, seed)


def task_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Folders searched for task YAMLs, in order: the built-in registry, $W2SBENCH_TASKS_PATH, `extra`."""
    builtin = builtin_task_dir()
    os.stat(builtin)  # always there in an install; where it is not (a sandboxed method) say so, not "unknown task"
    candidates = [builtin]
    candidates += [Path(p).expanduser() for p in os.environ.get(TASKS_PATH_ENV, "").split(os.pathsep) if p]
    candidates += [Path(p).expanduser() for p in extra or []]
    seen: set[Path] = set()
    out: list[Path] = []
    for folder in candidates:
        resolved = folder.resolve()
        if resolved.is_dir() and resolved not in seen:
            seen.add(resolved)
            out.append(folder)
    return out


def list_tasks(extra: list[Path] | None = None) -> dict[str, Path]:
    """Task name (file stem) -> YAML path, found without parsing; two files with one name are an error."""
    found: dict[str, Path] = {}
    for folder in task_dirs(extra):
        os.listdir(folder)  # an unreadable registry raises (PermissionError) instead of listing nothing
        for path in sorted(folder.rglob("*.yaml")) + sorted(folder.rglob("*.yml")):
            if path.name.startswith((".", "_")) or path.relative_to(folder).parts[0] == SUITES_DIR:
                continue
            name = path.stem
            if name in found and found[name].resolve() != path.resolve():
                raise ConfigError(str(path), "task", f"name {name!r} is also defined by {found[name]}; rename one")
            found.setdefault(name, path)
    return dict(sorted(found.items()))


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or os.sep in spec or "/" in spec


def load_task(name_or_path: str, extra: list[Path] | None = None) -> Task:
    """A task by registered name, or by path to a YAML file."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        try:
            path.stat()  # a file the process may not read raises here (PermissionError), not "no such file"
        except FileNotFoundError:
            raise ConfigError(str(path), "", "no such task file") from None
        if not path.is_file():
            raise ConfigError(str(path), "", "no such task file")
        return Task.from_file(path)
    known = list_tasks(extra)
    if name_or_path not in known:
        raise UnknownNameError("task", name_or_path, known)
    return Task.from_file(known[name_or_path])


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of tasks: development and held-out (tasks/suites/<name>.yaml)."""

    name: str
    version: int
    path: Path
    development: tuple[str, ...]
    heldout: tuple[str, ...]
    families: dict[str, list[str]] = field(default_factory=dict, compare=False)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.development + self.heldout

    def family_of(self) -> dict[str, str]:
        """task -> its family ({} where the suite names no families)."""
        return {t: family for family, members in self.families.items() for t in members}


def list_suites(extra: list[Path] | None = None) -> dict[str, Path]:
    """Suite name -> file, from every task folder's suites/ (the first folder naming one wins)."""
    found: dict[str, Path] = {}
    for folder in task_dirs(extra):
        suites = folder / SUITES_DIR
        if suites.is_dir():
            for path in sorted(suites.glob("*.yaml")):
                if not path.name.startswith((".", "_")):
                    found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def load_suite(name: str, extra: list[Path] | None = None) -> Suite:
    """A suite by name ('default' is DEFAULT_SUITE), checked: its tasks exist, none is listed twice, each
    held-out task carries a held-out tag and no development task does (the tag is what results read)."""
    from w2sbench.scoring import is_heldout

    name = DEFAULT_SUITE if name == "default" else name
    known = list_suites(extra)
    if name not in known:
        raise UnknownNameError("suite", name, list(known))
    path = known[name]
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(str(path), "", "a suite file must be a YAML mapping")
    validate(doc, "suite", str(path))
    if doc["suite"] != path.stem:
        raise ConfigError(str(path), "suite", f"is {doc['suite']!r} but must equal the file name {path.stem!r}")
    tasks = list_tasks(extra)
    both = set(doc["development"]) & set(doc["heldout"])
    if both:
        raise ConfigError(str(path), "heldout", f"{sorted(both)[0]!r} is also a development task")
    for role in ("development", "heldout"):
        for i, task_name in enumerate(doc[role]):
            if task_name not in tasks:
                raise ConfigError(str(path), f"{role}.{i}", f"no task {task_name!r} is registered")
            tags = Task.from_file(tasks[task_name]).tags
            if is_heldout(tags) != (role == "heldout"):
                raise ConfigError(
                    str(path),
                    f"{role}.{i}",
                    f"{task_name!r} is {'not ' if role == 'heldout' else ''}tagged held-out (tags: {', '.join(tags)}); "
                    "results read the role from the task's tags, so the suite must agree with them",
                )
    listed = set(doc["development"]) | set(doc["heldout"])
    seen: dict[str, str] = {}
    for family, members in (doc.get("families") or {}).items():
        for task_name in members:
            if task_name not in listed:
                raise ConfigError(str(path), f"families.{family}", f"{task_name!r} is not one of the suite's tasks")
            if task_name in seen:
                also = f"{task_name!r} is also in family {seen[task_name]!r}"
                raise ConfigError(str(path), f"families.{family}", also)
            seen[task_name] = family
    if seen and len(seen) < len(listed):  # leave-one-family-out needs each task in one family
        missing = sorted(listed - set(seen))[0]
        raise ConfigError(str(path), "families", f"{missing!r} is in no family (name every task's family, or none)")
    return Suite(
        name=doc["suite"],
        version=int(doc["version"]),
        path=path,
        development=tuple(doc["development"]),
        heldout=tuple(doc["heldout"]),
        families={k: list(v) for k, v in (doc.get("families") or {}).items()},
    )


def families_of(task_names: list[str] | tuple[str, ...], extra: list[Path] | None = None) -> dict[str, str]:
    """task -> its family, from the suite whose tasks are exactly `task_names` and which names families (the
    default suite first, then by name); {} where none does. For rank robustness (leave one family out) on
    results or a leaderboard setting, which record their tasks but not the suite they came from."""
    wanted = set(task_names)
    known = list_suites(extra)
    for name in sorted(known, key=lambda n: (n != DEFAULT_SUITE, n)):
        doc = read_yaml(known[name])
        if not isinstance(doc, dict) or not doc.get("families"):
            continue
        if set(doc.get("development") or []) | set(doc.get("heldout") or []) == wanted:
            return load_suite(name, extra).family_of()
    return {}


def resolve_tasks(spec: str, extra: list[Path] | None = None) -> list[Task]:
    """'a,b' (task names, paths, suite names such as 'v1' or 'default', or tags) -> tasks, in the order
    given, without repeats. A task name wins over a suite, a suite over a tag (v1's tasks still carry the
    tag `default`, which `default` no longer means)."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    known = list_tasks(extra)
    if not items:
        raise UnknownNameError("task", spec, known)
    suites = list_suites(extra)
    loaded: dict[str, Task] = {}

    def get(name: str) -> Task:
        if name not in loaded:
            loaded[name] = Task.from_file(known[name])
        return loaded[name]

    out: dict[str, Task] = {}
    for item in items:
        if _looks_like_path(item) or item in known:
            task = get(item) if item in known else load_task(item, extra)
            out.setdefault(task.name, task)
            continue
        if item in suites or (item == "default" and DEFAULT_SUITE in suites):
            for name in load_suite(item, extra).tasks:
                out.setdefault(name, get(name))
            continue
        tagged = [get(n) for n in known if item in get(n).tags]
        if not tagged:
            tags = {t for n in known for t in get(n).tags}
            raise UnknownNameError("task", item, set(known) | tags | set(suites))
        for task in tagged:
            out.setdefault(task.name, task)
    return list(out.values())
