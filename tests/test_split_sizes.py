"""benchmarks/split_sizes.py: an uncut test split gives the results' own pooled interval, and a cut one
is the same subset for the weak model, the ceiling and every method (a smaller split, not a reshuffle)."""

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import make_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("split_sizes", REPO / "benchmarks" / "split_sizes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uncut_splits_give_the_results_own_half_widths():
    split_sizes = _script()
    doc = make_results({"vanilla": 0.80, "logconf": 0.83, "majority": 0.5})
    widths = split_sizes.half_widths(doc, cap=10**6, draws=1)
    assert set(widths) == {"vanilla", "logconf"}  # only the W2S reference methods
    for method, width in widths.items():
        lo, hi = doc["summary"][method]["pooled_pgr_ci"]
        assert width == pytest.approx((hi - lo) / 2, abs=1e-12)


def test_a_cut_keeps_one_subset_for_every_model_and_widens_the_interval(monkeypatch):
    split_sizes = _script()
    doc = make_results({"vanilla": 0.80, "logconf": 0.83})
    seen: list[tuple[int, ...]] = []
    real = split_sizes.pgr_from_correct

    def spy(weak, ceiling, w2s, **kwargs):
        seen.append((weak.shape[1], ceiling.shape[1], w2s.shape[1]))
        return real(weak, ceiling, w2s, **kwargs)

    monkeypatch.setattr(split_sizes, "pgr_from_correct", spy)
    cap = min(t["n"]["test"] for t in doc["tasks"].values()) // 2
    narrow = split_sizes.half_widths(doc, cap=cap, draws=1)
    assert seen and all(shape == (cap, cap, cap) for shape in seen)
    monkeypatch.setattr(split_sizes, "pgr_from_correct", real)
    full = split_sizes.half_widths(doc, cap=10**6, draws=1)
    assert all(narrow[m] > full[m] for m in full)  # half the examples: a wider interval
