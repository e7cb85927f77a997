"""An OS sandbox (bubblewrap) for untrusted method code: the kernel, not Python, decides what it can touch.

Why: a method (a researcher's or an automated agent's) runs as ordinary Python in a child process. Sealing
the API (sealed.py) keeps labels out of its memory, but the process could still read the task's data
files, the artifact cache (other stages' predictions), results and leaderboard files, open sockets, or
read the harness's memory. Path checks in Python are trivially bypassed (ctypes, os.open, a subprocess),
so the child is started inside bubblewrap instead:

- a fresh mount namespace that holds only what a method needs, read-only: the system (/usr, /lib...),
  a few /etc files, the Python environment, the w2sbench package folder (not the repository), the model
  folders and the method's own files. Task data packages and the like inside those trees are masked
  by an empty, read-only, mode-0000 tmpfs (reads fail with EACCES); everything else is simply absent
  (ENOENT). The only writable places are a private /tmp (HOME is /tmp/home) and /dev/shm, both
  in-memory and gone when the sandbox ends;
- its own network namespace: loopback only, so nothing leaves the machine (connect fails at once with
  ENETUNREACH) while vLLM's workers still talk over 127.0.0.1 and /tmp sockets;
- its own pid, ipc, uts, cgroup and user namespaces: the harness's processes are invisible, so they
  cannot be ptraced or read (/proc/<pid>/mem, process_vm_readv); nested user namespaces are disabled
  and every capability is dropped, so root inside cannot remount or unmask anything;
- --die-with-parent: when the process that launched bwrap dies (even by SIGKILL), the kernel kills the
  sandbox's init and with it every process in the sandbox. PR_SET_PDEATHSIG fires when the launching
  *thread* exits: start the sandbox from a thread that lives as long as the sandbox should.

Inside the sandbox, install_reporter() and explain() turn the resulting OSErrors into one line such as
"tried to read /x/y: denied by the sandbox".

Quotas (memory, processes and threads, the size of /tmp, /dev/shm and of any file) are w2sbench/isolation/quotas.py's:
the tmpfs sizes are set here (Policy.tmp_bytes, shm_bytes), the rest around the bwrap process. Not covered:
CPU time beyond each job's time limit, and side channels.
"""

from __future__ import annotations

import errno
import functools
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import W2SError

__all__ = [
    "Policy",
    "command",
    "default_policy",
    "describe",
    "explain",
    "install_reporter",
    "unavailable_reason",
    "version",
]

BWRAP = "bwrap"
POLICY_ENV = "W2SBENCH_SANDBOX"
"""Set inside the sandbox: JSON of what is visible, so that explain() can tell a denial from a missing file."""

SANDBOX_TMP = "/tmp"
SANDBOX_HOME = "/tmp/home"

# Top-level system folders bound read-only (or recreated as the same symlink, e.g. /lib -> usr/lib).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The /etc entries a Python program needs (users for getpass, the loader cache for ctypes, time zone, name
# resolution of localhost). Not /etc as a whole: it holds pip.conf, npmrc, ssh and other credentials.
ETC_ENTRIES = (
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/alternatives",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
    "/etc/mime.types",
    "/etc/protocols",
    "/etc/services",
    "/etc/locale.alias",
    "/etc/ssl",
    "/etc/ca-certificates",
)
# Fresh, sandbox-only mounts: visible to the method but holding nothing of the host's files.
PRIVATE_MOUNTS = ("/proc", "/dev", "/sys", SANDBOX_TMP)

# Host variables passed in when command() is not given an environment, each by its full name (never a prefix:
# a prefix lets anything that can set the harness's environment hand data to the method): locale, thread counts,
# the vLLM and device settings the engines read. Nothing else (tokens, W2SBENCH_* paths, HF_* cache locations)
# crosses into the sandbox. PYTHONPATH crosses too (child_env), so that the sandbox imports the w2sbench the
# harness imported.
ENV_PASS = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONWARNINGS",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "VLLM_LOGGING_LEVEL",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_CPU_NUM_OF_RESERVED_CPU",
    "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_TARGET_DEVICE",
    "VLLM_WORKER_MULTIPROC_METHOD",
    "VLLM_ENABLE_V1_MULTIPROCESSING",
    "NCCL_DEBUG",
    "NCCL_P2P_DISABLE",
    "NCCL_IB_DISABLE",
)
# The uid and gid a method runs as when the harness runs as root (nobody): never the host's root.
UNPRIVILEGED = (65534, 65534)
# The parts of /sys a method process may read (torch and vLLM count cores and NUMA nodes there), bound read-only
# where they exist; the rest of /sys (devices, firmware, kernel settings, other cgroups) is not in the sandbox.
SYS_PATHS = ("/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/fs/cgroup")


