"""What a method process may send back to the harness: plain data in one bounded frame, decoded by code that
cannot run code.

Why: the method process is hostile by assumption. Its replies used to cross as pickles that the harness
unpickled, and a twenty-line method made the harness run code of its choosing (it read the test labels
from the harness's memory and answered with them). A reply is now one frame

    header  b"W2SR" | version u16 | job u32 | json length u32 | values length u64   (little-endian, 22 bytes)
    json    a UTF-8 JSON object of at most MAX_JSON bytes (no NaN, no duplicate keys)
    values  float64 little-endian, exactly 8 * n bytes, n = the test texts the harness sent (ok replies only)

decoded with struct, json.loads and numpy.frombuffer alone, and every field is then checked against what
the harness itself gave the method (check_ok): known keys and types, finite numbers, counts no larger
than the method could have used. `job` echoes the number the harness gave the job, so a reply sent twice,
early or late is never taken for another job's; bytes after a reply are refused; a frame that stops short
or stalls past its deadline is refused. Any refusal is one ReplyError line, and the harness then ends that
method process (its stream can no longer be trusted) and goes on.

The other direction, harness -> method, stays pickle: the harness writes it, and a method can only hurt
itself by what it does with it.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAGIC = b"W2SR"
VERSION = 1
HEADER = struct.Struct("<4sHIIQ")
MAX_JSON = 1 << 20  # an ok reply's JSON is a few hundred bytes; an error's message is cut to MAX_MESSAGE
MAX_MESSAGE = 2000
MAX_PASSES = 100  # a claimed count above this many passes over what the method was given is refused
MAX_EXTRA_KEYS = 16  # method-defined compute entries (confident_only's kept_fraction, say)
COUNTERS = ("train_examples", "train_example_epochs", "predict_examples", "inference_prompts")
STATUSES = ("ok", "shape", "not_numbers", "denied", "error", "loaded")  # loaded: the first frame (sealed._hello)
_KEY = re.compile(r"[a-z][a-z0-9_]{0,47}")


class ReplyError(Exception):
    """A reply the harness refuses; str() is the one line that says what the method sent."""


# ---- the method process's side ------------------------------------------------------------------------------
def encode(job: int, doc: Mapping[str, Any], values: np.ndarray | None = None) -> bytes:
    """One reply frame."""
    body = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    data = b"" if values is None else np.ascontiguousarray(values, dtype="<f8").tobytes()
    return HEADER.pack(MAGIC, VERSION, job & 0xFFFFFFFF, len(body), len(data)) + body + data


def send(fd: int, frame: bytes) -> None:
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.sendall(frame)


# ---- the harness's side ---------------------------------------------------------------------------------------
def _read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise ReplyError(f"a reply that stopped after {got} of {n} announced bytes")
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} twice")
        out[key] = value
    return out


def read(sock: socket.socket, job: int, n_values: int, deadline_s: float = 60.0) -> tuple[dict, np.ndarray | None]:
    """One reply for job number `job`, once the socket is readable: (its JSON object, its values or None).
    Raises ReplyError (refused), or EOFError when the process closed the socket before a whole header."""
    deadline = time.monotonic() + deadline_s
    head = _read_exact(sock, HEADER.size, deadline)
    magic, version, got_job, n_json, n_data = HEADER.unpack(head)
    if magic != MAGIC:
        raise ReplyError(f"bytes that are not a reply frame (starting {head[:8]!r})")
    if version != VERSION:
        raise ReplyError(f"a reply of format version {version} (this harness reads version {VERSION})")
    if got_job != job & 0xFFFFFFFF:
        raise ReplyError(f"a reply to job {got_job} while job {job} was running (a reply sent twice or early)")
    if n_json > MAX_JSON:
        raise ReplyError(f"a reply header of {n_json} bytes (limit {MAX_JSON})")
    if n_data not in (0, 8 * n_values):
        raise ReplyError(f"{n_data} bytes of predictions where {n_values} test texts take {8 * n_values}")
    try:
        doc = json.loads(
            _read_exact(sock, n_json, deadline).decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ReplyError(f"a reply header that is not plain JSON ({clip(str(e), 120)})") from None
    if not isinstance(doc, dict) or doc.get("status") not in STATUSES:
        raise ReplyError(f"a reply whose status is not one of {', '.join(STATUSES)}")
    values = None
    if n_data:
        if doc["status"] != "ok":
            raise ReplyError(f"predictions with a {doc['status']!r} reply")
        values = np.frombuffer(_read_exact(sock, n_data, deadline), dtype="<f8").astype(np.float64)
    try:
        extra = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        extra = b""
    if extra:
        raise ReplyError("data after its reply")
    return doc, values


def clip(text: Any, limit: int = MAX_MESSAGE) -> str:
    """A method's text as part of one line: control characters out, length bounded."""
    flat = "".join(c if c.isprintable() else " " for c in str(text))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def message(doc: Mapping[str, Any]) -> str:
    """The text of a denied or error reply, made safe for one line."""
    text = doc.get("message")
    if not isinstance(text, str):
        raise ReplyError(f"a {doc.get('status')!r} reply without a message string")
    return clip(text)


