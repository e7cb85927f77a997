"""Starting a process that runs a method's code (the sealed method process, the probe), the one way: in the
bubblewrap sandbox (unless unsealed), in the quotas' control group, in a session of its own, with a short,
named environment, and its console captured.

The console: the process's stdout and stderr go to one pipe that a harness thread drains into a bounded
buffer (the first HEAD and the last TAIL bytes; what lies between is counted and dropped), never to the
harness's own stdout and stderr. A method that printed there could write lines that look like the harness's
result rows, or fill the harness's memory by printing at import. `Output.text()` is what the harness shows,
marked as the method's own: control characters out, bounded, each line prefixed with the method's name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from . import sandbox
from .quotas import Cgroup, Quotas, limit_file_size

HEAD = 16 * 1024  # bytes of a process's console kept from its start
TAIL = 16 * 1024  # and from its end
SHOWN_LINES = 40  # at most this many lines of it printed after a run


class Output:
    """A child's console, drained by a thread into a bounded buffer."""

    def __init__(self, fd: int):
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0  # bytes between head and tail that were read and thrown away
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(fd,), name="w2sbench-method-console", daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while True:
                try:
                    chunk = pipe.read(1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    room = HEAD - len(self.head)
                    if room > 0:
                        self.head += chunk[:room]
                        chunk = chunk[room:]
                    self.tail += chunk
                    if len(self.tail) > TAIL:
                        self.dropped += len(self.tail) - TAIL
                        del self.tail[: len(self.tail) - TAIL]

    def finish(self, timeout: float = 2.0) -> None:
        """Wait (briefly) for the pipe to close: its writers have ended."""
        self._thread.join(timeout)

    def text(self) -> str:
        """What the process printed, made safe to show: printable characters and newlines only."""
        with self._lock:
            raw = bytes(self.head), self.dropped, bytes(self.tail)
        head, dropped, tail = raw
        text = head.decode("utf-8", "replace")
        if dropped:
            text += f"\n[... {dropped} bytes left out ...]\n"
        text += tail.decode("utf-8", "replace")
        return clean(text)


def clean(text: str) -> str:
    """Printable characters and newlines only (no terminal escapes, no carriage returns that overwrite)."""
    lines = ("".join(c if c.isprintable() or c == "\t" else " " for c in line) for line in text.splitlines())
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def shown(name: str, text: str, limit: int = SHOWN_LINES) -> str:
    """A method's console as the harness prints it: each line marked as the method's own, at most `limit`."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > limit:
        lines = [*lines[: limit // 2], f"[... {len(lines) - limit} lines left out ...]", *lines[-limit // 2 :]]
    return "\n".join(f"[{name} printed] {line}" for line in lines)


def die_with_parent() -> None:
    """For an unsealed child: the kernel kills it when the harness thread that started it ends."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Child:
    """One process running a method's code."""

    def __init__(
        self,
        argv: Sequence[str],
        policy: sandbox.Policy | None,
        quotas: Quotas | None,
        pass_fds: Sequence[int] = (),
    ):
        argv = list(argv)
        if policy is not None:
            argv = sandbox.command(policy, argv, sandbox.child_env())
        self.cgroup: Cgroup | None = Cgroup.create(quotas) if quotas is not None else None
        if self.cgroup is not None:  # None where no control group can be made: not enforced
            argv = self.cgroup.wrap(argv)
        read_end, write_end = os.pipe()
        sealed = policy is not None  # unsealed: no boundary to keep, the harness's environment as it is

        def setup() -> None:
            if quotas is not None:
                limit_file_size(quotas)
            if not sealed:
                die_with_parent()

        try:
            # Its own session: a stuck child is killed as a group; bwrap's --die-with-parent and the pid
            # namespace take everything inside with it.
            self.process = subprocess.Popen(
                argv,
                pass_fds=list(pass_fds),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,
                preexec_fn=setup,
            )
        except BaseException:
            os.close(read_end)
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        finally:
            os.close(write_end)
        self.output = Output(read_end)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the process and everything it started (its session), now."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # unkillable (D state): the watchdog ends it at exit
            pass

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None when it has not ended within `timeout` seconds."""
        try:
            return self.process.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return None

    def release(self) -> None:
        """After the process ended: its console read to the end, its control group removed."""
        self.output.finish()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


def python(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]