def child_env() -> dict[str, str]:
    """The host variables a sandboxed process gets: ENV_PASS by name, and PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k in ENV_PASS}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# ------------------------------------------------------------------------------------------- GPU access
# Kept apart from the rest of the policy: nothing below changes the sandbox of a machine without an NVIDIA
# device node, and four functions (gpu_device_args, gpu_system_args, gpu_library_dirs, gpu_environment) are
# all that command() and _environment() call. Flatpak gives its sandboxes an NVIDIA GPU the same way (device
# nodes bound with device access, the driver's libraries on the loader's path).

DEV_ROOT = "/dev"
"""Where the host's device nodes are (a test points it at a folder of stand-ins)."""
GPU_DEVICE_NODES = {
    "nvidia[0-9]*": "one node per GPU: every CUDA call on that card is an ioctl on it",
    "nvidiactl": "the driver's control node: libcuda opens it before any card",
    "nvidia-uvm": "unified memory: the CUDA runtime needs it to create a context",
    "nvidia-uvm-tools": "unified-memory events (the profiler; CUDA opens it where present)",
    "nvidia-modeset": "the driver's mode-setting node, opened by the driver's library where present",
    "nvidia-caps": "MIG capabilities (nvidia-cap1, ...): a MIG slice of a card is reachable only through them",
    "dri": "the DRM nodes (card*, renderD*) some drivers and Vulkan/EGL paths open; where present",
}
"""Device nodes under DEV_ROOT bound into the sandbox with device access (bwrap --dev-bind), and why."""
GPU_SYSTEM_PATHS = {
    "/proc/driver/nvidia": "params (device-node modes, ModifyDeviceFiles) and version, read by libcuda and NVML; "
    "gpus/<bus id>/information. Today the sandbox's own /proc shows it (driver entries are not per namespace)",
    "/sys/bus/pci/devices": "each card's PCI function (numa_node, resource, current_link_speed/width), read by "
    "libcuda and NVML to enumerate cards and by NCCL for the topology; links into /sys/devices/pci*",
    "/sys/devices/system/node": "NUMA nodes: NVML's CPU affinity of a card, NCCL and vLLM place threads by it",
    "/sys/devices/system/cpu": "CPU topology (online, cpu*/topology): torch, NCCL and vLLM's worker binding",
    "/sys/module/nvidia": "the kernel module's version and parameters, compared by NVML with its library's",
    "/sys/class/net": "network interfaces: NCCL lists them even on one node (loopback only in here)",
}
"""What the GPU path reads of /proc and /sys, and why. /proc is the sandbox's own, so /proc/driver/nvidia is
visible; of /sys only SYS_PATHS is bound on every machine, and on a machine with a GPU these too (and
/sys/devices/pci*, where the PCI links point: gpu_system_args)."""
GPU_ENV = {
    "CUDA_VISIBLE_DEVICES": "which cards the process may use (Ray and the operator set it)",
    "CUDA_DEVICE_ORDER": "how those cards are numbered",
    "NVIDIA_VISIBLE_DEVICES": "the container runtime's choice of cards, read by some images' entry points",
    "NVIDIA_DRIVER_CAPABILITIES": "the container runtime's driver capabilities (compute, utility)",
    "LD_LIBRARY_PATH": "where an image puts the driver's libcuda and libnvidia-ml (e.g. /usr/local/nvidia/lib64): "
    "without it torch finds no GPU and trains on the CPU",
    "CUDA_HOME": "the CUDA toolkit: Triton's ptxas, bitsandbytes' and torch's extension lookups",
    "CUDA_PATH": "the same, by its other name",
    "TRITON_LIBCUDA_PATH": "where Triton (torch.compile, vLLM's kernels) finds libcuda",
    "TRITON_PTXAS_PATH": "where Triton finds ptxas",
    "BNB_CUDA_VERSION": "which CUDA build of bitsandbytes' library to load (8-bit AdamW)",
    "CUDA_MODULE_LOADING": "lazy kernel loading (GPU memory)",
    "PYTORCH_CUDA_ALLOC_CONF": "the caching allocator's settings (expandable segments) the operator chose",
    "TORCH_CUDA_ARCH_LIST": "architectures for kernels compiled at run time",
}
"""Variables passed into the sandbox by name where a GPU is present (beside ENV_PASS), and why."""