def shape(doc: Mapping[str, Any]) -> tuple[int, ...]:
    """The shape a "shape" reply says the method's predictions had (for the harness's one line)."""
    dims = doc.get("shape")
    if not isinstance(dims, list) or len(dims) > 8 or not all(type(d) is int and 0 <= d < 2**63 for d in dims):
        raise ReplyError("a shape reply without a list of at most 8 sizes")
    return tuple(dims)


def os_error(doc: Mapping[str, Any]) -> dict | None:
    """The file error behind a failure ({errno, filename}), if the reply names a well-formed one."""
    err = doc.get("os_error")
    if (
        isinstance(err, dict)
        and set(err) == {"errno", "filename"}
        and type(err["errno"]) is int
        and isinstance(err["filename"], str)
        and len(err["filename"]) <= 4096
        and "\0" not in err["filename"]
    ):
        return err
    return None


def _count(value: Any, key: str, limit: int) -> int:
    if type(value) is not int or value < 0:
        raise ReplyError(f"compute {key} = {clip(repr(value), 40)} (a count must be a whole number >= 0)")
    if value > limit:
        raise ReplyError(f"compute {key} = {value}, more than {MAX_PASSES} passes over what it was given ({limit})")
    return value


def check_ok(
    doc: Mapping[str, Any], *, n_unlabel: int, n_test: int, epochs: int, allowed_saw: Sequence[str]
) -> dict[str, Any]:
    """An ok reply's compute record and `saw`, checked against what the harness gave the method; returns the
    record the results keep: the counters, the method's own finite entries, `sealed`, `saw`."""
    if set(doc) != {"status", "compute", "saw"}:
        raise ReplyError(f"an ok reply with keys {sorted(clip(k, 40) for k in doc)} (expected compute, saw, status)")
    compute, saw = doc["compute"], doc["saw"]
    if not isinstance(compute, dict):
        raise ReplyError("a compute record that is not an object")
    missing = [k for k in COUNTERS if k not in compute]
    if missing:
        raise ReplyError(f"a compute record without {', '.join(missing)}")
    seen = n_unlabel + n_test
    limits = {
        "train_examples": MAX_PASSES * n_unlabel,
        "train_example_epochs": MAX_PASSES * n_unlabel * epochs,
        "predict_examples": MAX_PASSES * seen,
        "inference_prompts": MAX_PASSES * seen,
    }
    record: dict[str, Any] = {k: _count(compute[k], k, limits[k]) for k in COUNTERS}
    if record["train_example_epochs"] != record["train_examples"] * epochs:
        raise ReplyError(
            f"compute train_example_epochs = {record['train_example_epochs']}, but {record['train_examples']} "
            f"training examples at the recipe's {epochs} epochs make {record['train_examples'] * epochs}"
        )
    extra = [k for k in compute if k not in COUNTERS]
    if len(extra) > MAX_EXTRA_KEYS:
        raise ReplyError(f"a compute record with {len(extra)} entries of its own (limit {MAX_EXTRA_KEYS})")
    for key in extra:
        value = compute[key]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ReplyError(f"a compute entry named {clip(repr(key), 60)} (lowercase letters, digits, _)")
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ReplyError(f"compute {key} = {clip(repr(value), 40)} (not a finite number)")
        record[key] = value
    if not isinstance(saw, list) or not all(isinstance(s, str) for s in saw):
        raise ReplyError("a `saw` that is not a list of strings")
    unknown = sorted(set(saw) - set(allowed_saw))
    if unknown:
        raise ReplyError(f"`saw` names what it cannot have seen: {clip(unknown[0], 80)}")
    if len(saw) != len(set(saw)):
        raise ReplyError("`saw` names one thing twice")
    return {**record, "sealed": True, "saw": sorted(saw)}
