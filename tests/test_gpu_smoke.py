"""The GPU smoke (scripts/gpu_smoke.sh) in its CPU mode, so that it keeps working as the code changes: the
whole CPU mode (slow: a few minutes), and in the default suite its machinery (the time box, the skips, the
settings it writes, the report) on a budget that runs no step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _smoke(tmp_path: Path, *args: str, timeout: int, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_smoke.sh"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHON": sys.executable, "OUT": str(out), "SMOKE_T": str(tmp_path / "t"), **env},
    )
    return run, out


def _summary(out: Path) -> dict[str, str]:
    lines = (out / "summary.txt").read_text().splitlines()
    return {line.split()[0].rstrip(":"): line for line in lines if line.strip()}


def test_the_smoke_keeps_its_time_box_and_writes_its_settings(tmp_path: Path) -> None:
    """A budget too small for any step: each is skipped with a line, the models and settings are still made (the
    settings load), and the run ends with its summary; a bad mode is refused."""
    run, out = _smoke(tmp_path, "cpu", timeout=600, SMOKE_BUDGET_S="5")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = _summary(out)
    for step in ("env", "core", "eval-lora", "eval-frozen", "mfu"):
        assert summary[step] == f"{step}: skipped (time box spent)"
    assert summary["vllm"].startswith("vllm: skipped (no CUDA vLLM here")
    assert (out / "smoke.log").read_text().rstrip().endswith(summary["mfu"])
    from w2sbench.settings import load_setting

    lora = load_setting(str(tmp_path / "t" / "smoke-lora.yaml"))
    assert lora.regime == "lora" and lora.device == "cuda" and lora.recipes["strong"].head == "label_tokens"
    assert lora.quotas.memory == 32 * 2**30
    assert load_setting(str(tmp_path / "t" / "smoke-frozen.yaml")).regime == "frozen"
    assert json.loads((out / "report.json").read_text()) == {"step": "report"}  # no evaluation ran
    bad = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_smoke.sh"), "tpu"], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "give prep, cpu or nothing" in bad.stderr


@pytest.mark.slow
def test_the_smoke_runs_end_to_end_in_its_cpu_mode(tmp_path: Path) -> None:
    run, out = _smoke(tmp_path, "cpu", timeout=1200, SMOKE_BUDGET_S="900")
    assert run.returncode == 0, run.stdout[-3000:]
    summary = _summary(out)
    for step in ("env", "core", "eval-lora", "eval-frozen", "mfu"):
        assert " rc=0 " in summary[step], summary[step]
    env = json.loads((out / "env.json").read_text())
    assert env["cuda_available"] is False and env["why_no_cuda"] and env["sandbox_gpu_devices"] == []
    core = json.loads((out / "core.json").read_text())
    assert core["student_device"] == "cpu" and core["bf16"] is False and core["lora_B_moved"] is True
    assert not [k for k in core if k.endswith("_error")], core
    served = next(v for k, v in core.items() if k.startswith("served_") and k.endswith("_maxdiff"))
    assert served < 1e-3  # fp32 both ways on the CPU
    assert core["q4b_train_skipped"] == "CPU mode: needs CUDA"
    report = json.loads((out / "report.json").read_text())
    lora = report["eval-lora"]
    assert lora["devices"] == {"weak": ["cpu"], "labels:weak": ["cpu"], "ceiling": ["cpu"], "method": ["cpu"]}
    assert any("--allow-cpu" in note for note in lora["notes"])  # the LoRA setting declares device: cuda
    assert report["eval-frozen"]["devices"]["features:strong"] == ["cpu"]
    mfu = [json.loads(line) for line in (out / "mfu.jsonl").read_text().splitlines() if line.startswith("{")]
    assert mfu[0]["bench"] == "env" and not [r for r in mfu if "error" in r]