def gpu_device_nodes(dev_root: str | None = None) -> list[str]:
    """The NVIDIA (and DRM) device nodes of this host: paths under `dev_root` (default DEV_ROOT)."""
    root = dev_root or DEV_ROOT
    return [path for pattern in GPU_DEVICE_NODES for path in sorted(glob.glob(os.path.join(root, pattern)))]


def gpu_present(dev_root: str | None = None) -> bool:
    """Whether this host has an NVIDIA GPU for the sandbox to pass on (a card node or the control node)."""
    root = dev_root or DEV_ROOT
    return bool(glob.glob(os.path.join(root, "nvidia[0-9]*")) or os.path.exists(os.path.join(root, "nvidiactl")))


def gpu_device_args(dev_root: str | None = None) -> list[str]:
    """bwrap arguments that bind the GPU's device nodes at /dev/<name>, with device access (none without a
    GPU)."""
    root = dev_root or DEV_ROOT
    if not gpu_present(root):
        return []
    args: list[str] = []
    for node in gpu_device_nodes(root):
        args += ["--dev-bind", node, "/dev/" + os.path.relpath(node, root)]
    return args


def gpu_system_args(dev_root: str | None = None, sys_root: str = "/sys") -> list[str]:
    """bwrap arguments that bind, read-only, the parts of /sys in GPU_SYSTEM_PATHS that exist, and the
    /sys/devices/pci* trees the PCI links point into (none without a GPU): what the GPU needs of a /sys that is
    otherwise bound only in SYS_PATHS. /proc/driver/nvidia needs no bind: the
    sandbox's own /proc shows it."""
    if not gpu_present(dev_root):
        return []
    paths = [sys_root + p.removeprefix("/sys") for p in GPU_SYSTEM_PATHS if p.startswith("/sys/")]
    paths += sorted(glob.glob(os.path.join(sys_root, "devices", "pci*")))
    args: list[str] = []
    for path in paths:
        if os.path.exists(path):
            args += ["--ro-bind", path, "/sys/" + os.path.relpath(path, sys_root)]
    return args


