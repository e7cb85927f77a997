"""The results JSON's aggregates over tasks, paired comparisons and development vs held-out scores, built by
the harness's own build_results from simulated predictions (tests/support/leaderboard.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import make_results  # noqa: E402

from w2sbench.reports.table import comparison_table, summary_table  # noqa: E402
from w2sbench.schema_io import validate  # noqa: E402
from w2sbench.scoring import decode_correct  # noqa: E402

DEV_AND_HELDOUT = ("rotten_tomatoes", "vader_tweets")  # tags default-dev and default-heldout


def test_a_methods_paired_interval_does_not_depend_on_the_other_methods():
    """The same two methods in runs with different method lists get the same comparison, to the digit (the
    resamples depend on the task only, never on which methods were scored before)."""
    alone = make_results({"vanilla": 0.78, "a": 0.80})
    crowded = make_results({"vanilla": 0.78, "b": 0.70, "c": 0.83, "a": 0.80})
    for task in alone["tasks"]:
        assert alone["comparison"]["tasks"][task]["a"] == crowded["comparison"]["tasks"][task]["a"]
        assert alone["tasks"][task]["methods"]["a"]["pgr"] == crowded["tasks"][task]["methods"]["a"]["pgr"]
    assert alone["comparison"]["mean"]["a"] == crowded["comparison"]["mean"]["a"]
    assert alone["summary"]["a"] == crowded["summary"]["a"]
    m = alone["comparison"]["mean"]["a"]
    assert m["d_pooled_pgr"] == pytest.approx(
        alone["summary"]["a"]["pooled_pgr"] - alone["summary"]["vanilla"]["pooled_pgr"]
    )
    lo, hi = m["d_pooled_pgr_ci"]
    assert lo <= m["d_pooled_pgr"] <= hi
    assert "POOLED" in comparison_table(alone["comparison"])


def test_results_record_correctness_that_matches_the_accuracies():
    doc = make_results({"m": 0.8})
    validate(doc, "results", "r.json")
    for entry in doc["tasks"].values():
        n = entry["n"]["test"]
        for summary in (entry["weak"], entry["ceiling"], entry["methods"]["m"]["w2s"]):
            correct = decode_correct(summary["correct"], n)
            assert correct.shape == (summary["seeds"], n)
            assert correct.mean(axis=1) == pytest.approx(summary["accuracy_per_seed"], abs=1e-12)
    bits = sum(len(s) for e in doc["tasks"].values() for s in e["methods"]["m"]["w2s"]["correct"])
    assert bits < 3 * sum(e["n"]["test"] for e in doc["tasks"].values()) / 4  # ~4/3 characters per 8 examples


def test_pooled_pgr_in_the_summary():
    doc = make_results({"m": 0.8})
    s, tasks = doc["summary"]["m"], doc["tasks"].values()
    gap = sum(t["ceiling"]["accuracy"] - t["weak"]["accuracy"] for t in tasks)
    recovered = sum(t["methods"]["m"]["w2s"]["accuracy"] - t["weak"]["accuracy"] for t in tasks)
    assert s["pooled_gap"] == pytest.approx(gap) and s["pooled_pgr"] == pytest.approx(recovered / gap)
    weights = [t["ceiling"]["accuracy"] - t["weak"]["accuracy"] for t in tasks]
    per_task = [t["methods"]["m"]["pgr"]["pgr"] for t in tasks]
    assert s["pooled_pgr"] == pytest.approx(np.average(per_task, weights=weights))  # the gap-weighted mean
    assert s["mean_pgr"] == pytest.approx(np.mean(per_task))
    assert s["pooled_pgr_ci"][0] < s["pooled_pgr"] < s["pooled_pgr_ci"][1]
    assert doc["bootstrap"]["n_boot"] == 300 and doc["bootstrap"]["seed"] == 0


def test_development_and_heldout_are_reported_apart():
    doc = make_results({"vanilla": 0.78, "m": 0.80}, tasks=DEV_AND_HELDOUT)
    validate(doc, "results", "r.json")
    assert doc["tasks"]["rotten_tomatoes"]["split"] == "development"
    assert doc["tasks"]["vader_tweets"]["split"] == "heldout"
    tr = doc["transfer"]
    assert tr["development"] == ["rotten_tomatoes"] and tr["heldout"] == ["vader_tweets"]
    for name in ("vanilla", "m"):
        row = tr["methods"][name]
        dev_pgr = doc["tasks"]["rotten_tomatoes"]["methods"][name]["pgr"]
        held_pgr = doc["tasks"]["vader_tweets"]["methods"][name]["pgr"]
        # one task per side: its pooled and mean PGR are that task's PGR, with that task's interval
        assert row["development"]["pooled_pgr"] == pytest.approx(dev_pgr["pgr"])
        assert row["development"]["mean_pgr_ci"] == pytest.approx(dev_pgr["pgr_ci"])
        assert row["heldout"]["pooled_pgr"] == pytest.approx(held_pgr["pgr"])
        diff = row["difference"]
        assert diff["pooled_pgr"] == pytest.approx(held_pgr["pgr"] - dev_pgr["pgr"])
        assert diff["pooled_pgr_ci"][0] <= diff["pooled_pgr"] <= diff["pooled_pgr_ci"][1]
        assert diff["pooled_pgr_ci"][1] - diff["pooled_pgr_ci"][0] > held_pgr["pgr_ci"][1] - held_pgr["pgr_ci"][0]
    table = summary_table(doc)
    assert "vader_tweets*" in table and "held-out tasks marked *: vader_tweets" in table
    assert "development (rotten_tomatoes) vs held-out (vader_tweets):" in table
    line = next(row for row in table.splitlines() if row.startswith("m POOLED"))
    assert f"{tr['methods']['m']['difference']['pooled_pgr']:+.2f}" in line


def test_no_transfer_without_heldout_tasks():
    doc = make_results({"m": 0.8}, tasks=("rotten_tomatoes", "vader_nyt"))  # both development tasks
    assert "transfer" not in doc and {t["split"] for t in doc["tasks"].values()} == {"development"}
    assert "held-out" not in summary_table(doc)


def test_auroc_figures_in_the_results():
    doc = make_results({"m": 0.8})
    validate(doc, "results", "r.json")
    tasks = list(doc["tasks"].values())
    for entry in tasks:
        p, w2s = entry["methods"]["m"]["pgr_auroc"], entry["methods"]["m"]["w2s"]
        # the three AUROCs are the results' own (mean of per-seed AUROCs), each inside its interval
        assert (p["weak_auroc"], p["ceiling_auroc"], p["w2s_auroc"]) == (
            entry["weak"]["auroc"],
            entry["ceiling"]["auroc"],
            w2s["auroc"],
        )
        for summary in (entry["weak"], entry["ceiling"], w2s):
            lo, hi = summary["auroc_ci"]
            assert lo <= summary["auroc"] <= hi
        assert w2s["auroc_ci"] == p["w2s_ci"]
        gap = p["ceiling_auroc"] - p["weak_auroc"]
        assert p["gap"] == pytest.approx(gap) and p["pgr"] == pytest.approx((p["w2s_auroc"] - p["weak_auroc"]) / gap)
    pooled = doc["summary"]["m"]["auroc"]
    gap = sum(t["methods"]["m"]["pgr_auroc"]["gap"] for t in tasks)
    recovered = sum(t["methods"]["m"]["w2s"]["auroc"] - t["weak"]["auroc"] for t in tasks)
    assert pooled["pooled_gap"] == pytest.approx(gap) and pooled["pooled_pgr"] == pytest.approx(recovered / gap)
    assert pooled["tasks"] == len(tasks) and pooled["pooled_pgr_ci"][0] <= pooled["pooled_pgr"]
    assert "AUROC PGR" in summary_table(doc)


def test_a_version_3_results_document_still_validates_and_version_4_needs_auroc():
    from w2sbench.errors import ConfigError

    doc = make_results({"m": 0.8})
    task = next(iter(doc["tasks"]))
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 3
    old["summary"]["m"].pop("auroc")
    for entry in old["tasks"].values():
        entry["methods"]["m"].pop("pgr_auroc")
        for summary in (entry["weak"], entry["ceiling"], entry["methods"]["m"]["w2s"]):
            summary.pop("auroc_ci")
    validate(old, "results", "old.json")
    assert "AUROC PGR" in summary_table(old)  # the column is there, blank
    doc["tasks"][task]["methods"]["m"].pop("pgr_auroc")
    with pytest.raises(ConfigError, match=rf"new.json: field 'tasks.{task}.methods.m.pgr_auroc': required"):
        validate(doc, "results", "new.json")
