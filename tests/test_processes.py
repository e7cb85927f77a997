"""The harness ends every process it starts, however it ends (w2sbench/isolation/processes.py).

A fake harness (a Python process that calls guard() and starts what the real one starts: a child that
ignores SIGTERM as vLLM's EngineCore does, a grandchild under it, a multiprocessing child) is stopped with
each signal; then a real `w2sbench eval` is stopped with SIGTERM while its vLLM engine computes features."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from w2sbench import model_folders, paths
from w2sbench.isolation import processes
from w2sbench.isolation.processes import descendants, end

LIMIT_S = 15  # the promise: every process the harness started is gone within this after it ends

HARNESS = textwrap.dedent(
    """
    import multiprocessing, signal, subprocess, sys, time
    from w2sbench.isolation.processes import Stopped, end_children, guard, install_signal_handlers

    def stubborn():  # as vLLM's engine: ignores SIGTERM, runs until killed
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)

    if __name__ == "__main__":
        if sys.argv[1] == "cli":
            install_signal_handlers()
        guard()
        engine = multiprocessing.get_context("fork").Process(target=stubborn)
        engine.start()
        ignore = "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        grandchild = f"subprocess.Popen([sys.executable, '-c', {ignore + 'time.sleep(3600)'!r}]); "
        worker = subprocess.Popen([sys.executable, "-c", ignore + grandchild + "time.sleep(3600)"])
        print("ready", flush=True)
        try:  # as the CLI's main(): a signal unwinds, then whatever did not close is ended
            time.sleep(3600)
        except (Stopped, KeyboardInterrupt):
            sys.exit(1)
        finally:
            end_children()
    """
)


def _wait_for(predicate, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _survivors(noted: dict[int, int]) -> list[int]:
    return [pid for pid, started in noted.items() if processes._alive(pid, started)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_every_process_the_harness_started_ends_with_it(tmp_path, sig):
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    harness = subprocess.Popen(
        [sys.executable, str(script), "cli"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert harness.stdout.readline().strip() == "ready"
        # the engine, the worker and its grandchild (and the watchdog, in a session of its own)
        noted = _wait_for(lambda: (lambda d: d if len(d) >= 4 else None)(descendants(harness.pid)), 10)
        assert noted and len(noted) >= 4, noted
        watchdogs = [p for p in noted if os.getsid(p) == p]  # the watchdog leads a session of its own
        assert len(watchdogs) == 1, noted
        time.sleep(3 * processes.POLL_S)  # an engine takes seconds to start: the watchdog has looked since
        others = {p: s for p, s in noted.items() if p not in watchdogs}
        started = time.monotonic()
        os.kill(harness.pid, sig)
        harness.wait(timeout=LIMIT_S)
        left = _wait_for(lambda: not _survivors(noted), LIMIT_S)
        assert left, f"still running {time.monotonic() - started:.1f} s after {sig.name}: {_survivors(noted)}"
        assert not _survivors(others)
    finally:
        if harness.poll() is None:
            harness.kill()
        end(descendants(harness.pid))


def test_sigint_stops_the_cli_even_when_it_was_started_with_sigint_ignored(tmp_path):
    """Why test [2] (SIGINT) once timed out in a full run: a library earlier in the same pytest process had set
    SIGINT to SIG_IGN, the harness subprocess inherited it, and Python keeps an inherited SIG_IGN, so SIGINT
    did nothing. A shell's background job (`w2sbench eval &`) starts the same way; the CLI now installs its
    own SIGINT handler."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        test_every_process_the_harness_started_ends_with_it(tmp_path, signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_reused_pid_is_never_killed():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = descendants(os.getpid())[sleeper.pid]
        assert end({sleeper.pid: started + 1}) == []  # same pid, another start time: another process
        assert sleeper.poll() is None
        assert end({sleeper.pid: started}) == [sleeper.pid]
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        sleeper.kill()


def test_guard_starts_one_watchdog_per_process():
    first = processes.guard()
    assert first is not None and processes.guard() == first
    assert os.getsid(first) == first  # its own session: a signal to our process group does not reach it


# ---- the real CLI, with a vLLM engine running ----------------------------------------------------------------
def _vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif("not _vllm()", reason="vLLM is not installed")
def test_sigterm_of_a_real_evaluation_ends_its_engines(tmp_path):
    """The reported bug: `kill PID` of `w2sbench eval` left its vLLM feature engine running under init."""
    for model_id in ("sentence-transformers/all-MiniLM-L6-v2", "google/gemma-3-270m"):
        model_folders.resolve_model(model_id)
    env = {**os.environ, "W2SBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env["W2SBENCH_MODEL_DIR"] = str(paths.cache_dir() / "models")
    cmd = [sys.executable, "-m", "w2sbench.cli", "eval", "--tasks", "rotten_tomatoes", "--limit", "100,300,200"]
    harness = subprocess.Popen(cmd + ["-o", str(tmp_path / "r.json")], env=env, stderr=subprocess.PIPE, text=True)
    try:

        def engine_running():
            found = descendants(harness.pid)
            names = {p: Path(f"/proc/{p}/comm").read_text().strip() for p in found if os.path.exists(f"/proc/{p}")}
            return found if any("EngineCore" in n or "VLLM" in n for n in names.values()) else None

        noted = _wait_for(engine_running, 300, step=0.5)
        assert noted, "no vLLM engine started within 300 s"
        time.sleep(2)
        noted = {**noted, **descendants(harness.pid)}
        os.kill(harness.pid, signal.SIGTERM)
        err = harness.communicate(timeout=60)[1]
        assert harness.returncode == 128 + signal.SIGTERM
        assert err.strip().splitlines()[-1].startswith("w2sbench: stopped by SIGTERM"), err[-2000:]
        assert _wait_for(lambda: not _survivors(noted), LIMIT_S), _survivors(noted)
    finally:
        if harness.poll() is None:
            harness.kill()
        end(descendants(harness.pid))