def gpu_library_dirs(environ: Mapping[str, str] | None = None, dev_root: str | None = None) -> list[str]:
    """Host folders of the driver's and the toolkit's libraries that the system folders do not already hold
    (LD_LIBRARY_PATH's entries, CUDA_HOME, TRITON_LIBCUDA_PATH), bound read-only where a GPU is present."""
    env = os.environ if environ is None else environ
    if not gpu_present(dev_root):
        return []
    dirs = [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    dirs += [env[k] for k in ("CUDA_HOME", "CUDA_PATH", "TRITON_LIBCUDA_PATH") if env.get(k)]
    system = [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    return [d for d in _unique(_norm(d) for d in dirs) if os.path.isdir(d) and not any(_inside(d, s) for s in system)]


def gpu_environment(environ: Mapping[str, str] | None = None, dev_root: str | None = None) -> dict[str, str]:
    """The GPU_ENV variables of `environ` (default: this process's) that are set, where a GPU is present."""
    env = os.environ if environ is None else environ
    if not gpu_present(dev_root):
        return {}
    return {k: env[k] for k in GPU_ENV if isinstance(env.get(k), str)}


@dataclass(frozen=True)
class Policy:
    """What a sandboxed process may read. Nothing else of the host's file system is visible.

    read_only: host paths bound read-only at the same place (the Python environment, model folders, the
    method's own files); system folders are added by command(). hidden: paths that must not be readable;
    where one lies inside a read_only tree it is masked, otherwise it is simply never bound (listed for
    the record and for explain()). A read_only path inside a hidden one stays readable (model folders in
    the cache). Always: network loopback only, a private writable /tmp (HOME=/tmp/home), nothing else
    writable.
    """

    read_only: tuple[str, ...]
    hidden: tuple[str, ...] = ()
    tmp_bytes: int | None = None  # size of the private /tmp (None: the tmpfs default, half the memory)
    shm_bytes: int | None = None  # size of the private /dev/shm


# ------------------------------------------------------------------------------------------ availability


@functools.lru_cache(maxsize=1)
def version() -> str | None:
    """'bubblewrap 0.8.0', or None when bwrap is not installed."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or "bubblewrap (unknown version)"


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when a sandbox can be created here (tried once with the real flags); otherwise one line why."""
    if shutil.which(BWRAP) is None:
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    try:
        out = subprocess.run(
            command(Policy(read_only=()), ["true"]),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap failed to start: {type(exc).__name__}: {exc}"
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return f"bubblewrap cannot create a sandbox here ({first}); user namespaces may be disabled"
    if _root_harness():
        if shutil.which("setpriv") is None:
            return "the harness runs as root and setpriv (util-linux) is missing: it cannot drop to nobody"
        for path in (sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
            if not _readable_by_all(path):
                return (
                    f"the harness runs as root, and the sandbox runs methods as an unprivileged user who cannot read "
                    f"the Python environment {path} (mode {oct(os.stat(path).st_mode & 0o777)}): chmod o+rX it"
                )
    return None


# ------------------------------------------------------------------------------------------------ policy


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _forms(path: str | os.PathLike[str]) -> list[str]:
    """The path as given (absolute) and, when different, with its symlinks resolved."""
    given = _norm(path)
    real = os.path.realpath(given)
    return [given] if real == given else [given, real]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _unique(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))


def _python_paths(repo: str) -> list[str]:
    """The interpreter's prefixes and import path, without the repository (tests/, leaderboard/...)."""
    out = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
    ]
    prefixes = [_norm(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)]
    for entry in sys.path:
        if not entry or not os.path.exists(entry):  # '' is the current folder, wherever the harness runs
            continue
        path = _norm(entry)
        if _inside(repo, path):  # the checkout or a folder above it
            continue
        site = os.path.basename(path) in ("site-packages", "dist-packages")  # a venv's, wherever it lies
        if _inside(path, repo) and not site and not any(_inside(path, p) for p in prefixes):  # tests/, examples/
            continue
        out.append(path)
    # Editable installs (setuptools' __editable___*_finder) map package names to source folders.
    for name, module in list(sys.modules.items()):
        if name.startswith("__editable__") and isinstance(getattr(module, "MAPPING", None), dict):
            out += [str(p) for p in module.MAPPING.values() if not _inside(repo, _norm(p))]
    out += [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # the w2sbench package folder
    return out


def _readable_by_all(path: str) -> bool:
    """Others may read it (and search it, for a folder): the unprivileged user the sandbox runs as under root."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    need = 0o005 if os.path.isdir(path) else 0o004
    return mode & need == need


def _method_paths(method_paths: Iterable[str]) -> list[str]:
    """A method file alone (never its folder: a file at the repository root must not expose the
    repository); a package folder as given; an importable top-level name -> its package folder(s)."""
    out: list[str] = []
    for item in method_paths:
        if os.path.exists(item):
            out.append(_norm(item))
            continue
        spec = importlib.util.find_spec(item.split(".")[0])
        if spec is None:
            raise FileNotFoundError(f"method path {item!r} is neither a file, a folder nor an importable name")
        if spec.submodule_search_locations:
            out += [str(p) for p in spec.submodule_search_locations]
        elif spec.origin:
            out.append(spec.origin)
    return out


def _package_locations(package: str) -> list[str]:
    """The top-level folder(s) of an installed package, found without importing it: the one Python would
    import and any other copy on the import path (a base interpreter's site-packages, say)."""
    top = package.split(".")[0]
    out: list[str] = []
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        out += [str(p) for p in spec.submodule_search_locations]
    elif spec is not None and spec.origin and os.path.isabs(spec.origin):
        out.append(spec.origin)
    for entry in sys.path:
        for candidate in (os.path.join(entry or ".", top), os.path.join(entry or ".", top + ".py")):
            if entry and os.path.exists(candidate):
                out.append(candidate)
    return out


def _task_data_paths() -> list[str]:
    """Where every registered task's data lives: data packages' folders, local files' folders, AAR folders,
    the folder of pinned data wheels (hidden whether or not a registered task names one)."""
    from w2sbench.paths import data_wheel_dir
    from w2sbench.schema_io import read_yaml
    from w2sbench.tasks import list_tasks, load_task, sources, task_dirs

    out = [str(folder) for folder in task_dirs()] + [str(data_wheel_dir())]
    for yaml_path in list_tasks().values():
        try:
            source = load_task(str(yaml_path)).config["source"]
        except Exception:  # an invalid task still names its data: read the raw YAML
            try:
                source = (read_yaml(yaml_path) or {}).get("source") or {}
            except Exception:
                continue
        kind = source.get("type")
        if kind == "package" and source.get("package"):
            out += _package_locations(source["package"])
        elif kind in ("local", "aar"):
            raw = source.get("path")
            for item in raw.values() if isinstance(raw, dict) else [raw]:
                if not isinstance(item, str):
                    continue
                try:
                    path = sources._expand(item, yaml_path)
                except Exception:  # needs an unset variable: nothing to hide
                    continue
                out.append(str(path if kind == "aar" or path.is_dir() else path.parent))
    return out


def _hf_caches() -> list[str]:
    keys = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")
    out = [os.environ[k] for k in keys if os.environ.get(k)]
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return out + [os.path.join(xdg, "huggingface"), "~/.cache/huggingface"]


def default_policy(
    model_dirs: Sequence[str | os.PathLike[str]],
    method_paths: Sequence[str | os.PathLike[str]],
    hidden_extra: Sequence[str | os.PathLike[str]] = (),
) -> Policy:
    """The policy for a method: Python, w2sbench's code, the models and the method readable; no task data.

    Hidden: every registered task's data (the data packages' folders in site-packages, local sources'
    folders, AAR folders, task folders), the w2sbench cache (model folders inside it stay readable, its
    artifacts/ does not), the Hugging Face caches, $W2SBENCH_AAR_DIR, and the repository's tasks/, tests/,
    leaderboard/ and results/. The repository itself is never bound, only its package folder.
    """
    from w2sbench import paths

    repo = _norm(paths.repo_root())
    python = _python_paths(repo)
    needed = [str(p) for p in model_dirs] + _method_paths([os.fspath(p) for p in method_paths])
    if _root_harness():  # the method runs as UNPRIVILEGED: what it cannot read is no use bound
        python = [p for p in python if _readable_by_all(p)]
        for path in needed:
            if os.path.exists(path) and not _readable_by_all(path):
                raise W2SError(
                    f"{path}: the method sandbox runs methods as an unprivileged user (the harness runs as root), "
                    f"who cannot read it (mode {oct(os.stat(path).st_mode & 0o777)}): make it readable by all "
                    f"(chmod o+rX)"
                )
    read_only = python + needed
    hidden = _task_data_paths() + [str(paths.cache_dir())] + _hf_caches()
    hidden += [os.path.join(repo, name) for name in ("tasks", "tests", "leaderboard", "results")]
    if os.environ.get("W2SBENCH_AAR_DIR"):
        hidden.append(os.environ["W2SBENCH_AAR_DIR"])
    hidden += [os.fspath(p) for p in hidden_extra]
    ro = _unique(f for p in read_only if os.path.exists(p) for f in _forms(p))
    # A folder that is, or holds, one of the sandbox's own mounts (a script run from /tmp puts /tmp on
    # sys.path) would cover the private /tmp, /proc, /dev or /sys: such a folder is never bound whole.
    ro = tuple(p for p in ro if not any(_inside(m, p) for m in PRIVATE_MOUNTS))
    hid = _unique(f for p in hidden if os.path.exists(os.path.expanduser(p)) for f in _forms(p))
    # A path inside another bound one adds nothing, unless a hidden path lies between them (a model
    # folder inside the hidden cache inside a bound tree).
    ro = tuple(
        p
        for p in ro
        if not any(r != p and _inside(p, r) and not any(_inside(p, h) and _inside(h, r) for h in hid) for r in ro)
    )
    return Policy(read_only=ro, hidden=hid)


# ----------------------------------------------------------------------------------------------- command


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def _system_args() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_ENTRIES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _environment(env: Mapping[str, str] | None, policy: Policy) -> dict[str, str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k in ENV_PASS}
    env = {**gpu_environment(), **env}  # what CUDA needs, where a GPU is present (an explicit env wins)
    base = {
        "PATH": os.pathsep.join([os.path.join(sys.prefix, "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "USER": _user(),
        "LOGNAME": _user(),
        # No network: libraries must not wait on the hub.
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    forced = {
        "HOME": SANDBOX_HOME,
        "TMPDIR": SANDBOX_TMP,
        "XDG_CACHE_HOME": SANDBOX_HOME + "/.cache",
        # vLLM looks for a routable address by connecting to 8.8.8.8; only loopback exists in here.
        "VLLM_HOST_IP": "127.0.0.1",
        POLICY_ENV: json.dumps({"read_only": _visible(policy), "hidden": list(policy.hidden)}),
    }
    return {**base, **dict(env), **forced}


def _user() -> str:
    if _root_harness():
        return "nobody"
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "user"


def _visible(policy: Policy) -> list[str]:
    """Every tree a sandboxed process can see (for explain())."""
    system = [p for p in SYSTEM_DIRS + ETC_ENTRIES if os.path.lexists(p)]
    return list(_unique([*system, *PRIVATE_MOUNTS, *policy.read_only]))


@functools.lru_cache(maxsize=1)
def _root_harness() -> bool:
    """True when the harness runs as root and UNPRIVILEGED exists in its user namespace: the sandbox then
    drops to it (command()). As root of a user namespace that maps no such user (`unshare --map-root-user`),
    it cannot, and one unprivileged bwrap runs the method as that namespace's root, as for any other user."""
    if os.geteuid() != 0:
        return False
    try:
        rows = [line.split() for line in open("/proc/self/uid_map").read().splitlines()]
    except OSError:
        return True
    return any(int(inner) <= UNPRIVILEGED[0] < int(inner) + int(count) for inner, _, count in rows)


def _parents(paths: Iterable[str], trees: Sequence[str]) -> list[str]:
    """The folders above `paths` that bwrap would create itself, outside every bound tree, outermost first."""
    out: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent not in ("/", "") and not any(_inside(parent, t) for t in trees):
            out.add(parent)
            parent = os.path.dirname(parent)
    return sorted(out, key=lambda p: (_depth(p), p))


def command(policy: Policy, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The full bwrap argv that runs `argv` under `policy`.

    `env` is the sandbox's whole environment (plus PATH/LANG defaults; HOME, TMPDIR and the policy are
    forced); when None, only locale, thread-count and engine-tuning variables of the host pass in.

    As any user but root, one unprivileged bwrap does everything: the method's uid is the harness's, and a
    user namespace lets it hold no capability. As root that namespace would map the method's uid to the
    host's root (bwrap writes "uid 0 1"), so the method would own every root-owned file it can see. There the
    outer bwrap runs privileged without a user namespace (it can read what it binds, wherever it lies), keeps
    only CAP_SETUID and CAP_SETGID, and runs `setpriv` to become UNPRIVILEGED (nobody) with no capability
    left, which then starts an inner, unprivileged bwrap that sees the same tree and only adds a user
    namespace with nested ones disabled. Folders bwrap creates above a bound path are made searchable
    (0755), /tmp and /dev/shm writable by all (1777).
    """
    exe = shutil.which(BWRAP) or BWRAP
    root = _root_harness()
    if root:
        args = [exe, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for setpriv alone, dropped by it
    else:
        args = [
            exe,
            "--unshare-all",  # user, mount, pid, net (loopback only), ipc, uts, cgroup
            "--unshare-user",  # needed for --disable-userns
            "--disable-userns",  # no nested user namespace: no way to regain capabilities and unmount masks
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into the harness's terminal
            "--cap-drop",
            "ALL",
        ]
    args += _system_args()
    shm = ["--size", str(policy.shm_bytes)] if policy.shm_bytes else []
    args += ["--proc", "/proc", "--dev", "/dev", *shm, "--perms", "1777", "--tmpfs", "/dev/shm"]
    gpu_sys = gpu_system_args()  # what the GPU reads in /sys (nothing without one), bound with SYS_PATHS below
    tmp = ["--size", str(policy.tmp_bytes)] if policy.tmp_bytes else []
    args += ["--perms", "1777", *tmp, "--tmpfs", SANDBOX_TMP, "--perms", "0777", "--dir", SANDBOX_HOME]

    # Binds and masks, outer before inner; at equal paths the mask comes last and wins.
    read_only = [p for p in _unique(_norm(p) for p in (*policy.read_only, *gpu_library_dirs())) if os.path.lexists(p)]
    trees = [*read_only, *(d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d))]
    masks = [
        h for h in _unique(_norm(h) for h in policy.hidden) if os.path.lexists(h) and any(_inside(h, r) for r in trees)
    ]
    if root:  # privileged bwrap makes the folders above a bind 0700: the unprivileged user could not pass
        private = ["/proc", "/dev"]
        bound_sys = [*sys_paths(), *gpu_sys[2::3]]  # gpu_sys: ("--ro-bind", source, destination) triples
        for folder in _parents([*read_only, *bound_sys], [*trees, *private]):
            args += ["--perms", "0755", "--dir", folder]
    for path in sys_paths():
        args += ["--ro-bind", path, path]
    args += gpu_sys + gpu_device_args()
    items = sorted([(_depth(p), 0, p) for p in read_only] + [(_depth(h), 1, h) for h in masks])
    remount: list[str] = []
    for _, is_mask, path in items:
        if not is_mask:
            if root:  # folders bwrap makes inside a mask to hold this path: searchable by the unprivileged user
                inner = [f for f in _parents([path], []) if any(_inside(f, m) and f != m for m in masks)]
                for folder in inner:
                    args += ["--perms", "0755", "--dir", folder]
            args += ["--ro-bind", path, path]
        elif os.path.isdir(path):
            # Empty and unreadable (EACCES), made read-only below; searchable (0111: ENOENT inside) only
            # where a bound path lies beneath it.
            inner = any(_inside(r, path) and r != path for r in read_only)
            args += ["--perms", "0111" if inner else "0000", "--tmpfs", path]
            remount.append(path)
        else:
            args += ["--ro-bind", "/dev/null", path]  # a file reads as empty
    for path in remount:
        args += ["--remount-ro", path]
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]  # (not recursive: /dev/shm and /tmp stay writable)

    args.append("--clearenv")
    for key, value in _environment(env, policy).items():
        args += ["--setenv", key, value]
    args += ["--chdir", SANDBOX_TMP, "--"]
    if root:
        uid, gid = UNPRIVILEGED
        args += [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}"]
        args += ["--clear-groups", "--inh-caps=-all", "--no-new-privs", "--"]
        args += [exe, "--unshare-user", "--disable-userns", "--die-with-parent", "--dev-bind", "/", "/"]
        args += ["--chdir", SANDBOX_TMP, "--"]
    return [*args, *argv]


def sys_paths() -> list[str]:
    """The parts of /sys bound into the sandbox (SYS_PATHS that exist here)."""
    return [p for p in SYS_PATHS if os.path.isdir(p)]


def describe(policy: Policy) -> dict[str, Any]:
    """What the sandbox allows, for the results JSON."""
    system = [p for p in SYSTEM_DIRS if os.path.lexists(p)]
    etc = [os.path.basename(p) for p in ETC_ENTRIES if os.path.lexists(p)]
    return {
        "mechanism": f"{version() or 'bubblewrap'}: user, mount, pid, network, ipc, uts and cgroup namespaces; "
        "all capabilities dropped; nested user namespaces disabled",
        "user": f"uid {UNPRIVILEGED[0]} (the harness runs as root)" if _root_harness() else "the harness's own uid",
        "read_only": [*system, f"/etc ({', '.join(etc)} only)", *sys_paths(), *policy.read_only],
        "hidden": list(policy.hidden),
        "writable": [f"{SANDBOX_TMP} (private)", "/dev/shm (private)"],
        "network": "loopback only",
        "processes": "own pid namespace; dies with the harness",
        **({"gpu": {"devices": gpu_device_nodes(), "libraries": gpu_library_dirs()}} if gpu_present() else {}),
    }


# --------------------------------------------------------------------------------- inside the sandbox

_WRITE_EVENTS = frozenset(
    {
        "os.mkdir",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.symlink",
        "os.link",
        "os.utime",
        "shutil.copyfile",
    }
)
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "shutil.copytree"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_last = threading.local()
_installed: list[bool] = []


def _record(event: str, args: tuple[Any, ...]) -> None:
    try:
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            if isinstance(mode, str):
                write = any(c in mode for c in "wax+")
            else:
                write = bool((flags or 0) & _WRITE_FLAGS)
            _last.attempt = ("write" if write else "read", os.fsdecode(path))
        elif event in _WRITE_EVENTS or event in _READ_EVENTS:
            path = args[1] if event == "shutil.copyfile" else args[0]
            if not isinstance(path, int):
                _last.attempt = ("write" if event in _WRITE_EVENTS else "read", os.fsdecode(path))
        elif event in ("socket.connect", "socket.sendto"):
            _last.attempt = ("connect", args[1])
        elif event == "socket.getaddrinfo":
            _last.attempt = ("resolve", args[0])
    except Exception:  # an audit hook must never break the call it watches
        pass


def last_write() -> str | None:
    """The file this thread last opened for writing (after install_reporter()), to name the file behind an
    error that names none (a write() past a quota)."""
    kind, target = getattr(_last, "attempt", (None, None))
    return target if kind == "write" and isinstance(target, str) else None


def install_reporter() -> None:
    """Call inside the sandboxed child: remember each thread's last file open / socket connect attempt."""
    if not _installed:
        sys.addaudithook(_record)
        _installed.append(True)


def _policy_inside() -> dict[str, list[str]] | None:
    raw = os.environ.get(POLICY_ENV)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _denied(path: str, policy: dict[str, list[str]], resolve: bool = True) -> bool:
    """True when the sandbox is why `path` cannot be reached: it is hidden, outside every visible tree, or in
    a folder of the private /tmp that bwrap made only to hold a bound path (the host's other files there
    are not in the sandbox)."""
    bound = [r for r in policy.get("read_only", []) if r not in PRIVATE_MOUNTS]
    for candidate in {_norm(path), os.path.realpath(path) if resolve else _norm(path)}:
        best, denied, private = -1, True, ""
        for root in [*bound, *PRIVATE_MOUNTS]:
            if _inside(candidate, root) and len(root) > best:
                best, denied, private = len(root), False, root if root in PRIVATE_MOUNTS else ""
        for root in policy.get("hidden", []):
            if _inside(candidate, root) and len(root) >= best:
                best, denied = len(root), True
        if not denied and private:
            parent = os.path.dirname(candidate)
            denied = parent != private and any(_inside(r, parent) for r in bound)
        if not denied:
            return False
    return True


def shows(policy: Policy, path: str) -> bool:
    """True when a process under `policy` can reach `path` (a harness-side check by the policy alone)."""
    return not _denied(path, {"read_only": _visible(policy), "hidden": list(policy.hidden)}, resolve=False)


def _address(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return os.fsdecode(addr) if isinstance(addr, (str, bytes)) else repr(addr)


def _is_local(host: Any) -> bool:
    return str(host) in ("localhost", "127.0.0.1", "::1", "") or str(host).startswith("127.")


def explain(exc: BaseException) -> str | None:
    """In the sandboxed child: one line for an OSError the sandbox caused, e.g. "tried to read /x/y: denied by
    the sandbox"; None for anything else (or outside a sandbox). Works best after install_reporter()."""
    policy = _policy_inside()
    if policy is None:
        return None
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen and not isinstance(err, OSError):
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    if not isinstance(err, OSError):
        return None
    kind, target = getattr(_last, "attempt", (None, None))
    import socket

    if isinstance(err, socket.gaierror):
        if kind == "resolve" and not _is_local(target):
            return f"tried to look up {target}: denied by the sandbox (no network; loopback only)"
        return None
    if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL):
        if kind == "connect" and not (isinstance(target, tuple) and _is_local(target[0])):
            return f"tried to connect to {_address(target)}: denied by the sandbox (loopback only)"
        return None
    path = err.filename if isinstance(err.filename, (str, bytes)) else None
    path = os.fsdecode(path) if path is not None else (target if kind in ("read", "write") else None)
    if path is None:
        return None
    mode = kind if kind in ("read", "write") and target is not None and _norm(target) == _norm(path) else None
    if err.errno == errno.EROFS or (err.errno == errno.EACCES and mode == "write" and not _denied(path, policy)):
        # EACCES: the unprivileged user the sandbox runs as under a root harness may not write a root's file
        return f"tried to write {_norm(path)}: denied by the sandbox (read-only; only /tmp is writable)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR) and _denied(path, policy):
        return f"tried to {mode or 'read'} {_norm(path)}: denied by the sandbox"
    return None
