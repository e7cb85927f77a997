"""`w2sbench plot`: the figures' files, and the values they show read back from the figure objects and
the JSON beside each figure, on a real results JSON (tests/support/toy.py's task, through the sandbox) whose
task is copied into three with numbers set here."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")

from w2sbench.isolation import sandbox  # noqa: E402
from w2sbench.reports.plot import heldout_tasks, plot_results  # noqa: E402
from w2sbench.schema_io import validate  # noqa: E402

pytestmark = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")


@pytest.fixture(scope="module")
def run_doc(tmp_path_factory) -> dict:
    """A real results JSON: vanilla and logconf through the pipeline on tests/support/toy.py's task."""
    from support.toy import toy_arguments

    import w2sbench

    with pytest.MonkeyPatch.context() as mp:
        return w2sbench.evaluate(["vanilla", "logconf"], **toy_arguments(tmp_path_factory.mktemp("toy"), mp)).to_dict()


@pytest.fixture
def doc(run_doc) -> dict:
    """The run's results with three tasks: the toy task, and two copies with other numbers."""
    doc = copy.deepcopy(run_doc)
    toy = doc["tasks"].pop("toy")
    for k, (name, shift) in enumerate((("alpha", 0.0), ("beta", 0.1), ("gamma", -0.2))):
        task = copy.deepcopy(toy)
        for m, row in task["methods"].items():
            p = row["pgr"]
            p.update(defined=True, undefined_reason=None, pgr=0.3 + shift + (0.05 if m == "logconf" else 0))
            p["pgr_ci"] = [p["pgr"] - 0.2, p["pgr"] + 0.1 + 0.01 * k]
            row["w2s"]["accuracy"] = 0.7 + shift / 10
        task["weak"]["accuracy"], task["ceiling"]["accuracy"] = 0.6 + k / 100, 0.9 - k / 100
        doc["tasks"][name] = task
    for m, s in doc["summary"].items():
        values = [t["methods"][m]["pgr"]["pgr"] for t in doc["tasks"].values()]
        s.update(mean_pgr=sum(values) / 3, mean_pgr_ci=[sum(values) / 3 - 0.1, sum(values) / 3 + 0.1])
        s.update(pooled_pgr=sum(values) / 3 + 0.01, pooled_pgr_ci=[sum(values) / 3 - 0.05, sum(values) / 3 + 0.06])
    validate(doc, "results", "three tasks")
    return doc


def bars(fig, gid: str) -> list:
    """The bars of one series (drawn with gid=...), in order."""
    return [p for p in fig.axes[0].patches if p.get_gid() == gid]


def bar_container(fig, gid: str):
    return next(c for c in fig.axes[0].containers if getattr(c, "patches", None) and c.patches[0].get_gid() == gid)


