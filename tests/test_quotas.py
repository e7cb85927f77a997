"""Quotas of the method sandbox (w2sbench/isolation/quotas.py): each limit passed stops that method seed with one line
naming the limit, and the next method runs; the limits come from the setting, --method-quota overrides
them, and bad values are one line naming where they came from."""

from __future__ import annotations

import pytest
from support.toy import N_TEST, make_pipeline, method_file  # noqa: I001  (tests/ is on the path under pytest)

from w2sbench.engine.spec import RunOptions
from w2sbench.errors import W2SError
from w2sbench.isolation import quotas, sandbox
from w2sbench.isolation.quotas import GIB, Quotas, from_setting, override, size_text

MIB = 1 << 20


def test_quota_text_and_setting_values_parse_to_bytes():
    q = override(Quotas(), "memory=4G, processes=512,tmp=1.5G,shm=512M,file=64MiB")
    assert q == Quotas(memory=4 * GIB, processes=512, tmp=3 * GIB // 2, shm=512 * MIB, file=64 * MIB)
    assert override(q, None) is q and override(Quotas(), "memory=2g").processes == Quotas().processes
    assert from_setting({"method_memory_gib": 2, "method_processes": 100, "method_timeout_s": 5}, "s.yaml") == Quotas(
        memory=2 * GIB, processes=100
    )
    assert [size_text(n) for n in (8 * GIB, 256 * MIB, 3 * GIB // 2, 100)] == ["8 GiB", "256 MiB", "1.5 GiB", "100 B"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("memory", "NAME=VALUE"),
        ("ram=4G", "NAME=VALUE with NAME one of memory, processes"),
        ("memory=lots", "--method-quota: memory: 'lots' is not a size"),
        ("processes=-3", "processes='-3': give a whole number"),
    ],
)
def test_bad_quota_text_is_one_line(text, pattern):
    with pytest.raises(W2SError, match=pattern):
        override(Quotas(), text)


def test_a_bad_setting_limit_names_the_file_and_field():
    with pytest.raises(W2SError, match=r"s.yaml: field 'limits.method_memory_gib': must be a positive number"):
        from_setting({"method_memory_gib": -1}, "s.yaml")


# ---- each limit, passed by a real method in the sandbox ------------------------------------------------------
needs_groups = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None or quotas.enforcement(Quotas()) is None,
    reason="no sandbox, or no control group can be made here (memory and process limits not enforced)",
)
HONEST = "return ctx.train_strong(ctx.weak_unlabel).predict('test')"


def limited(tmp_path, quota: str):
    return make_pipeline(tmp_path, RunOptions(method_quota=quota))


def stops(tmp_path, quota: str, body: str, pattern: str) -> None:
    pipe, task = limited(tmp_path, quota)
    with pytest.raises(W2SError, match=pattern) as exc:
        pipe.run_method(task, method_file(tmp_path, body, "greedy"), 0)
    assert "\n" not in str(exc.value)
    probs, _, _ = pipe.run_method(task, method_file(tmp_path, HONEST, "honest"), 0)  # the next method runs
    assert probs.shape == (N_TEST,)


@needs_groups
def test_memory_past_the_limit_stops_the_method(tmp_path):
    stops(
        tmp_path,
        "memory=256M",
        "blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, touched",
        r"method 'greedy' exceeded its memory limit of 256 MiB on task 'toy' seed 0: stopped",
    )


@needs_groups
def test_processes_past_the_limit_stop_the_method(tmp_path):
    stops(
        tmp_path,
        "processes=48",
        "import threading\nts = [threading.Thread(target=time.sleep, args=(30,)) for _ in range(200)]\n"
        "[t.start() for t in ts]",
        r"method 'greedy' exceeded its limit on processes and threads of 48 on task 'toy' seed 0",
    )


@pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")
def test_a_file_past_the_size_limit_stops_the_method(tmp_path):
    stops(
        tmp_path,
        "file=8M",
        "open('/tmp/big', 'wb').write(b'x' * (16 << 20))",
        r"method 'greedy' exceeded its file size limit of 8 MiB on task 'toy' seed 0",
    )


@pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")
def test_a_full_tmp_stops_the_method(tmp_path):
    stops(
        tmp_path,
        "tmp=16M",
        "for i in range(8):\n    open(f'/tmp/part{i}', 'wb').write(b'x' * (4 << 20))",
        r"method 'greedy' exceeded its /tmp size limit of 16 MiB on task 'toy' seed 0",
    )


@pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")
def test_the_results_record_the_quotas(tmp_path):
    pipe, _ = limited(tmp_path, "memory=6G")
    pipe.isolation.policy(method_file(tmp_path, HONEST, "honest"))
    record = pipe.ledger.sandbox["quotas"]
    assert record["memory"] == 6 * GIB and record["processes"] == Quotas().processes
    assert record["memory_and_processes_enforced_by"] == quotas.enforcement(pipe.isolation.quotas)
