"""The example external method (examples/w2sbench-example-method) plugs in without touching the package:
installed into a temporary environment it is found through its entry point and runs from the CLI; as a
file it runs through `--method path/file.py:Class`."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from w2sbench import load_method

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "w2sbench-example-method"
FILE_SPEC = f"{EXAMPLE / 'w2sbench_example_method' / '__init__.py'}:Sharpen"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> Path:
    """A fresh venv that sees the project's packages (a .pth line) and has only the plug-in installed."""
    env_dir = tmp_path_factory.mktemp("plugin-env")
    env_dir.chmod(0o755)  # readable by the unprivileged user the sandbox runs methods as (the harness may be root)
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "w2sbench-project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n" + str(ROOT) + "\n")
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(EXAMPLE)],
        check=True,
        capture_output=True,
        text=True,
    )
    return py


def test_installed_plugin_is_listed_with_its_origin(plugin_python):
    out = subprocess.run(
        [plugin_python, "-m", "w2sbench.cli", "methods"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("sharpen"))
    assert "entry point w2sbench_example_method:Sharpen" in line
    assert "vanilla" in out  # the built-ins are still there
    # and it is not visible to the project environment itself: nothing in the package was touched
    assert (
        "sharpen"
        not in subprocess.run(
            [sys.executable, "-m", "w2sbench.cli", "methods"], capture_output=True, text=True, check=True
        ).stdout
    )


def test_file_plugin_targets_by_hand():
    """The example's formula, run here on purpose (a test of its code): the harness only ever gets its
    stand-in, whose targets() is not the code's."""
    import importlib.util

    file = EXAMPLE / "w2sbench_example_method" / "__init__.py"
    spec = importlib.util.spec_from_file_location("example_sharpen", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = module.Sharpen
    assert load_method(FILE_SPEC).targets is not cls.targets  # the harness's class never runs the code
    from support.toy import make_ctx_only

    ctx = make_ctx_only(weak=[0.5, 0.75, 0.2])
    targets, _ = cls().targets(ctx)
    # T = 0.5: w^2 / (w^2 + (1-w)^2): 0.5 -> 0.5, 0.75 -> 0.9, 0.2 -> 0.04/0.68
    assert targets.tolist() == pytest.approx([0.5, 0.9, 0.04 / 0.68], abs=1e-6)


def test_file_plugin_runs_sealed(tmp_path):
    from support.toy import make_pipeline

    pipe, task = make_pipeline(tmp_path)
    probs, compute, _ = pipe.run_method(task, load_method(FILE_SPEC), 0)
    assert probs.shape == (20,) and compute["sealed"] and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow
def test_installed_plugin_runs_through_the_cli(plugin_python, tmp_path):
    """Uses the feature cache (W2SBENCH_CACHE or the default); cold, this computes features (minutes)."""
    out = tmp_path / "r.json"
    res = subprocess.run(
        [
            plugin_python,
            "-m",
            "w2sbench.cli",
            "eval",
            "-q",
            "--method",
            "vanilla,sharpen",
            "--tasks",
            "rotten_tomatoes",
            "--limit",
            "100,200,100",
            "--seeds",
            "1",
            "--baseline-seeds",
            "1",
            "--n-boot",
            "200",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "sharpen" in res.stdout and "Δw2s vs vanilla" in res.stdout
    assert out.is_file()
