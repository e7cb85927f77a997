"""The command line as a newcomer and a script meet it: -h on every command, summaries that end where their
sentence ends, eval's help in sections with examples, --json that parses into the documented shape, the
tasks table (header, sizes as the task resolves them, --tag, environment variables), --include-path
refused in one line, and the libraries' output kept off the console during eval. No engine starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import make_results  # noqa: E402

from w2sbench.cli import cli, eval_summary, first_sentence  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), env={"HF_HUB_OFFLINE": "1", **(env or {})}, terminal_width=80)


def commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


def test_every_command_takes_dash_h_and_lists_whole_summaries():
    paths = [path for path, _ in commands(cli)]
    assert ("eval",) in paths and ("leaderboard", "build") in paths and ("serve", "finals") in paths
    for path in [(), *paths]:
        result = run(*path, "-h")
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith("Usage: "), path
        if "Commands:" in result.output:  # a group: each summary is a whole sentence, never cut with "..."
            listing = result.output.split("Commands:", 1)[1]
            assert "..." not in listing, (path, listing)
    for path, command in commands(cli):
        summary = command.get_short_help_str(45)
        assert summary == first_sentence(command.help) and not summary.endswith("..."), path


def test_first_sentence_follows_clicks_rule():
    assert first_sentence("List the tasks: name, source. More here.") == "List the tasks: name, source."
    assert first_sentence("Compare a vs. b. Then more.") == "Compare a vs. b."
    assert first_sentence("No full stop at all") == "No full stop at all"
    assert first_sentence("One line.\n\nA second paragraph.") == "One line."


def test_eval_help_is_grouped_with_examples():
    out = run("eval", "--help").output
    headings = [line for line in out.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert headings[:5] == ["Common:", "Output:", "Scale-out and hardware:", "Sandbox:", "Scoring and robustness:"]
    assert out.index("--method") < out.index("Output:") < out.index("--json") < out.index("Scale-out")
    assert out.index("Scale-out") < out.index("--executor") < out.index("--ray-address") < out.index("Sandbox:")
    assert out.index("Sandbox:") < out.index("--unsealed") < out.index("Scoring and robustness:")
    examples = out.split("Examples:", 1)[1]
    assert "w2sbench eval --method vanilla\n" in examples and "--limit" in examples and "--json" in examples


def test_include_path_that_does_not_exist_is_one_line(tmp_path):
    for command in ("tasks", "eval"):
        proc = subprocess.run(
            [sys.executable, "-m", "w2sbench.cli", command, "--include-path", str(tmp_path / "nope")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            f"w2sbench: error: --include-path {tmp_path / 'nope'}: no such folder"
        ]


def _write_parts_task(folder: Path) -> None:
    """A local task whose YAML maps each part to its own file (train.jsonl, test.jsonl): test is the whole of
    its file (7 usable rows, capped at 100), the two training splits are cut from train.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"text": f"train text {i}", "y": i % 2} for i in range(30)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = [{"text": f"test text {i}", "y": i % 2} for i in range(7)]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    (folder / "parts_task.yaml").write_text(
        textwrap.dedent(
            """\
            task: parts_task
            version: 1
            description: One file per part.
            tags: [parts-test]
            source:
              type: local
              path: {train: train.jsonl, test: test.jsonl}
              split: {train_label: train, train_unlabel: train, test: test}
            text: "{text}"
            label: {field: y, map: {"0": 0, "1": 1}}
            prompt: "{text}\\nLabel:"
            label_words: [" no", " yes"]
            splits: {train_label: 10, train_unlabel: 12, test: 100, seed: 0}
            card: {source: test rows, citation: none, license: CC0}
            """
        )
    )


