"""Packaging beyond what setup.cfg can say: the top-level tasks/ folder (the YAML registry contributors add
to, subfolders included) installs inside the package as w2sbench/task_files/, so a wheel or a
non-editable install carries its tasks."""

from setuptools import find_namespace_packages, setup

TASK_PACKAGES = ["w2sbench.task_files", *(f"w2sbench.task_files.{p}" for p in find_namespace_packages("tasks"))]

setup(
    packages=[*find_namespace_packages(include=["w2sbench", "w2sbench.*"], exclude=["*__pycache__"]), *TASK_PACKAGES],
    package_dir={"w2sbench.task_files": "tasks"},
    # setup()'s package_data replaces setup.cfg's [options.package_data]: both are listed here
    package_data={"w2sbench": ["schemas/*.json", "settings/*.yaml", "leaderboard/site/*"]}
    | {p: ["*.yaml"] for p in TASK_PACKAGES},
)
