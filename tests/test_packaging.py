"""A non-editable install carries what the package needs at run time (the task registry included) and
nothing that only the tests use."""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_lists_the_tasks(tmp_path: Path) -> None:
    # only the wheel may provide w2sbench: no checkout on PYTHONPATH (pip would count it as installed)
    alone = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies (and pip, setuptools) come from the project's environment, whose .pth files, the
    # editable w2sbench among them, are not processed from here: only the wheel below provides w2sbench
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            py,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=alone,
    )
    wheel = next(wheels.glob("w2sbench-*.whl"))
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=alone,
    )

    where = subprocess.run(
        [py, "-c", "import w2sbench, w2sbench.tasks as t; print(w2sbench.__file__); print(t.builtin_task_dir())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=alone,
    ).stdout.split()
    assert where[0].startswith(site) and where[1] == str(Path(site) / "w2sbench" / "task_files")

    out = subprocess.run(
        [py, "-m", "w2sbench.cli", "tasks"], capture_output=True, text=True, check=True, cwd=tmp_path, env=alone
    ).stdout
    rows = out.splitlines()[2:]  # under the table's header and its rule
    listed = {ln.split()[0] for ln in rows if ln.strip() and not ln.startswith(("suite ", "<=N:"))}
    shipped = {p.stem for p in (ROOT / "tasks").rglob("*.yaml") if p.relative_to(ROOT / "tasks").parts[0] != "suites"}
    assert listed == shipped and {"rotten_tomatoes", "aar_chat", "boolq"} <= listed
    assert "suite v1: " in out and "suite v2 (default): " in out  # the suites ship with the tasks

    # the aar-mini fixtures' data ships beside their YAML: the CPU twin runs from a wheel
    sizes = subprocess.run(
        [py, "-c", "from w2sbench.tasks import load_task; print(load_task('aar_code_mini').load_splits().sizes())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "'test': " in sizes and "'train_label': " in sizes

    installed = {p.relative_to(Path(site) / "w2sbench").as_posix() for p in (Path(site) / "w2sbench").rglob("*.py")}
    assert "training/finetune.py" in installed and not any("random_models" in p for p in installed)
