"""The data-only boundary: what a method process sends back is decoded as plain data or refused in one line,
and nothing it sends runs code in the harness (w2sbench/isolation/replies.py).

Most tests write raw bytes into one end of a socketpair and read them with the harness's reader; the last
ones send hostile frames from a real method process, through the real sealed runner, in the sandbox."""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import threading
import time

import numpy as np
import pytest
from support.toy import N_TEST, N_UNLABEL, make_pipeline, method_file  # noqa: I001  (tests/ is on the path under pytest)

from w2sbench.engine.executors import run_pipeline as run
from w2sbench.errors import W2SError
from w2sbench.isolation import replies, sandbox
from w2sbench.isolation.replies import HEADER, MAGIC, VERSION, ReplyError

OK_COMPUTE = {"train_examples": 30, "train_example_epochs": 60, "predict_examples": 20, "inference_prompts": 0}
SAW = ["weak soft labels on train_unlabel", "strong-model features of test", "strong model (inference)"]


class Boom:
    """Unpickling this runs code: it creates the marker file. Nothing the harness reads may unpickle it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def frame(doc: dict, values=None, job: int = 1, raw_json: bytes | None = None, n_data: int | None = None) -> bytes:
    body = raw_json if raw_json is not None else json.dumps(doc).encode()
    data = b"" if values is None else np.asarray(values, dtype="<f8").tobytes()
    return HEADER.pack(MAGIC, VERSION, job, len(body), len(data) if n_data is None else n_data) + body + data


def read(payload: bytes, job: int = 1, n: int = 3, close: bool = True, deadline: float = 2.0):
    ours, theirs = socket.socketpair()
    theirs.sendall(payload)
    if close:
        theirs.close()
    try:
        return replies.read(ours, job, n, deadline_s=deadline)
    finally:
        ours.close()
        if not close:
            theirs.close()


def ok_doc(**changes) -> dict:
    return {"status": "ok", "compute": {**OK_COMPUTE, **changes}, "saw": SAW[:2]}


def check(doc: dict) -> dict:
    return replies.check_ok(doc, n_unlabel=N_UNLABEL, n_test=N_TEST, epochs=2, allowed_saw=SAW)


def test_a_good_reply_round_trips():
    doc, values = read(replies.encode(7, ok_doc(), np.array([0.25, 0.5, 1.0])), job=7)
    assert values.tolist() == [0.25, 0.5, 1.0] and values.dtype == np.float64
    record = check(doc)
    assert record == {**OK_COMPUTE, "sealed": True, "saw": sorted(SAW[:2])}
    assert list(record)[:4] == list(OK_COMPUTE)  # the results keep the counters in their usual order


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(("ok", np.zeros(3), Boom(str(marker))))
    # the old wire format (4-byte length + pickle), a pickle where the JSON goes, a pickle as the values
    attempts = [
        struct.pack("!i", len(payload)) + payload,
        frame({}, raw_json=payload),
        frame(ok_doc(), n_data=len(payload))[: HEADER.size + len(json.dumps(ok_doc()))] + payload,
    ]
    for attempt in attempts:
        with pytest.raises(ReplyError):
            read(attempt)
    assert not marker.exists()
    assert os.system(f"true {marker}") == 0  # the control: the shell runs, so `ran` would exist had it run


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (b"GET / HTTP/1.1\r\n\r\n" + b"x" * 10, "not a reply frame"),
        (HEADER.pack(MAGIC, 99, 1, 2, 0) + b"{}", "format version 99"),
        (HEADER.pack(MAGIC, VERSION, 1, 2**32 - 1, 0), r"header of 4294967295 bytes \(limit"),
        (HEADER.pack(MAGIC, VERSION, 1, 2, 2**63), "bytes of predictions where 3 test texts take 24"),
        (HEADER.pack(MAGIC, VERSION, 1, 2, 16) + b"{}" + b"\0" * 16, "16 bytes of predictions"),
        (frame({}, raw_json=b"\xff\xfe"), "not plain JSON"),
        (frame({}, raw_json=b'{"status": "ok", "status": "ok"}'), "not plain JSON.*twice"),
        (frame({}, raw_json=b'{"status": NaN}'), "not plain JSON"),
        (frame({}, raw_json=b"[" * 100000 + b"]" * 100000), "not plain JSON"),
        (frame({"status": "pwned"}), "status is not one of"),
        (frame(["ok"]), "status is not one of"),  # type: ignore[arg-type]
        (frame({"status": "error", "message": "x"}, values=[0.5, 0.5, 0.5]), "predictions with a 'error' reply"),
        (frame(ok_doc(), values=[0.5, 0.5, 0.5], job=2), "reply to job 2 while job 1"),
        (frame(ok_doc(), values=[0.5, 0.5, 0.5]) * 2, "data after its reply"),
        (frame(ok_doc(), values=[0.5, 0.5, 0.5]) + b"\0", "data after its reply"),
    ],
)
def test_malformed_frames_are_refused_in_one_line(payload, pattern):
    with pytest.raises(ReplyError, match=pattern) as exc:
        read(payload)
    assert "\n" not in str(exc.value)


def test_a_reply_that_stops_short_or_stalls_is_refused():
    whole = frame(ok_doc(), values=[0.5, 0.5, 0.5])
    with pytest.raises(EOFError):  # the process closed its end: the runner reports it died
        read(whole[:-5])
    started = time.monotonic()
    with pytest.raises(ReplyError, match="stopped after"):
        read(whole[:-5], close=False, deadline=0.5)  # still open, never finishes
    assert time.monotonic() - started < 5


def test_a_reply_split_into_pieces_is_read_whole():
    whole = frame(ok_doc(), values=[0.1, 0.2, 0.3])
    ours, theirs = socket.socketpair()

    def trickle():
        for i in range(0, len(whole), 7):
            theirs.sendall(whole[i : i + 7])
            time.sleep(0.002)

    sender = threading.Thread(target=trickle)
    sender.start()
    doc, values = replies.read(ours, 1, 3, deadline_s=5)
    sender.join()
    ours.close()
    theirs.close()
    assert values.tolist() == [0.1, 0.2, 0.3] and doc["status"] == "ok"


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ({**ok_doc(), "labels": [1, 0]}, "keys"),
        ({"status": "ok", "compute": [], "saw": []}, "not an object"),
        (ok_doc(train_examples=-1, train_example_epochs=-2), "whole number >= 0"),
        (ok_doc(train_examples=True), "whole number >= 0"),
        (ok_doc(train_examples=3.0), "whole number >= 0"),
        (ok_doc(train_examples=101 * N_UNLABEL, train_example_epochs=202 * N_UNLABEL), "more than 100 passes"),
        (ok_doc(train_examples=30, train_example_epochs=90), "recipe's 2 epochs make 60"),
        (ok_doc(predict_examples=10**12), "more than 100 passes"),
        ({"status": "ok", "compute": {"train_examples": 0}, "saw": []}, "without train_example_epochs"),
        (ok_doc(found={"objects": []}), "not a finite number"),
        (ok_doc(kept=float("inf")), "not a finite number"),
        (ok_doc(**{"Bad Key!": 1}), "lowercase"),
        (ok_doc(**{f"k{i}": i for i in range(17)}), "entries of its own"),
        ({**ok_doc(), "saw": "everything"}, "list of strings"),
        ({**ok_doc(), "saw": ["test labels"]}, "cannot have seen: test labels"),
        ({**ok_doc(), "saw": [SAW[0], SAW[0]]}, "twice"),
    ],
)
def test_a_record_the_method_could_not_have_made_is_refused(doc, pattern):
    with pytest.raises(ReplyError, match=pattern):
        check(doc)


def test_method_defined_numbers_pass_and_text_is_made_one_line():
    record = check(ok_doc(kept_fraction=0.5))
    assert record["kept_fraction"] == 0.5
    assert replies.message({"status": "error", "message": "a\nb\x1b[31m" + "x" * 5000}).count("\n") == 0
    assert len(replies.message({"status": "error", "message": "x" * 5000})) == replies.MAX_MESSAGE
    with pytest.raises(ReplyError, match="without a message"):
        replies.message({"status": "error", "message": {"__class__": "x"}})
    assert replies.os_error({"os_error": {"errno": 2, "filename": "/x"}}) == {"errno": 2, "filename": "/x"}
    assert replies.os_error({"os_error": {"errno": "2", "filename": "/x"}}) is None


# ---- from a real method process, in the sandbox --------------------------------------------------------------
needs_sandbox = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")


PWNED = "/tmp/w2sbench-test-replies-pwned"  # on the host: only the harness, unpickling, could create it

# The attack that worked: write the harness a pickle, in the old wire format, that runs code when loaded;
# then return normally, so that the real reply follows it.
SENDS_A_PICKLE = f"""
import pickle, struct
class Boom:
    def __reduce__(self):
        return (os.system, ("touch {PWNED}",))
