"""The CPU twin of aar-qwen, end to end from the CLI on small limits: a chat model (SmolLM2-135M-Instruct, its
chat template on) fine-tuned with LoRA as the weak model, its labels served through the inference backend
(vLLM where installed), the ceiling and a sealed method's student fine-tuned on gemma-3-270m, all read at
the label tokens; then the score. One seed each and 16 examples per split keep it to a minute or two on
2 cores (benchmarks/RESULTS.md has the full-size run)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from w2sbench import model_folders, paths
from w2sbench.schema_io import validate


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, str]:
    for model_id in ("HuggingFaceTB/SmolLM2-135M-Instruct", "google/gemma-3-270m"):
        model_folders.resolve_model(model_id)  # converted once per machine, outside the timed run
    env = dict(os.environ)
    env["W2SBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    env["W2SBENCH_MODEL_DIR"] = str(paths.cache_dir() / "models")
    env["HF_HUB_OFFLINE"] = "1"
    out = tmp_path_factory.mktemp("out") / "twin.json"
    cmd = [sys.executable, "-m", "w2sbench.cli", "eval", "--setting", "aar-twin", "--tasks", "aar_chat_mini"]
    cmd += ["--limit", "16,16,16", "--baseline-seeds", "1", "--seeds", "1", "--n-boot", "200", "-o", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(Path(out).read_text()), proc.stdout


def test_twin_runs_every_stage_from_the_cli(run) -> None:
    doc, stdout = run
    validate(doc, "results", "twin.json")
    config = doc["setting"]["config"]
    assert config["setting"] == "aar-twin" and config["regime"] == "lora" and config["weak"]["chat_template"]
    assert config["train"]["head"] == "label_tokens" and config["train"]["lora"]["rslora"] is True
    # every stage ran for real: weak (fine-tuned, labels served), ceiling, the sealed method, the score
    assert doc["cache"]["misses"] == {"weak": 1, "ceiling": 1, "method": 1}
    assert doc["backend"]["used"]["labels:weak"] == ("vllm" if importlib.util.find_spec("vllm") else "hf")
    assert "aar_chat_mini" in stdout and "PGR" in stdout


def test_twin_records_the_numbers_and_the_compute(run) -> None:
    doc, _ = run
    task = doc["tasks"]["aar_chat_mini"]
    assert task["n"] == {"train_label": 16, "train_unlabel": 16, "test": 16}
    for key in ("weak", "ceiling"):
        assert 0.0 <= task[key]["accuracy"] <= 1.0 and task[key]["seeds"] == 1
    method = task["methods"]["vanilla"]
    assert 0.0 <= method["w2s"]["accuracy"] <= 1.0 and "pgr" in method
    assert method["compute"][0]["train_example_epochs"] == 16 * doc["setting"]["config"]["train"]["epochs"]
    assert method["compute"][0]["sealed"] is True
