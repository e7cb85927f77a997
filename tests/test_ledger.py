"""The run ledger: a unit run elsewhere hands back its share of the bookkeeping as plain data, and the driver's
merge adds it (times summed, cache counts added, notes once, the sandbox of each method unit)."""

from __future__ import annotations

import json
import pickle

from w2sbench.cache import ArtifactStore
from w2sbench.engine.ledger import RunLedger


def test_a_workers_share_merges_into_the_drivers_ledger(tmp_path):
    driver = RunLedger(ArtifactStore(root=tmp_path / "a"))
    driver.timings["weak"] = 1.5
    driver.store.hits["weak"] = 2
    driver.note("weak labels on hf")

    worker = RunLedger(ArtifactStore(root=tmp_path / "b"))
    worker.timings["weak"] = 10.0  # before this unit: not part of its share
    worker.store.misses["method"] = 1
    before = worker.snapshot()
    worker.timings["weak"] += 0.25
    worker.timings["method"] += 3.0
    worker.store.misses["method"] += 2
    worker.store.hits["weak"] += 1
    worker.store.corrupt["weak"] += 1
    worker.backend_used["features:strong"] = "vllm"
    worker.note("weak labels on hf")  # the driver has it already
    worker.note("vllm fell back to hf for the weak model")
    worker.sandbox_used({"mechanism": "bwrap 0.8", "network": "loopback"}, "vanilla", "/code/vanilla")
    share = worker.share_since(before)
    share = pickle.loads(pickle.dumps(json.loads(json.dumps(share))))  # plain data: it crosses processes

    assert share["timings"] == {"weak": 0.25, "method": 3.0}
    assert share["misses"] == {"method": 2} and share["hits"] == {"weak": 1} and share["corrupt"] == {"weak": 1}

    driver.merge(share, "method/rt/vanilla/seed0", {"host": "n1", "sealed": True})
    driver.merge({**share, "sandbox": None, "notes": []})  # a second, non-method unit with the same times
    assert driver.timings == {"weak": 1.5 + 0.25 + 0.25, "method": 6.0}
    assert driver.store.hits == {"weak": 2 + 1 + 1}
    assert driver.store.misses == {"method": 4} and driver.store.corrupt == {"weak": 2}
    assert driver.notes == ["weak labels on hf", "vllm fell back to hf for the weak model"]
    assert driver.backend_used == {"features:strong": "vllm"}
    assert driver.unit_sandboxes == {"method/rt/vanilla/seed0": {"host": "n1", "sealed": True}}
    code = {"vanilla": "/code/vanilla"}
    assert driver.sandbox == {"mechanism": "bwrap 0.8", "network": "loopback", "method_code": code}


def test_the_first_sandbox_description_stands_and_every_methods_code_is_named(tmp_path):
    ledger = RunLedger(ArtifactStore(root=tmp_path))
    ledger.sandbox_used({"mechanism": "bwrap 0.8"}, "vanilla", "/code/a")
    ledger.sandbox_used({"mechanism": "other"}, "logconf", "/code/b")
    assert ledger.sandbox == {"mechanism": "bwrap 0.8", "method_code": {"vanilla": "/code/a", "logconf": "/code/b"}}
    ledger.merge(
        {
            "timings": {},
            "hits": {},
            "misses": {},
            "corrupt": {},
            "backend_used": {},
            "notes": [],
            "sandbox": {"mechanism": "bwrap 0.8", "method_code": {"mine": "/code/c"}},
        },
        "method/t/mine/seed1",
        None,  # the worker affirmed no sandbox: the results say so
    )
    assert ledger.sandbox["method_code"] == {"vanilla": "/code/a", "logconf": "/code/b", "mine": "/code/c"}
    assert ledger.unit_sandboxes == {"method/t/mine/seed1": None}
