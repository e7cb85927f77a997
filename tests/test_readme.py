"""The front door as a newcomer walks through it: the README opens with the two set-up commands, finds the
one-minute look, adding a method and adding a task near the top, and its examples work as written (the
method's loss on a tensor worked out by hand here, the whole run in the slow tests); every file it links
exists; its figure is drawn from the seed leaderboard's numbers; LICENSE and CITATION.cff agree with
setup.cfg and the package."""

from __future__ import annotations

import configparser
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def block(after: str, lang: str) -> str:
    """The first fenced block of `lang` after the heading `after`."""
    section = README.split(f"\n## {after}", 1)[1]
    return section.split(f"```{lang}\n", 1)[1].split("```", 1)[0]


def test_readme_opens_with_the_two_commands():
    first = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first == (
        "bash scripts/setup.sh && .venv/bin/w2sbench eval --method vanilla\n"
        "bash scripts/setup.sh && .venv/bin/python -m pytest\n"
    )
    assert README.index("```bash") < 400  # the first thing after two sentences


def test_a_newcomer_finds_the_four_things_near_the_top():
    """The set-up, then the headings a newcomer scans for, in this order, the three of the brief within the
    first 110 of about 150 lines (the set-up is line 7)."""
    lines = README.splitlines()
    assert 120 <= len(lines) <= 170
    wanted = ["## A one-minute look", "## Add a method in 20 lines", "## Add a task", "## Results and the leaderboard"]
    at = [next(i for i, line in enumerate(lines) if line.startswith(h)) for h in wanted]
    assert at == sorted(at) and at[2] < 110, at
    method = block("Add a method in 20 lines", "python").strip().splitlines()
    assert len(method) <= 20


def test_every_linked_file_exists():
    links = set(re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README))
    assert {"docs/scoring.md", "CONTRIBUTING.md", "LICENSE", "CITATION.cff", "docs/pgr.svg"} <= links
    missing = sorted(p for p in links if not (ROOT / p).exists())
    assert missing == []
    anchors = re.findall(r"CONTRIBUTING\.md#([a-z-]+)", README)
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^## (.+)$", (ROOT / "CONTRIBUTING.md").read_text(), re.M)
    }
    assert set(anchors) <= headings, set(anchors) - headings


def test_contributing_goes_method_task_submission():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    order = [text.index(h) for h in ("## Adding a method", "## Adding a task", "## Submitting to the leaderboard")]
    assert order == sorted(order)


def _readme_method(tmp_path: Path):
    path = tmp_path / "my_method.py"
    path.write_text(block("Add a method in 20 lines", "python"))
    spec = importlib.util.spec_from_file_location("readme_my_method", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module.Smoothed


def test_the_readme_method_is_a_working_loss_method(tmp_path):
    """Its loss by hand: logits (0, ln 3) give p(1) = 3/4; weak label 1 with eps 0.1 gives the target 0.95;
    the loss is -(0.05 ln 1/4 + 0.95 ln 3/4) = 0.3426."""
    import torch

    from w2sbench.methods import LossMethod

    _, smoothed = _readme_method(tmp_path)
    assert issubclass(smoothed, LossMethod) and smoothed.name == "smoothed"
    assert list(smoothed.hyperparameters) == ["eps"] and smoothed().config() == {"eps": 0.1}
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    loss = smoothed().loss(logits, torch.tensor([1.0, 0.0]), 0.5)
    assert loss[0].item() == pytest.approx(-(0.05 * math.log(0.25) + 0.95 * math.log(0.75)), abs=1e-6)
    assert loss[1].item() == pytest.approx(math.log(2.0), abs=1e-6)  # even logits: log 2 whatever the target
    assert smoothed(eps=0.2).config() == {"eps": 0.2}


def test_the_readme_task_validates(tmp_path):
    from w2sbench.tasks import validate_config

    text = block("Add a task", "yaml")
    config = yaml.safe_load(text)
    validate_config(config, tmp_path / "my_reviews.yaml")
    assert config["task"] == "my_reviews"


def test_the_figure_is_drawn_from_the_seed_leaderboard():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_pgr_figure
    finally:
        sys.path.remove(str(ROOT / "docs"))
    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    drawn = make_pgr_figure.svg(make_pgr_figure.numbers(board))
    assert (ROOT / "docs" / "pgr.svg").read_text() == drawn, "redraw it: python docs/make_pgr_figure.py"
    v = make_pgr_figure.numbers(board)
    assert f"{(v['w2s'] - v['weak']) / (v['ceiling'] - v['weak']):.2f}" in drawn


def test_license_and_citation_match_the_package():
    from w2sbench import __version__

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text().split()[:4] == ["Apache", "License", "Version", "2.0,"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert {"cff-version", "message", "title", "authors"} <= set(cff) and cff["cff-version"] == "1.2.0"
    assert cff["license"] == "Apache-2.0" and cff["version"] == __version__


def _eval(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "w2sbench.cli", "eval", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.mark.slow
def test_the_one_minute_look_runs_as_written(tmp_path):
    command = block("A one-minute look", "bash").strip()
    args = command.split()
    assert args[:2] == [".venv/bin/w2sbench", "eval"]
    proc = _eval([*args[2:], "-o", str(tmp_path / "look.json")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "not comparable with the official numbers: --limit 100,200,300" in proc.stdout
    assert "rotten_tomatoes" in proc.stdout and (tmp_path / "look.json").is_file()


@pytest.mark.slow
def test_the_readme_method_runs_in_an_evaluation(tmp_path):
    path, _ = _readme_method(tmp_path)
    proc = _eval(
        ["--method", f"vanilla,{path}:Smoothed", "--tasks", "rotten_tomatoes", "--limit", "100,200,300", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert set(summary["methods"]) == {"vanilla", "smoothed"}
    assert summary["tasks"]["rotten_tomatoes"]["methods"]["smoothed"]["vs_vanilla"] is not None
