"""The leaderboard site's figures, computed by hand on small boards: each method's place under each change
(one task left out, a recipe run, another model pair), the verdict on whether the order holds, the recipe
runs read for the places, and the site a clone opens without rebuilding (leaderboard/site/, `leaderboard
render` and `leaderboard open`). The browser checks are in test_leaderboard_browser.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import make_results, write_board  # noqa: E402

from w2sbench.cli import main  # noqa: E402
from w2sbench.leaderboard.site import (  # noqa: E402
    change_places,
    rank_chart,
    recipe_scores,
    render_site,
    verdict,
)
from w2sbench.paths import repo_root  # noqa: E402
from w2sbench.schema_io import read_json, write_json  # noqa: E402

# Two tasks (gaps 0.10 and 0.20) and three entries; a and b share rank 1 (places 1-2), c is rank 3.
#   a: +0.10, +0.04 -> pooled 0.14 / 0.30 = 0.467; without t1 0.04 / 0.2 = 0.20; without t2 0.10 / 0.1 = 1.00
#   b: +0.02, +0.11 -> 0.433;                      without t1 0.55;              without t2 0.20
#   c: +0.01, +0.06 -> 0.233;                      without t1 0.30;              without t2 0.10
# Without t1 the order is b, c, a (places 1, 2, 3); without t2 a, b, c.
TASKS = [
    {"name": "t1", "split": "development", "n": {"test": 100}, "weak_acc": 0.70, "ceiling_acc": 0.80},
    {"name": "t2", "split": "heldout", "n": {"test": 100}, "weak_acc": 0.60, "ceiling_acc": 0.80},
]


def _entry(name: str, rank: int, w2s: tuple[float, float], pooled: float, **robustness) -> dict:
    return {
        "method": name,
        "rank": rank,
        "pooled_pgr": pooled,
        "pooled_pgr_ci": [pooled - 0.05, pooled + 0.05],
        "tasks": {"t1": {"w2s_acc": w2s[0]}, "t2": {"w2s_acc": w2s[1]}},
        "robustness": robustness,
    }


def _setting(**robustness_a) -> dict:
    return {
        "name": "toy",
        "tasks": TASKS,
        "entries": [
            _entry("a", 1, (0.80, 0.64), 0.14 / 0.3, **robustness_a),
            _entry("b", 1, (0.72, 0.71), 0.13 / 0.3),
            _entry("c", 3, (0.71, 0.66), 0.07 / 0.3),
        ],
        "robustness": {"perturbations": {}},
    }


def test_places_under_each_change_by_hand():
    other = {
        "toy": {},
        "pair": {
            "entries": [
                {"method": "b", "rank": 1, "pooled_pgr": 0.6},
                {"method": "a", "rank": 2, "pooled_pgr": 0.5},
                {"method": "c", "rank": None, "pooled_pgr": 0.9},  # unranked there: holds no place
            ]
        },
    }
    places = change_places(_setting(), other, {"recipe_lr_x0.5": {"a": 0.1, "c": 0.5}})
    assert places["leave_one_task_out"] == {"a": (1, 3), "b": (1, 2), "c": (2, 3)}
    # the recipe run holds a and c only: their board places 1 and 3, dealt out in the run's order (c, a)
    assert places["recipe_lr_x0.5"] == {"c": (1, 1), "a": (3, 3)}
    assert places["model_pair_pair"] == {"b": (1, 1), "a": (2, 2)}


def test_rank_chart_colours_by_staying_in_the_group():
    recipes = {"recipe_lr_x0.5": {"a": 0.1, "c": 0.5}}
    measured = rank_chart(_setting(leave_one_task_out=0.5, **{"recipe_lr_x0.5": 0.02}), {}, recipes)
    row = measured.split('<tr data-method="a">', 1)[1].split("</tr>", 1)[0]
    cells = row.split("<td")[3:]  # after the name and the place
    assert 'class="s2"' in cells[0] and "1&ndash;3<small>0.50</small>" in cells[0]  # one task out: range, P 0.50
    assert 'class="s0"' in cells[1] and ">3<small>0.02</small>" in cells[1]  # lr x1/2: place 3, outside 1-2
    assert "place 3 (its group holds 1-2); P(stays in its rank group) = 0.020" in cells[1]
    # without the build's probability, a place is coloured by whether it lies in the group's places
    plain = rank_chart(_setting(), {}, recipes)
    row = plain.split('<tr data-method="c">', 1)[1].split("</tr>", 1)[0]
    assert row.split("<td")[4].startswith(' class="s0"')  # c: place 1 under lr x1/2, its group holds 3
    assert ">P(stays" not in plain and "<small>0." not in row
    assert rank_chart({"name": "toy", "tasks": TASKS, "entries": _setting()["entries"][:1]}) == ""


def test_verdict_says_where_the_order_holds_and_who_moves():
    setting = _setting()
    setting["robustness"]["perturbations"] = {
        "leave_one_task_out": {"tau_b": 0.9},
        "seeds_resampled": {"tau_b": 0.6},
        "recipe_lr_x0.5": {"tau_b": -0.2},
    }
    setting["entries"][0]["robustness"] = {"recipe_lr_x0.5": 0.021}
    setting["entries"][1]["robustness"] = {"recipe_lr_x0.5": 0.9}
    text = verdict(setting)
    assert "The order holds (Kendall &tau;<sub>b</sub> &ge; 0.8) when one task is left out (+0.90)" in text
    assert "it mostly holds when the seeds are resampled (+0.60)" in text
    assert "it does not hold when the learning rate is halved (-0.20)" in text
    assert "There, 1 of the 2 entries measured keeps its rank group with probability &le; 0.03" in text
    assert verdict({"name": "x", "entries": []}) == ""


def test_recipe_runs_are_read_for_the_entries_own_code(tmp_path):
    board = write_board(tmp_path, {"a": 0.84, "b": 0.78, "c": 0.72})
    from w2sbench.leaderboard import baselines as bl
    from w2sbench.leaderboard.build import build_leaderboard
    from w2sbench.leaderboard.validate import validate_files

    valid, _ = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    run = make_results({"a": 0.72, "b": 0.78, "c": 0.84}, perturbed=("lr", 0.5))
    run["methods"]["b"]["code"]["sha256"] = "0" * 64  # b's run is of other code: no place from it
    (board / "recipes" / "tiny").mkdir(parents=True)
    write_json(run, board / "recipes" / "tiny" / "lr=0.5.json")
    (board / "recipes" / "tiny" / "junk.json").write_text('{"not": "a results file"}')
    scores = recipe_scores(board / "recipes", doc)
    assert set(scores) == {"tiny"} and set(scores["tiny"]) == {"recipe_lr_x0.5"}
    assert scores["tiny"]["recipe_lr_x0.5"] == {m: run["summary"][m]["pooled_pgr"] for m in ("a", "c")}
    assert recipe_scores(tmp_path / "none", doc) == {}
    html = render_site(doc, tmp_path / "site", scores)[0].read_text()
    assert 'data-change="recipe_lr_x0.5"' in html


def test_render_and_open_need_no_rebuild(tmp_path, capsys):
    board = repo_root() / "leaderboard"
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "open"])
        raise SystemExit(0)
    out = capsys.readouterr().out.strip()
    assert not exc.value.code and out.startswith("file://") and out.endswith("/index.html")
    index = Path(out[len("file://") :])
    assert index.is_file() and (index.parent / "submit.html").is_file()
    assert json.loads((index.parent / "leaderboard.json").read_text()) == read_json(board / "leaderboard.json")
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "render", "--input", str(tmp_path / "missing.json"), "--site", str(tmp_path / "s")])
    assert exc.value.code == 2 and "missing.json: no such file" in capsys.readouterr().err


def test_the_committed_site_is_the_committed_leaderboard(tmp_path):
    """leaderboard/site/ is committed so that a clone opens it as it is; it must be leaderboard.json's own
    rendering (after a rebuild: `w2sbench leaderboard render`, which `leaderboard build` also does)."""
    board = repo_root() / "leaderboard"
    committed = board / "site"
    if not (committed / "index.html").is_file():
        pytest.skip("no committed site")
    doc = read_json(board / "leaderboard.json")
    fresh = tmp_path / "site"
    render_site(doc, fresh, recipe_scores(board / "recipes", doc))
    names = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(committed)) for p in committed.rglob("*") if p.is_file())
    stale = [n for n in names if (fresh / n).read_bytes() != (committed / n).read_bytes()]
    assert stale == [], f"leaderboard/site/ is stale ({stale[:3]}): run `w2sbench leaderboard render`"


def test_the_renderer_reads_leaderboard_json_defensively(tmp_path):
    """Another build may lack the optional figures: the pages still render, the ranking first, without the
    robustness chart where there is nothing to chart."""
    import copy

    doc = copy.deepcopy(read_json(repo_root() / "leaderboard" / "leaderboard.json"))
    for setting in doc["settings"].values():
        setting.pop("robustness", None)
        for e in setting["entries"]:
            for key in (
                "robustness",
                "transfer",
                "paired",
                "duplicate_of",
                "flags",
                "better_than",
                "tied_with",
                "reproduced",
                "provenance",
                "teacher_free",
                "non_default_recipe",
            ):
                e.pop(key, None)
            e["card"] = {"name": e["method"]}
    html = render_site(doc, tmp_path / "site")[0].read_text()
    assert 'id="forest-tiny"' in html and "Is PGR robust?" in html  # one task out needs no build figures
    assert 'data-change="leave_one_task_out"' in html and 'data-change="recipe_' not in html


def test_places_and_verdict_when_a_family_is_left_out():
    """TASKS plus t3 (weak 0.60, ceiling 0.70); families f12 = {t1, t2} and f3 = {t3}. On t3: a +0.00, b +0.10,
    c +0.05. Without f12 only t3 counts: b 1.0, c 0.5, a 0.0 (places b 1, c 2, a 3); without f3 the order of
    t1 and t2 (the comment above): a 0.467, b 0.433, c 0.233 (a 1, b 2, c 3)."""
    setting = _setting()
    t3 = {"name": "t3", "split": "heldout", "n": {"test": 100}, "weak_acc": 0.6, "ceiling_acc": 0.7}
    setting["tasks"] = [*TASKS, t3]
    for e, acc in zip(setting["entries"], (0.60, 0.70, 0.65)):
        e["tasks"]["t3"] = {"w2s_acc": acc}
    families = {"f12": ["t1", "t2"], "f3": ["t3"]}
    setting["robustness"]["perturbations"] = {
        "leave_one_family_out": {"tau_b": -1 / 3, "tau_b_interval": [-1 / 3, 1.0], "draws": 2, "families": families}
    }
    places = change_places(setting, {}, {})
    assert places["leave_one_family_out"] == {"a": (1, 3), "b": (1, 2), "c": (2, 3)}
    setting["entries"][2]["robustness"] = {"leave_one_family_out": 0.5}
    html = rank_chart(setting)
    assert ">1 family</th>" in html and "one family of tasks left out (each in turn; the range of places)" in html
    row = html.split('<tr data-method="c">', 1)[1].split("</tr>", 1)[0]
    assert "2&ndash;3<small>0.50</small>" in row  # c: places 2-3, its group holds 3 only
    setting["entries"][0]["robustness"] = {"leave_one_family_out": 0.04}
    text = verdict(setting)
    assert "It does not hold when one family of tasks is left out (-0.33)." in text
    assert "There, 1 of the 2 entries measured keeps its rank group with probability &le; 0.04" in text
    # a build without families (suite v1 before them, or tasks no suite names): no family column
    del setting["robustness"]["perturbations"]["leave_one_family_out"]["families"]
    assert "leave_one_family_out" not in change_places(setting, {}, {})
