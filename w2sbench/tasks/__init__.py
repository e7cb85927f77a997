"""Tasks: declarative YAML files read into examples and fixed, disjoint splits.

- registry.py: the registry of task YAMLs and suites (development and held-out lists, families), each file
  validated against the task schema, errors naming the file and the field;
- sources.py: a task's declared source (a package's file, a pinned data wheel, the hub, a local file) read
  into examples and split, labels kept in the harness;
- formatters.py: row transforms a text template cannot express (multiple choice, preference pairs).
"""

from .registry import (
    DEFAULT_SUITE,
    Example,
    Splits,
    Suite,
    Task,
    builtin_task_dir,
    families_of,
    list_suites,
    list_tasks,
    load_suite,
    load_task,
    resolve_tasks,
    task_dirs,
    validate_config,
)

__all__ = [
    "DEFAULT_SUITE",
    "Example",
    "Splits",
    "Suite",
    "Task",
    "builtin_task_dir",
    "families_of",
    "list_suites",
    "list_tasks",
    "load_suite",
    "load_task",
    "resolve_tasks",
    "task_dirs",
    "validate_config",
]