def test_pgr_and_accuracy_figures_show_the_results(doc, tmp_path):
    made = plot_results(doc, tmp_path)
    names = {p.name for p in made.files}
    assert names == {f"{n}.{ext}" for n in ("pgr", "accuracy") for ext in ("png", "svg", "json")}
    for name in ("pgr", "accuracy"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ET.parse(tmp_path / f"{name}.svg").getroot().tag.endswith("svg")
        assert json.loads((tmp_path / f"{name}.json").read_text()) == made.data[name]
    assert made.notes == [
        "transfer: skipped, these results carry no held-out split (no task tagged 'heldout', no 'transfer')"
    ]
    tasks = list(doc["tasks"])
    for m in ("vanilla", "logconf"):
        # PGR: one bar per task, the pooled PGR (the headline) and the mean, heights and intervals as in the results
        summary = doc["summary"][m]
        expected = [doc["tasks"][t]["methods"][m]["pgr"]["pgr"] for t in tasks]
        expected += [summary["pooled_pgr"], summary["mean_pgr"]]
        heights = [b.get_height() for b in bars(made.figures["pgr"], f"pgr:{m}")]
        assert heights == pytest.approx(expected)
        cis = [doc["tasks"][t]["methods"][m]["pgr"]["pgr_ci"] for t in tasks]
        cis += [summary["pooled_pgr_ci"], summary["mean_pgr_ci"]]
        segments = bar_container(made.figures["pgr"], f"pgr:{m}").errorbar.lines[2][0].get_segments()
        assert [v for s in segments for v in (s[0][1], s[1][1])] == pytest.approx([v for ci in cis for v in ci])
        assert made.data["pgr"]["pgr"][m]["mean"] == doc["summary"][m]["mean_pgr"]
        # accuracy: w2s per task in percent
        acc = [100 * doc["tasks"][t]["methods"][m]["w2s"]["accuracy"] for t in tasks]
        assert [b.get_height() for b in bars(made.figures["accuracy"], f"accuracy:{m}")] == pytest.approx(acc)
    for role in ("weak", "ceiling"):
        acc = [100 * doc["tasks"][t][role]["accuracy"] for t in tasks]
        assert [b.get_height() for b in bars(made.figures["accuracy"], f"accuracy:{role}")] == pytest.approx(acc)
    labels = [t.get_text() for t in made.figures["pgr"].axes[0].get_xticklabels()]
    assert labels == [*tasks, "pooled", "mean"]


def test_undefined_pgr_is_a_cross_not_a_bar(doc):
    task = list(doc["tasks"])[1]
    p = doc["tasks"][task]["methods"]["logconf"]["pgr"]
    p.update(pgr=None, pgr_ci=None, defined=False, undefined_reason="the ceiling-weak gap's interval includes 0")
    doc["summary"]["logconf"].update(mean_pgr=None, mean_pgr_ci=None)
    made = plot_results(doc)
    assert made.files == []  # no folder given: figures only
    heights = [b.get_height() for b in bars(made.figures["pgr"], "pgr:logconf")]
    assert len(heights) == len(doc["tasks"])  # the tasks but one, and the pooled PGR; the (undefined) mean has none
    ax = made.figures["pgr"].axes[0]
    cross = next(c for c in ax.collections if c.get_gid() == "undefined:logconf")
    (x, y), index = cross.get_offsets()[0], list(doc["tasks"]).index(task)
    assert y == 0 and index - 0.5 < x < index + 0.5
    assert "PGR undefined" in ax.get_title()
    assert made.data["pgr"]["pgr"]["logconf"]["tasks"][index]["defined"] is False


def test_transfer_figure_only_with_a_heldout_split(doc, tmp_path):
    tasks = list(doc["tasks"])
    doc["tasks"][tasks[-1]]["tags"].append("heldout")
    assert heldout_tasks(doc) == [tasks[-1]]
    made = plot_results(doc, tmp_path)
    assert made.notes == [] and (tmp_path / "transfer.png").exists() and (tmp_path / "transfer.svg").exists()
    data = json.loads((tmp_path / "transfer.json").read_text())
    assert data["heldout"] == [tasks[-1]] and data["development"] == tasks[:-1]
    for m in ("vanilla", "logconf"):
        dev = [doc["tasks"][t]["methods"][m]["pgr"]["pgr"] for t in tasks[:-1]]
        held = doc["tasks"][tasks[-1]]["methods"][m]["pgr"]["pgr"]
        assert data["pgr"][m]["development"]["mean"] == pytest.approx(sum(dev) / len(dev))
        assert data["pgr"][m]["heldout"]["mean"] == pytest.approx(held)
    fig = made.figures["transfer"]
    assert [b.get_height() for b in bars(fig, "heldout")] == pytest.approx(
        [data["pgr"][m]["heldout"]["mean"] for m in ("vanilla", "logconf")]
    )
    # the suite's tags (default-heldout) count too
    doc["tasks"][tasks[-1]]["tags"].remove("heldout")
    assert heldout_tasks(doc) == []
    doc["tasks"][tasks[0]]["tags"].append("default-heldout")
    assert heldout_tasks(doc) == [tasks[0]]


def test_transfer_figure_shows_the_results_transfer_aggregates(doc):
    """Where the results carry `transfer` (scoring.transfer), its held-out task list and its per-method
    aggregates, with their intervals, are what the figure shows."""
    tasks = list(doc["tasks"])
    aggregate = {"tasks": 1, "pooled_pgr": 0.0, "pooled_pgr_ci": None, "pooled_gap": 0.1, "pooled_gap_ci": [0, 0.2]}
    aggregate |= {"pooled_undefined_reason": None, "mean_w2s_accuracy": 0.7}
    doc["transfer"] = {
        "development": tasks[1:],
        "heldout": tasks[:1],
        "methods": {
            m: {
                "development": {**aggregate, "tasks": 2, "mean_pgr": 0.4 + k, "mean_pgr_ci": [0.3 + k, 0.6 + k]},
                "heldout": {**aggregate, "mean_pgr": 0.2 + k, "mean_pgr_ci": [-0.1 + k, 0.25 + k]},
                "difference": {"mean_pgr": -0.2, "mean_pgr_ci": None, "pooled_pgr": None, "pooled_pgr_ci": None},
            }
            for k, m in enumerate(("vanilla", "logconf"))
        },
    }
    assert heldout_tasks(doc) == tasks[:1]  # no task is tagged: the record names them
    made = plot_results(doc)
    fig = made.figures["transfer"]
    assert [b.get_height() for b in bars(fig, "development")] == pytest.approx([0.4, 1.4])
    assert [b.get_height() for b in bars(fig, "heldout")] == pytest.approx([0.2, 1.2])
    segments = bar_container(fig, "heldout").errorbar.lines[2][0].get_segments()
    assert [v for seg in segments for v in (seg[0][1], seg[1][1])] == pytest.approx([-0.1, 0.25, 0.9, 1.25])
    assert made.data["transfer"]["pgr"]["logconf"]["development"]["ci"] == [1.3, 1.6]


def test_plot_command(doc, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "w2sbench.cli", "plot", str(path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "run.plots"
    assert f"{folder / 'pgr.png'}" in proc.stdout and "transfer: skipped" in proc.stdout
    assert len(list(folder.iterdir())) == 6
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "seeds": {"baseline": 0, "method": 1}}))
    proc = subprocess.run([sys.executable, "-m", "w2sbench.cli", "plot", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"w2sbench: error: {bad}: field 'seeds.baseline'")


def test_plot_without_matplotlib_says_what_to_install(doc, monkeypatch):
    from w2sbench.errors import MissingPackageError

    for name in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'w2sbench\[plot\]'"):
        plot_results(doc)


def test_correlations_by_hand():
    from w2sbench.reports.plot import pearson, spearman

    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x mean 2, y mean 3: sxy = 2, sxx = 2, syy = 8 -> 2 / 4 = 0.5
    assert pearson([1, 2, 3], [2, 5, 2 + 0]) is not None and pearson([1, 2, 3], [3, 1, 5]) == pytest.approx(0.5)
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)  # ranks 1 3 2 4: 1 - 6*2/(4*15)
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def test_generalization_figure_needs_three_methods_with_both_aggregates(doc):
    from w2sbench.reports.plot import generalization_data

    agg = {"pooled_pgr": 0.4, "pooled_pgr_ci": [0.3, 0.5]}
    moved = {"development": ["alpha"], "heldout": ["beta"], "methods": {}}
    for i, m in enumerate(("a", "b", "c")):
        moved["methods"][m] = {"development": {**agg, "pooled_pgr": 0.1 * i}, "heldout": {**agg, "pooled_pgr": 0.2 * i}}
    data = generalization_data({**doc, "transfer": moved})
    assert data["pearson"]["r"] == pytest.approx(1.0) and data["spearman"]["r"] == pytest.approx(1.0)
    assert data["methods"]["b"] == {
        "development": 0.1,
        "development_ci": [0.3, 0.5],
        "heldout": 0.2,
        "heldout_ci": [0.3, 0.5],
    }
    del moved["methods"]["c"]
    assert generalization_data({**doc, "transfer": moved}) is None