def test_tasks_table_header_sizes_tag_and_split_per_file(tmp_path):
    _write_parts_task(tmp_path / "mine")
    result = run("tasks", "--include-path", str(tmp_path / "mine"), "--tag", "parts-test")
    assert result.exit_code == 0, result.output  # was a TypeError: source.path is a mapping
    lines = result.output.splitlines()
    assert lines[0].split() == ["task", "source", "label/unlabel/test", "tags"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    (row,) = lines[2:]
    assert row.split()[0] == "parts_task" and "10/12/7" in row  # test: the whole file, read (7 rows), not 100
    assert "local:train=train.jsonl, test=test.jsonl" in row

    listed = json.loads(run("tasks", "--include-path", str(tmp_path / "mine"), "--json").stdout)
    mine = next(t for t in listed if t["name"] == "parts_task")
    assert mine["sizes"] == {"train_label": 10, "train_unlabel": 12, "test": 7}
    assert mine["exact"] == {"train_label": True, "train_unlabel": True, "test": True}
    unread = json.loads(run("tasks", "--include-path", str(tmp_path / "mine"), "--json", "--no-read").stdout)
    mine = next(t for t in unread if t["name"] == "parts_task")
    assert mine["sizes"]["test"] == 100 and mine["exact"]["test"] is False and mine["sizes_note"] == "--no-read"


def test_tasks_default_suite_and_aar_folder(tmp_path):
    rows = {t["name"]: t for t in json.loads(run("tasks", "--json", "--tag", "default").stdout)}
    assert set(rows) == {"rotten_tomatoes", "election_tweets", "vader_nyt", "vader_amazon", "vader_tweets"}
    assert rows["vader_amazon"]["sizes"] == {"train_label": 500, "train_unlabel": 1000, "test": 1460}
    for key in ("name", "version", "description", "tags", "source", "env", "sizes", "exact", "sizes_note", "file"):
        assert key in rows["vader_nyt"]

    unset = run("tasks", "--tag", "aar", env={"W2SBENCH_AAR_DIR": None})
    chat = next(line for line in unset.output.splitlines() if line.startswith("aar_chat "))
    assert "aar:<W2SBENCH_AAR_DIR unset>/chat" in chat and "<=100000/<=100000/<=100000" in chat
    assert "W2SBENCH_AAR_DIR unset" in unset.output.splitlines()[-1]

    mini = REPO / "tasks" / "aar" / "mini" / "data"  # the AAR layout: one file per split, read whole
    listed = json.loads(run("tasks", "--tag", "aar", "--json", env={"W2SBENCH_AAR_DIR": str(mini)}).stdout)
    chat = next(t for t in listed if t["name"] == "aar_chat")
    assert chat["source"] == f"aar:{mini}/chat" and chat["env"] == {"W2SBENCH_AAR_DIR": str(mini)}
    assert chat["sizes"] == {"train_label": 48, "train_unlabel": 96, "test": 240}

    assert run("tasks", "--tag", "no-such-tag").output.strip() == "no task has the tag 'no-such-tag'"


def test_settings_and_methods_json():
    settings = {s["name"]: s for s in json.loads(run("settings", "--json").stdout)}
    tiny = settings["tiny"]
    assert tiny["weak"] == "sentence-transformers/all-MiniLM-L6-v2" and tiny["strong"] == "google/gemma-3-270m"
    assert (
        tiny["regime"] == "frozen" and tiny["recipe"]["epochs"] == 20 and tiny["seeds"] == {"baseline": 3, "method": 3}
    )
    assert settings["aar-qwen"]["recipe"]["lora"]["rslora"] is True
    methods = {m["name"]: m for m in json.loads(run("methods", "--json").stdout)}
    assert methods["strong_zeroshot"]["teacher_free"] is True and methods["vanilla"]["teacher_free"] is False
    assert {"name": "aux_coef", "type": "float", "default": 0.5} in methods["logconf"]["hyperparameters"]
    assert methods["vanilla"]["origin"] == "built-in"


def test_eval_summary_is_the_results_headline():
    doc = make_results({"vanilla": 0.76, "better": 0.80}, n_boot=100)
    summary = json.loads(json.dumps(eval_summary(doc, Path("results/x.json"), Path("results/x.log"), None, [])))
    assert summary["kind"] == "w2sbench.eval.summary" and summary["version"] == 1
    assert summary["comparable"] is True and summary["results"] == "results/x.json"
    assert set(summary["methods"]) == {"vanilla", "better"} and set(summary["tasks"]) == set(doc["tasks"])
    for name, m in summary["methods"].items():
        s = doc["summary"][name]
        assert (m["pooled_pgr"], m["pooled_pgr_ci"], m["mean_pgr"]) == (
            s["pooled_pgr"],
            s["pooled_pgr_ci"],
            s["mean_pgr"],
        )
    t = doc["tasks"]["rotten_tomatoes"]
    row = summary["tasks"]["rotten_tomatoes"]
    assert row["weak_acc"] == t["weak"]["accuracy"] and row["ceiling_acc"] == t["ceiling"]["accuracy"]
    better = row["methods"]["better"]
    assert better["pgr"] == pytest.approx(
        (better["w2s_acc"] - row["weak_acc"]) / (row["ceiling_acc"] - row["weak_acc"]), abs=1e-9
    )
    caveat = eval_summary(doc, Path("r.json"), None, None, ["--limit 1,2,3 (smaller splits than the tasks')"])
    assert caveat["comparable"] is False and caveat["not_comparable_because"]


NOISY_RUN = """
import logging, os, subprocess, sys, warnings
from pathlib import Path
sys.path.insert(0, {tests!r})
from support.leaderboard import make_results
import w2sbench, w2sbench.api as api
from w2sbench.errors import W2SError

def noisy(*args, **kwargs):
    logging.getLogger("w2sbench").info("plan: the run's own line")
    warnings.warn("torch.cuda.amp is deprecated", FutureWarning)
    lib = logging.getLogger("vllm")
    lib.addHandler(logging.StreamHandler(sys.stdout)); lib.setLevel(logging.INFO)
    lib.info("INFO 12-04 [cpu.py:77] Automatically detected platform cpu.")
    print("Triton is not installed; some kernels fall back")
    os.write(2, b"NUMA node binding unavailable on this machine\\n")
    child = "import sys; print('engine child stdout'); print('engine child stderr', file=sys.stderr)"
    subprocess.run([sys.executable, "-c", child])
    own = str(Path(w2sbench.__file__).parent / "tasks" / "sources.py")
    warnings.warn_explicit("task data pinned to x==1 but x 2 is installed", UserWarning, own, 1)
    mode = os.environ["NOISY_MODE"]
    if mode == "user-error":
        raise W2SError("method 'x' failed on task 't'")
    if mode == "crash":
        raise RuntimeError("kaput")
    return api.EvalResult.from_dict(make_results({{"vanilla": 0.76}}, n_boot=50))

api.evaluate = noisy
from w2sbench.cli import main
main(sys.argv[1:])
"""
NOISE = ("deprecated", "Automatically detected", "Triton", "NUMA", "engine child")


def _noisy_eval(tmp_path: Path, mode: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_RUN.format(tests=str(Path(__file__).parent)))
    return subprocess.run(
        [sys.executable, str(script), "eval", "--tasks", "rotten_tomatoes", "-o", str(tmp_path / "r.json"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "NOISY_MODE": mode},
    )


def test_library_noise_goes_to_the_log_and_the_runs_lines_stay(tmp_path):
    proc = _noisy_eval(tmp_path, "ok")
    assert proc.returncode == 0, proc.stderr
    console = proc.stdout + proc.stderr
    for noise in NOISE:
        assert noise not in console, noise
    log = tmp_path / "r.log"
    text = log.read_text()
    for noise in NOISE:
        assert noise in text, noise
    assert "[w2sbench] plan: the run's own line" in proc.stderr
    assert "[w2sbench] warning: task data pinned to x==1" in proc.stderr  # w2sbench's own warning stays
    assert "rotten_tomatoes" in proc.stdout and f"results: {tmp_path / 'r.json'}" in proc.stdout
    assert f"log: {log} (the libraries' own output)" in proc.stdout

    as_json = _noisy_eval(tmp_path, "ok", "--json", "--limit", "100,200,100")
    summary = json.loads(as_json.stdout)  # stdout is the JSON document alone
    assert summary["log"] == str(log) and summary["comparable"] is False
    assert "Triton" not in as_json.stdout


def test_errors_and_crashes_still_reach_the_console(tmp_path):
    user = _noisy_eval(tmp_path, "user-error")
    assert user.returncode == 2
    assert user.stderr.splitlines()[-1] == "w2sbench: error: method 'x' failed on task 't'"
    assert not any(noise in user.stderr + user.stdout for noise in NOISE)
    crash = _noisy_eval(tmp_path, "crash")
    assert crash.returncode == 1 and "RuntimeError: kaput" in crash.stderr and "Traceback" in crash.stderr
    verbose = _noisy_eval(tmp_path, "ok", "--verbose")  # --verbose: the libraries' output stays here
    assert verbose.returncode == 0 and "Triton" in verbose.stdout + verbose.stderr
