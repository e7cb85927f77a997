"""The fixed trainer (schedule, determinism, soft targets, weights) and the artifact cache."""

import json

import numpy as np
import pytest
import torch

from w2sbench.cache import ArtifactStore, hash_of
from w2sbench.training import Recipe, lr_factor, soft_cross_entropy, train_head


def test_lr_schedule_by_hand():
    assert lr_factor(0, 100, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(50, 100, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(75, 100, "linear", 0.0) == pytest.approx(0.25)
    # 10% warm-up of 100 steps: step 4 -> 5/10; after warm-up the decay starts from 1
    assert lr_factor(4, 100, "linear", 0.1) == pytest.approx(0.5)
    assert lr_factor(10, 100, "linear", 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 100, "linear", 0.1) == pytest.approx(0.5)
    assert lr_factor(99, 100, "constant", 0.0) == 1.0


def test_soft_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, 0.0], [0.0, np.log(3.0)]])
    targets = torch.tensor([1.0, 0.25])
    loss = soft_cross_entropy(logits, targets, 0.0)
    # row 0: p1 = 0.5 -> -log 0.5; row 1: p1 = 0.75 -> -(0.75 log 0.25 + 0.25 log 0.75)
    assert loss[0].item() == pytest.approx(np.log(2))
    assert loss[1].item() == pytest.approx(-(0.75 * np.log(0.25) + 0.25 * np.log(0.75)), rel=1e-6)


def _data(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.float32)
    return x, y


CFG = Recipe(epochs=30, batch_size=32, lr=0.01)


def test_head_learns_and_is_deterministic():
    x, y = _data()
    a = train_head(x, y, CFG, seed=3)
    b = train_head(x, y, CFG, seed=3)
    c = train_head(x, y, CFG, seed=4)
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, c.weight)  # the seed sets the minibatch order
    xt, yt = _data(seed=1)
    assert np.mean((a.predict_proba(xt) >= 0.5) == yt) > 0.9


def test_zero_weights_ignore_examples():
    x, y = _data()
    flipped = 1 - y
    w = np.ones_like(y)
    w[200:] = 0.0  # the second half carries flipped labels but no weight
    targets = np.concatenate([y[:200], flipped[200:]])
    head = train_head(x, targets, CFG, seed=0, weights=w)
    assert np.mean((head.predict_proba(x) >= 0.5) == y) > 0.9


def test_head_rejects_bad_targets():
    x, y = _data()
    with pytest.raises(ValueError, match="probabilities"):
        train_head(x, y * 2, CFG, seed=0)
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        train_head(x, y[:10], CFG, seed=0)


def test_cache_roundtrip_hits_and_atomicity(tmp_path):
    store = ArtifactStore(root=tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3)}, {"note": "made"}

    key = {"stage": "t", "b": 2, "a": 1}
    first = store.get_or_compute("s", key, compute)
    second = store.get_or_compute("s", {"a": 1, "b": 2, "stage": "t"}, compute)  # same key, other order
    assert len(calls) == 1 and store.hits["s"] == 1 and store.misses["s"] == 1
    assert np.array_equal(second["x"], np.arange(3)) and second["meta"] == {"note": "made"}
    assert np.array_equal(first["x"], second["x"])
    meta = json.loads((store.folder("s", key) / "meta.json").read_text())
    assert meta["key"] == {"a": 1, "b": 2, "stage": "t"}

    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.get_or_compute("s", {"other": 1}, boom)
    assert store.load("s", {"other": 1}) is None
    assert [p.name for p in (tmp_path / "s").iterdir()] == [store.folder("s", key).name]  # no half-written folder


def test_hash_of_is_canonical():
    assert hash_of({"a": 1, "b": [1, 2]}) == hash_of({"b": [1, 2], "a": 1})
    assert hash_of({"a": 1}) != hash_of({"a": 2})


def test_a_tampered_or_damaged_artifact_is_recomputed_and_said(tmp_path, caplog):
    """An artifact whose arrays were swapped after it was written (a method planting numbers, a disk
    error) fails its content hash and is recomputed; so is one that cannot be read at all."""
    store = ArtifactStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"test": np.array([0.2, 0.7], dtype=np.float32)}, {"n": 2}

    key = {"stage": "method", "seed": 0}
    store.get_or_compute("method", key, compute)
    folder = store.folder("method", key)
    np.save(folder / "test.npy", np.array([0.0, 1.0], dtype=np.float32))  # planted: same shape, other numbers
    with caplog.at_level("WARNING", logger="w2sbench"):
        again = store.get_or_compute("method", key, compute)
    assert len(calls) == 2 and np.allclose(again["test"], [0.2, 0.7]) and store.corrupt["method"] == 1
    assert "content hash does not match" in caplog.text and "recomputing" in caplog.text
    assert np.allclose(store.load("method", key)["test"], [0.2, 0.7])  # the rewritten artifact is whole

    (folder / "test.npy").write_bytes(b"\x93NUMPY")  # truncated
    assert store.get_or_compute("method", key, compute)["meta"] == {"n": 2}
    assert len(calls) == 3 and store.corrupt["method"] == 2 and store.load("method", key) is not None

    meta = json.loads((folder / "meta.json").read_text())
    meta["meta"]["n"] = 3  # the record edited, arrays untouched
    (folder / "meta.json").write_text(json.dumps(meta))
    assert store.load("method", key) is None and store.corrupt["method"] == 3

    store.get_or_compute("method", key, compute)  # an artifact from before content hashes: not trusted either
    meta = json.loads((folder / "meta.json").read_text())
    del meta["content_sha256"]
    (folder / "meta.json").write_text(json.dumps(meta))
    caplog.clear()
    with caplog.at_level("WARNING", logger="w2sbench"):
        assert store.load("method", key) is None
    assert "no content hash" in caplog.text
