"""How long after the harness ends its processes are gone (w2sbench/isolation/processes.py), per signal.

A fake harness (tests/test_processes.py's: guard(), a forked child that ignores SIGTERM as vLLM's engine
does, a child with a grandchild) is stopped with each signal; the time from the signal until none of its
descendants runs is measured, median of --repeats. The promise is 15 s.

    python benchmarks/cleanup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from w2sbench.isolation.processes import _alive, descendants  # noqa: E402


def harness_source() -> str:
    text = (ROOT / "tests" / "test_processes.py").read_text()
    match = re.search(r'HARNESS = textwrap.dedent\(\n    """(.*?)"""\n\)', text, re.S)
    assert match, "tests/test_processes.py: HARNESS not found"
    import textwrap

    return textwrap.dedent(match.group(1))


def once(script: Path, sig: int) -> float:
    harness = subprocess.Popen([sys.executable, str(script), "cli"], stdout=subprocess.PIPE, text=True)
    assert harness.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while len(noted := descendants(harness.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    noted = {**noted, **descendants(harness.pid)}
    started = time.monotonic()
    os.kill(harness.pid, sig)
    harness.wait(timeout=30)
    while any(_alive(p, s) for p, s in noted.items()):
        if time.monotonic() - started > 30:
            raise SystemExit(f"still running 30 s after {signal.Signals(sig).name}")
        time.sleep(0.02)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    flags = sorted(set(re.findall(r"\b(avx512f|avx2)\b", Path("/proc/cpuinfo").read_text())))
    print(f"# {platform.node()} {os.cpu_count()} cores, {' '.join(flags)}; {args.repeats} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "harness.py"
        script.write_text(harness_source())
        print("| signal | median s | max s |\n| --- | --- | --- |")
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            times = [once(script, sig) for _ in range(args.repeats)]
            print(f"| {sig.name} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
