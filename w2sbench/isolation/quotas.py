"""Quotas for a method's sandbox: memory, processes and threads, the size of its private /tmp and /dev/shm,
and the size of any file it writes, beside the time limit each job already has.

Why: without them one method could exhaust the machine (allocate every byte, fork without end, fill the
in-memory /tmp) and take the harness, and on a shared node other people's runs, down with it. A quota
passed stops that method seed with one line ("method 'x' exceeded its memory limit of 8 GiB on task 't'
seed 0"); the harness and the other methods go on.

How, each before the method's first instruction:
- memory and processes+threads: a control group made for each method process. The harness starts the
  sandbox through `sh -c`, which moves itself into the group and then execs bwrap, so everything the
  method starts is inside. cgroup v2 (memory.max, pids.max) where the harness may write a child group,
  else cgroup v1's memory and pids hierarchies (memory.limit_in_bytes, pids.max). Past the memory limit
  the kernel's OOM killer ends a process of the group (the group's oom_kill count says so); past the pids
  limit fork() and thread creation fail (pids.events says so). Where no group can be written (an
  unprivileged user without delegation) these two are not enforced, and the results say so.
- /tmp and /dev/shm: tmpfs of a fixed size (bwrap --size); past it, writes fail with ENOSPC.
- file size: RLIMIT_FSIZE, inherited through exec; past it, writes fail with EFBIG (Python ignores
  SIGXFSZ).
Defaults fit a vLLM engine that a method starts (about 4 GiB on CPU, threads per core); a setting can
change them (`limits:` in its YAML: method_memory_gib, method_processes, method_tmp_gib, method_shm_gib,
method_file_gib; limits are not part of the setting's hash) and `eval --method-quota memory=4G,...`
overrides both.
"""

from __future__ import annotations

import functools
import os
import re
import resource
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import W2SError

GIB = 1 << 30
NAMES = {
    "memory": "memory",
    "processes": "processes and threads",
    "tmp": "/tmp",
    "shm": "/dev/shm",
    "file": "file size",
}
SETTING_KEYS = {  # limits: key in a setting's YAML -> field (sizes in GiB)
    "method_memory_gib": "memory",
    "method_processes": "processes",
    "method_tmp_gib": "tmp",
    "method_shm_gib": "shm",
    "method_file_gib": "file",
}
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Quotas:
    """Limits of one method process and everything it starts (sizes in bytes)."""

    memory: int = 8 * GIB
    processes: int = 4096  # tasks: processes and threads together (a torch or vLLM process runs dozens)
    tmp: int = 4 * GIB
    shm: int = 2 * GIB
    file: int = 4 * GIB

    def describe(self, what: str) -> str:
        value = getattr(self, what)
        return str(value) if what == "processes" else size_text(value)

    def record(self, enforced: str | None) -> dict:
        """For the results: the limits, and how memory and processes were enforced (None: they were not)."""
        return {**asdict(self), "memory_and_processes_enforced_by": enforced}


def size_text(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} B"


