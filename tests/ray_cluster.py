"""A real local Ray cluster for the tests: a head and a second worker node, each started with `ray start`,
inside a network namespace that has only loopback, so no packet leaves the machine (Ray otherwise looks
for the machine's outward address). Everything run against it (the w2sbench command, the probes) enters
the same namespace with nsenter.

The cluster is stopped by ending exactly the processes it started (their process group), never with
`ray stop`, which ends every Ray process on the machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
PORT = 6379  # the namespace is private: the default port is free


# As root a network namespace needs no user namespace; keeping the host's users lets the method sandbox drop
# to nobody there (isolation/sandbox.py), which a namespace mapping root alone would not hold. Any other user
# needs one to make the network namespace.
USERNS = [] if os.geteuid() == 0 else ["-U"]


def unavailable_reason() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'w2sbench[ray]'; scripts/setup.sh installs it)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (util-linux / iproute2)"
    probe = subprocess.run(
        ["unshare", "--net", "--map-root-user", "--", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot make a loopback-only network namespace: {probe.stderr.strip()}"
    return None


def skip_or_fail(why: str) -> None:
    """In CI the Ray tests must run: a missing prerequisite fails there, and skips on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(f"the Ray tests cannot run: {why}")
    pytest.skip(why)


class LoopbackCluster:
    def __init__(self, env: dict[str, str], nodes: int = 2, cpus_per_node: int = 1):
        # No token: the cluster is reachable only inside its own namespace. Without this Ray 2.60 turns token
        # authentication on whenever ~/.ray/auth_token exists (any earlier local ray.init() writes one).
        self.env = {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.nodes, self.cpus = nodes, cpus_per_node
        self.address = f"127.0.0.1:{PORT}"
        self.holder: subprocess.Popen | None = None
        self.daemons: list[subprocess.Popen] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="w2s-ray-", dir="/tmp"))  # short: Ray's socket paths have a limit

    # ---- running things in the namespace -------------------------------------------------------------------
    def argv(self, argv: list[str]) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), *USERNS, "-n", "--", *argv]

    def run(self, argv: list[str], env: dict | None = None, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(argv), env=env or self.env, capture_output=True, text=True, timeout=timeout, **kw
        )

    def popen(self, argv: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(argv), env=env or self.env, start_new_session=True, **kw)

    # ---- the cluster ---------------------------------------------------------------------------------------------
    def start(self) -> LoopbackCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LoopbackCluster:
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                *(["--map-root-user"] if USERNS else []),
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep 86400",
            ],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == "up"
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--num-gpus=0", "--block"]
        head = [RAY, "start", "--head", f"--port={PORT}", "--include-dashboard=false", "--disable-usage-stats"]
        self._daemon(head + [f"--temp-dir={self.tmp / 'ray'}", *common], "head")
        self.wait_for_nodes(1)
        for i in range(1, self.nodes):
            self._daemon([RAY, "start", f"--address={self.address}", *common], f"worker{i}")
        self.wait_for_nodes(self.nodes)
        return self

    def _daemon(self, argv: list[str], name: str) -> None:
        log = (self.tmp / f"{name}.log").open("w")
        self.daemons.append(self.popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def wait_for_nodes(self, n: int, timeout: float = 180) -> None:
        probe = (
            "import sys, time, ray\n"
            f"ray.init(address='{self.address}', logging_level='ERROR')\n"
            f"deadline = time.time() + {timeout}\n"
            f"while sum(x['Alive'] for x in ray.nodes()) < {n}:\n"
            "    if time.time() > deadline: sys.exit('nodes did not join')\n"
            "    time.sleep(0.5)\n"
        )
        deadline = time.time() + timeout
        while True:
            out = self.run([sys.executable, "-c", probe], timeout=timeout)
            if out.returncode == 0:
                return
            if time.time() > deadline or any(d.poll() is not None for d in self.daemons):
                logs = "\n".join(p.read_text()[-1500:] for p in self.tmp.glob("*.log"))
                raise RuntimeError(f"the Ray cluster did not start ({out.stderr[-1500:]})\n{logs}")
            time.sleep(1)

    def worker_pids(self) -> set[int]:
        """Every live process of the cluster (for checking that nothing was left behind)."""
        pids = set()
        for daemon in self.daemons:
            try:
                pgid = os.getpgid(daemon.pid)
            except ProcessLookupError:
                continue
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if os.getpgid(int(entry.name)) == pgid:
                            pids.add(int(entry.name))
                    except (ProcessLookupError, PermissionError):
                        pass
        return pids

    def stop(self) -> None:
        """End what this cluster started: `ray start --block` stops its node on SIGTERM; then its process group."""
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in reversed(self.daemons):
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(daemon.pid, signal.SIGKILL)  # the group is the daemon's own (start_new_session)
            except (ProcessLookupError, PermissionError):
                pass
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
