"""Fixtures shared by the tests."""

from __future__ import annotations

import signal
import socket
import sys
from typing import Any

import pytest


@pytest.fixture
def isolated_data(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Offline hubs, a throwaway cache, no extra task folders: task and data loading see only the test's files.
    Opt-in (not autouse): the model tests keep the shared cache of converted models."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("W2SBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("W2SBENCH_TASKS_PATH", raising=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connect fails, so a loader that would reach the hub fails loudly instead."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def two_torch_threads():
    """At most 2 torch threads for a module's training tests (the CI machine's cores), restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(min(2, old))
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def signal_dispositions_restored():
    """A test (or a library it calls) that changes how this process handles SIGINT, SIGTERM or SIGHUP must not
    hand that to later tests' subprocesses, which inherit an ignored signal (test_processes)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        if signal.getsignal(signum) is not handler and handler is not None:
            signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def no_ray_in_the_test_process():
    """Ray runs in tests only as a loopback cluster of its own processes (tests/ray_cluster.py). A Ray
    initialised in this process (a bare ray API call starts one, bound to every interface) outlives its test
    and writes its raylet's warnings into later tests' output: the test that started it fails here."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
        pytest.fail("this test initialised Ray in the test process (a local cluster on every interface)")