def _size(text: str, where: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise W2SError(f"{where}: {text!r} is not a size (e.g. 8G, 512M)")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": GIB, "t": 1 << 40}[m.group(2)])


def from_setting(limits: dict, where: str) -> Quotas:
    """The quotas a setting's `limits:` block sets, the defaults elsewhere."""
    values = {}
    for key, field in SETTING_KEYS.items():
        if key in limits:
            value = limits[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise W2SError(f"{where}: field 'limits.{key}': must be a positive number, got {value!r}")
            values[field] = int(value) if field == "processes" else int(value * GIB)
    return Quotas(**values)


def override(quotas: Quotas, text: str | None, where: str = "--method-quota") -> Quotas:
    """Quotas with 'memory=8G,processes=512,tmp=2G,shm=1G,file=1G' (any subset) applied."""
    if not text:
        return quotas
    values = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in NAMES:
            raise W2SError(f"{where}: {item.strip()!r}: give NAME=VALUE with NAME one of {', '.join(NAMES)}")
        if key == "processes":
            if not value.strip().isdigit() or int(value) < 1:
                raise W2SError(f"{where}: processes={value!r}: give a whole number >= 1")
            values[key] = int(value)
        else:
            values[key] = _size(value, f"{where}: {key}")
    return replace(quotas, **values)


def limit_file_size(quotas: Quotas) -> None:
    """In the child before exec: RLIMIT_FSIZE, which the sandbox's processes inherit."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (quotas.file, quotas.file))


# ---- control groups ---------------------------------------------------------------------------------------------
def _own_group(controller: str) -> Path | None:
    """Where this process's group of `controller` is (v1), or its v2 group ('' controller), if writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and names == ""):
            base = CGROUP_ROOT / controller if controller else CGROUP_ROOT
            if not controller and not (base / "cgroup.controllers").exists():
                base = CGROUP_ROOT / "unified"
            folder = base / path.lstrip("/")
            return folder if os.access(folder, os.W_OK) else None
    return None


@functools.cache
def enforcement(quotas: Quotas) -> str | None:
    """How memory and process limits are enforced here ('cgroup v1 (memory and pids)'...), tried once by
    making and removing a group; None where no group can be made (then they are not enforced)."""
    group = Cgroup.create(quotas)
    if group is None:
        return None
    group.remove()
    return group.mechanism


class Cgroup:
    """One control group (v2, or a v1 pair of memory and pids groups) for one method process."""

    def __init__(self, folders: dict[str, Path], version: int, quotas: Quotas):
        self.folders, self.version, self.quotas = folders, version, quotas

    @classmethod
    def create(cls, quotas: Quotas) -> Cgroup | None:
        """A new group with the quotas' memory and process limits, or None where none can be made here."""
        name = f"w2sbench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        v2 = _own_group("")
        if v2 is not None:
            listed = v2 / "cgroup.controllers"
            controllers = listed.read_text().split() if listed.exists() else []
            if {"memory", "pids"} <= set(controllers):
                try:
                    folder = v2 / name
                    folder.mkdir()
                    (folder / "memory.max").write_text(str(quotas.memory))
                    if (folder / "memory.swap.max").exists():
                        (folder / "memory.swap.max").write_text("0")
                    (folder / "pids.max").write_text(str(quotas.processes))
                    return cls({"memory": folder, "pids": folder}, 2, quotas)
                except OSError:
                    pass
        memory, pids = _own_group("memory"), _own_group("pids")
        if memory is None or pids is None:
            return None
        made: dict[str, Path] = {}
        try:
            made["memory"] = memory / name
            made["memory"].mkdir()
            (made["memory"] / "memory.limit_in_bytes").write_text(str(quotas.memory))
            made["pids"] = pids / name
            made["pids"].mkdir()
            (made["pids"] / "pids.max").write_text(str(quotas.processes))
        except OSError:
            cls(made, 1, quotas).remove()
            return None
        return cls(made, 1, quotas)

    @property
    def mechanism(self) -> str:
        return f"cgroup v{self.version} (memory and pids)"

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside the group: a shell joins it, then execs argv (nothing runs outside it)."""
        procs = sorted({str(f / "cgroup.procs") for f in self.folders.values()})
        joins = "; ".join(f'echo $$ > "{p}"' for p in procs)
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "w2sbench-method", *argv]

    def _events(self, folder: Path, file: str) -> dict[str, int]:
        try:
            pairs = (line.split() for line in (folder / file).read_text().splitlines())
            return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}
        except OSError:
            return {}

    def exceeded(self) -> str | None:
        """'memory' or 'processes' when the group hit that limit (a process OOM-killed, a fork refused)."""
        memory_file = "memory.events" if self.version == 2 else "memory.oom_control"
        if self._events(self.folders["memory"], memory_file).get("oom_kill", 0) > 0:
            return "memory"
        if self._events(self.folders["pids"], "pids.events").get("max", 0) > 0:
            return "processes"
        return None

    def remove(self) -> None:
        for folder in self.folders.values():
            try:
                folder.rmdir()
            except OSError:
                pass