fd = int(sys.argv[1])  # python -m w2sbench.isolation.sealed FD SPEC SHA: the socket to the harness
payload = pickle.dumps(("ok", np.zeros(len(ctx.test_texts)), {{}}, Boom()))
os.write(fd, struct.pack("!i", len(payload)) + payload)
"""
FORGES_ITS_RECORD = "ctx.compute['train_examples'] = 10**9  # never trained, claims a billion examples"
HONEST = "return ctx.train_strong(ctx.weak_unlabel).predict('test')"


@needs_sandbox
def test_a_method_that_writes_a_pickle_to_the_harness_runs_no_code_and_is_refused(tmp_path):
    if os.path.exists(PWNED):
        os.remove(PWNED)
    pipe, task = make_pipeline(tmp_path)
    attack = method_file(tmp_path, SENDS_A_PICKLE, "sends_a_pickle")
    with pytest.raises(W2SError, match="'sends_a_pickle' sent a reply the harness refuses .*not a reply frame"):
        pipe.run_method(task, attack, 0)
    assert not os.path.exists(PWNED)
    honest = method_file(tmp_path, HONEST, "honest")
    probs, compute, _ = pipe.run_method(task, honest, 0)  # the method's next job gets a fresh process
    assert probs.shape == (N_TEST,) and compute["train_examples"] == N_UNLABEL


@needs_sandbox
def test_a_run_goes_on_without_the_method_that_failed(tmp_path):
    pipe, task = make_pipeline(tmp_path)
    forger = method_file(tmp_path, FORGES_ITS_RECORD, "forges_its_record")
    record = run(pipe, [forger, method_file(tmp_path, HONEST, "honest")])
    assert [name for name in record.tasks[0].methods] == ["honest"]
    assert set(record.failed) == {"forges_its_record"}
    assert (
        "forges_its_record' sent a reply the harness refuses on task 'toy' seed 0" in record.failed["forges_its_record"]
    )
    assert "more than 100 passes" in record.failed["forges_its_record"]
    with pytest.raises(W2SError, match="more than 100 passes"):  # nothing left to report: the run fails
        (tmp_path / "again").mkdir()
        run(make_pipeline(tmp_path / "again")[0], [forger])
