"""A run's ledger: what an evaluation records beside its numbers. Time per stage, the store's cache counts,
the backends that ran, notes, the methods that failed and the method sandboxes (the run's policy, and for
units run elsewhere the sandbox of the node that ran each).

It is kept apart from the stages so that a unit run in another process (a Ray worker) hands back its share
of the bookkeeping as plain data (`share_since`) and the driver adds it with `merge`: nobody edits another
object's fields.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..cache import ArtifactStore

COUNTERS = ("hits", "misses", "corrupt")  # the ArtifactStore's counters, by their names there


class RunLedger:
    def __init__(self, store: ArtifactStore):
        self.store = store  # whose hits, misses and corrupt (recomputed) counts the run reports
        self.timings: dict[str, float] = defaultdict(float)
        self.backend_used: dict[str, str] = {}
        self.devices: dict[str, set[str]] = defaultdict(set)  # stage -> the devices it ran on ("cpu", "cuda")
        self.notes: list[str] = []
        self.failed: dict[str, str] = {}  # method name in results -> the one line that stopped it
        self.unit_sandboxes: dict[str, dict | None] = {}  # method unit run elsewhere (Ray) -> its node's sandbox
        self.sandbox: dict | None = None  # what the method processes could reach (sandbox.describe); None: unsealed
        self.consoles: dict[str, str] = {}  # method name -> what its processes printed (captured, bounded, cleaned)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start

    def device_used(self, stage: str, device: str | None) -> None:
        """Stage `stage` ran (or its cached artifact was made) on `device`; None: not known (an artifact cached
        before devices were recorded)."""
        if device:
            self.devices[stage].add(device)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def sandbox_used(self, description: dict, method: str, code_root: str) -> None:
        """The method sandbox's description (the first method's: one policy per run) and each method's code."""
        if self.sandbox is None:
            self.sandbox = {**description, "method_code": {}}
        self.sandbox["method_code"][method] = code_root

    def console_seen(self, method: str, text: str) -> None:
        """What a method's process printed (isolation.launch.Output.text), kept for the results."""
        if text:
            self.consoles[method] = "\n".join(t for t in (self.consoles.get(method), text) if t)

    # ---- a unit run elsewhere: its share, and adding it here -------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "timings": dict(self.timings),
            **{name: Counter(getattr(self.store, name)) for name in COUNTERS},
        }

    def share_since(self, before: dict[str, Any]) -> dict[str, Any]:
        """Plain data: what changed since `before` (time and cache counts), and what this ledger holds."""
        timings = {k: v - before["timings"].get(k, 0.0) for k, v in self.timings.items()}
        return {
            "timings": {k: v for k, v in timings.items() if v > 0},
            **{name: dict(Counter(getattr(self.store, name)) - before[name]) for name in COUNTERS},
            "backend_used": dict(self.backend_used),
            "devices": {k: sorted(v) for k, v in self.devices.items()},
            "notes": list(self.notes),
            "sandbox": self.sandbox,
            "consoles": dict(self.consoles),
        }

    def merge(self, share: dict[str, Any], unit: str | None = None, unit_sandbox: dict | None = None) -> None:
        """Add a share (share_since, from another process) to this ledger. `unit`: a method unit, whose node's
        sandbox (`unit_sandbox`, None when its worker affirmed none) the results list."""
        for stage, seconds in share["timings"].items():
            self.timings[stage] += seconds
        for name in COUNTERS:
            getattr(self.store, name).update(share[name])
        self.backend_used.update(share["backend_used"])
        for stage, used in share.get("devices", {}).items():
            self.devices[stage].update(used)
        for line in share["notes"]:
            self.note(line)
        for method, text in share.get("consoles", {}).items():
            self.console_seen(method, text)
        if unit is not None:
            self.unit_sandboxes[unit] = unit_sandbox
        if share.get("sandbox"):
            for method, root in share["sandbox"]["method_code"].items():
                self.sandbox_used(share["sandbox"], method, root)
