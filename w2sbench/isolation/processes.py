"""Whatever way the harness ends, every process it started ends with it.

Why: `kill PID` (SIGTERM) of a running `w2sbench eval` left its vLLM feature engine (EngineCore and its
worker: about 4 GiB, at full CPU) running under init, and that engine ignores SIGTERM; a `timeout`, a CI
job or an agent framework that stops an evaluation leaked one engine per stop. The harness starts many
kinds of processes (vLLM engines and their workers through multiprocessing, sealed method processes in
their sandbox, a local Ray cluster, multiprocessing's resource tracker), most of them through libraries
that decide how; no one place can end them all, and SIGKILL of the harness runs no code at all.

So ending them is kept out of the harness: guard() starts, once per harness process, a watchdog
(`python -m w2sbench.isolation.processes PID START`), a small process in a session of its own, and returns once
the watchdog has taken its first look. Every POLL_S seconds the watchdog notes each descendant of the
harness (pid and start time, read from /proc) and looks whether the harness still runs. Once the harness
has ended, however (a normal exit, an error, SIGINT, SIGTERM, SIGHUP, SIGKILL; a zombie counts as ended),
it sends SIGKILL to every process it noted that still runs with the same start time (a reused pid is never
hit), then exits: within about a second, well inside the 15 s the harness promises. It watches /proc
rather than a pipe because an engine forked by the harness would inherit the pipe's write end and keep it
open. A process started and orphaned within one POLL_S of a SIGKILL can escape it.

install_signal_handlers() makes SIGTERM and SIGHUP stop the CLI the way ^C does (an exception that unwinds
the run, so engines are closed and cached stages kept), with exit status 128 + the signal's number and one
line, the last one printed, and makes ^C itself work even when the CLI was started with SIGINT ignored;
the CLI's last step, end_children(), ends whatever did not close, and the watchdog stays as the backstop
for what no code in the harness can run after (SIGKILL).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

POLL_S = 0.25
_STARTED: list[int] = []  # the pid of the harness process that started the watchdog (once per process)


class Stopped(BaseException):
    """SIGTERM or SIGHUP, raised where the harness is, like KeyboardInterrupt: nothing catches it but the CLI."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise Stopped in the main thread (only there can Python install handlers), and SIGINT
    raises KeyboardInterrupt even where the harness was started with SIGINT ignored: Python leaves an ignored
    SIGINT ignored, and a parent that ignores it (a shell's background job, a test runner after some library
    set SIG_IGN) would hand that on, so ^C or `kill -INT` from an agent framework would not stop the run."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def guard() -> int | None:
    """Start the watchdog for this process, once; returns its pid (None where /proc is missing: not Linux)."""
    if _STARTED and _STARTED[0] == os.getpid():
        return _STARTED[1]
    me = _stat(os.getpid())
    if me is None:
        return None
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "w2sbench.isolation.processes", str(os.getpid()), str(me[1])],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # a signal to the harness's process group does not reach it
    )
    assert watchdog.stdout is not None
    if select.select([watchdog.stdout], [], [], 30)[0]:  # on watch from here on (its first look is done)
        watchdog.stdout.readline()
    watchdog.stdout.close()
    _STARTED[:] = [os.getpid(), watchdog.pid]
    return watchdog.pid


# ---- /proc ------------------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a running process, or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces and parentheses
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every process below `root` now: pid -> start time."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parents.setdefault(st[0], []).append(int(name))
                starts[int(name)] = st[1]
    out: dict[int, int] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in out and pid in starts:
            out[pid] = starts[pid]
            todo.extend(parents.get(pid, []))
    return out


def end(noted: dict[int, int]) -> list[int]:
    """SIGKILL every noted process that still runs with the start time it was noted with; returns their pids."""
    killed = []
    for pid, started in noted.items():
        st = _stat(pid)
        if st is not None and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def _alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] == started


def end_children() -> list[int]:
    """End every process below this one but its watchdog, now: the CLI's last step, however it ends (an exit
    would otherwise wait on a child that ignores SIGTERM: multiprocessing joins its children at exit)."""
    watchdog = _STARTED[1] if _STARTED and _STARTED[0] == os.getpid() else None
    return end({p: s for p, s in descendants(os.getpid()).items() if p != watchdog})


def watch(harness: int, started: int) -> None:
    """The watchdog's loop: note the harness's descendants while it runs, then end them."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # it ends when the harness does, not before
    me = os.getpid()
    noted: dict[int, int] = {}
    ready = False
    while _alive(harness, started):
        noted = {pid: s for pid, s in noted.items() if _alive(pid, s)}
        noted.update((pid, s) for pid, s in descendants(harness).items() if pid != me)
        if not ready:
            try:
                print("watching", flush=True)
                sys.stdout.close()
            except OSError:
                pass
            ready = True
        time.sleep(POLL_S)
    for _ in range(3):  # what the noted processes started while they were being ended
        more = {p: s for pid in list(noted) for p, s in descendants(pid).items() if p != me}
        end(noted)
        noted = more
        if not noted:
            break
        time.sleep(0.05)


if __name__ == "__main__":  # the watchdog: python -m w2sbench.isolation.processes HARNESS_PID HARNESS_START
    watch(int(sys.argv[1]), int(sys.argv[2]))
