"""Rendering leaderboard.json as a static site: plain HTML/CSS/JS with every number written into the pages
(the JSON embedded, and written beside them for download), so it works from file:// and GitHub Pages with no
server, no fetch and no CDN.

What a reader meets first, per setting: the ranking (a forest plot of pooled PGR with 95% intervals, coloured
by rank group) and beside it each method's place under each change that should not matter (one task left out,
one family of tasks left out, the tasks or the seeds resampled, the strong recipe's learning rate or epochs
halved or doubled, another model pair), which is the benchmark's answer to "is PGR robust?". Below: the table
(per-task columns behind a toggle), weak -> w2s -> ceiling per task, PGR by task, development against
held-out, paired differences.

The renderer's input is leaderboard.json as `w2sbench leaderboard build` writes it; a field a build may
lack is read with a default (FIELDS_READ lists every one). The places under the recipe changes come from
the reference runs themselves (leaderboard/recipes/<setting>/<knob>=<factor>.json: their pooled PGR per
method, `recipe_scores`), which leaderboard.json summarises only as probabilities."""

from __future__ import annotations

import json
import math
import re
import shutil
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

PALETTE = ["#2457a6", "#c0392b", "#27864a", "#8e44ad", "#d98500", "#16a2b8", "#6b4226", "#d6336c", "#495057", "#7a9a01"]
# One colour per rank group, best first; entries without a rank are grey.
GROUP_COLORS = ["#1b5fad", "#13917f", "#c98400", "#c0392b", "#7b4fa0", "#4f6d7a", "#a0522d", "#d6336c"]
UNRANKED_COLOR = "#9aa3ad"
# Every field of leaderboard.json the pages read (entry fields per setting's `entries`).
FIELDS_READ = {
    "document": [
        "generated.created",
        "generated.w2sbench_version",
        "generated.git_commit",
        "generated.baselines",
        "generated.submissions",
        "generated.skipped",
        "tolerance.accuracy",
        "settings",
    ],
    "setting": [
        "name",
        "version",
        "hash",
        "description",
        "weak_model",
        "strong_model",
        "baseline_seeds",
        "tasks[].name",
        "tasks[].split",
        "tasks[].n.test",
        "tasks[].weak_acc",
        "tasks[].ceiling_acc",
        "robustness.perturbations.<change>.tau_b",
        "robustness.perturbations.<change>.tau_b_interval",
        "robustness.perturbations.<change>.methods",
        "robustness.perturbations.leave_one_family_out.families (optional)",
        "entries",
    ],
    "entry": [
        "method",
        "rank",
        "tied_with",
        "better_than",
        "unranked_reason",
        "reproduced",
        "flags",
        "teacher_free",
        "non_default_recipe",
        "duplicate_of",
        "floor (optional)",
        "card",
        "provenance",
        "tasks.<task>.{pgr, pgr_ci, defined, undefined_reason, w2s_acc}",
        "pooled_pgr",
        "pooled_pgr_ci",
        "mean_pgr",
        "mean_pgr_ci",
        "mean_w2s_accuracy",
        "tasks_defined",
        "transfer",
        "paired",
        "robustness.<change>",
    ],
}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _template(name: str) -> str:
    return resources.files("w2sbench.leaderboard").joinpath(f"site/{name}").read_text()


def _num(x: float | None, digits: int = 2, signed: bool = True) -> str:
    if x is None:
        return "&ndash;"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "&ndash;" if x is None else f"{100 * x:.1f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f'<span class="ci">[{ci[0]:+.2f}, {ci[1]:+.2f}]</span>'


def marks(entry: dict) -> str:
    out = ""
    if entry.get("teacher_free"):
        out += '<span class="mark tf" title="teacher-free: does not use the weak labels">TF</span>'
    if entry.get("non_default_recipe"):
        note = escape((entry.get("card") or {}).get("recipe_notes") or "non-default training recipe", quote=True)
        out += f'<span class="mark ndr" title="non-default recipe: {note}">NR</span>'
    if entry.get("duplicate_of"):
        said = escape(
            f"a copy of {entry['duplicate_of']}: its predictions agree on at least 99% of every task's test "
            "examples, so its wins count once, as the original's",
            quote=True,
        )
        out += f'<span class="mark dup" title="{said}">copy of {escape(entry["duplicate_of"])}</span>'
    if entry.get("flags"):
        said = "; ".join(f"{f['task']}: {f['flag']}: {f['saw']}" for f in entry["flags"])
        out += f'<span class="mark flag" title="{escape(said, quote=True)}">flagged</span>'
    if entry.get("reproduced"):
        rep = entry["reproduced"]
        out += (
            f'<span class="mark rep" title="reproduced by the harness on {escape(rep["date"][:10], quote=True)} '
            f'at commit {escape((rep["commit"] or "unknown")[:10], quote=True)}">R</span>'
        )
    else:
        out += '<span class="mark unrep" title="not reproduced by the harness: not ranked">not reproduced</span>'
    return out


def _pgr_cell(task: dict, extra: str = "") -> str:
    cls = f"pgr {extra}".strip()
    if not task.get("defined", task.get("pgr") is not None):
        reason = escape(task.get("undefined_reason") or "undefined", quote=True)
        return (
            f'<td class="{cls}" data-sort="" title="{reason}"><span class="undef">undef.</span>'
            f'<span class="ci">w2s {_pct(task.get("w2s_acc"))}%</span></td>'
        )
    return f'<td class="{cls}" data-sort="{task["pgr"]!r}">{_num(task["pgr"])}{_ci(task.get("pgr_ci"))}</td>'


def _rank(entry: dict, shared: bool) -> str:
    """The rank cell (1 + the entries shown to be better); `=` where several entries share it, its tooltip
    naming the entries this one is not significantly different from."""
    if entry["rank"] is None:
        why = escape(entry.get("unranked_reason") or "unranked", quote=True)
        return f'<td data-sort="" class="unranked" title="{why}">&ndash;</td>'
    said = "paired difference not significant: " + (", ".join(entry.get("tied_with") or []) or "none")
    if entry.get("better_than"):
        said += "; significantly better than: " + ", ".join(entry["better_than"])
    tie = f'<span class="tie" title="{escape(said, quote=True)}">=</span>' if shared else ""
    return f'<td class="rank" data-sort="{entry["rank"]}" title="{escape(said, quote=True)}">{tie}{entry["rank"]}</td>'


def _stays_cell(entry: dict) -> str:
    least = (entry.get("robustness") or {}).get("least")
    if least is None:
        return '<td data-sort="">&ndash;</td>'
    return f'<td class="stays" data-sort="{least!r}">{least:.2f}</td>'


def _change(kind: str) -> str:
    """A perturbation's key as the site says it: `model_pair_<setting>` is the order on another setting."""
    if kind.startswith("model_pair_"):
        return f"another model pair (setting {kind[len('model_pair_') :]})"
    if kind.startswith("recipe_"):  # recipe_lr_x0.5
        knob, factor = kind[len("recipe_") :].rsplit("_", 1)
        return f"strong recipe: {knob.replace('_', ' ')} {factor}"
    if kind == "leave_one_family_out":
        return "one family of tasks left out (each in turn)"
    return kind.replace("_", " ")


def _robustness_table(entry: dict) -> str:
    """The method page's table: its probability of staying in its rank group under each perturbation."""
    report = entry.get("robustness")
    if not report:
        return ""
    rows = "".join(
        f'<tr><td class="method">{escape(_change(kind))}</td><td>{value:.2f}</td></tr>'
        for kind, value in report.items()
        if kind != "least" and value is not None
    )
    return (
        "<h3>Does its rank survive a change that should not matter?</h3>"
        '<table class="tasks"><thead><tr><th class="method">Change</th><th>P(stays in its rank group)</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _score_cell(cls: str, value: float | None, ci: list[float] | None, why: str, strong: bool = False) -> str:
    if value is None:
        return (
            f'<td class="{cls}" data-sort="" title="{escape(why, quote=True)}"><span class="undef">undef.</span></td>'
        )
    shown = f"<strong>{_num(value)}</strong>" if strong else _num(value)
    return f'<td class="{cls}" data-sort="{value!r}">{shown}{_ci(ci)}</td>'


def _transfer_cells(entry: dict) -> list[str]:
    tr = entry.get("transfer")
    if not tr:
        return ['<td data-sort=""></td>'] * 3
    why = "undefined on this side"
    return [
        _score_cell("dev", tr["development"]["pooled_pgr"], tr["development"]["pooled_pgr_ci"], why),
        _score_cell("heldout", tr["heldout"]["pooled_pgr"], tr["heldout"]["pooled_pgr_ci"], why),
        _score_cell("transfer", tr["difference"]["pooled_pgr"], tr["difference"]["pooled_pgr_ci"], why),
    ]


def _task_head(t: dict) -> str:
    held = t["split"] == "heldout"
    cls, role = ("task-col heldout-col", "held-out") if held else ("task-col", "development")
    mark = '<span class="split">held-out</span>' if held else ""
    return (
        f'<th class="sortable {cls}" data-task="{escape(t["name"], quote=True)}"'
        f' title="{role} task, {t["n"]["test"]} test examples">{escape(t["name"])}{mark}</th>'
    )


def _change_cell(entry: dict, key: str) -> str:
    """The index's cell for one change beyond the three every entry has: another pair, or "recipe"."""
    figures = entry.get("robustness") or {}
    if key == "recipe":  # the least over the recipe changes the entry was rerun under
        values = [v for k, v in figures.items() if k.startswith("recipe_") and v is not None]
        value = min(values) if values else None
    else:
        value = figures.get(key)
    if value is None:
        return '<td data-sort="">&ndash;</td>'
    return f'<td class="stays" data-sort="{value!r}">{value:.2f}</td>'


# ---- rank groups and floors ----------------------------------------------------------------------------------
def group_colors(setting: dict) -> dict[str, str]:
    """method -> the colour of its rank group (GROUP_COLORS in rank order; unranked entries grey)."""
    ranks = sorted({e["rank"] for e in setting.get("entries", []) if e.get("rank") is not None})
    by_rank = {r: GROUP_COLORS[i % len(GROUP_COLORS)] for i, r in enumerate(ranks)}
    return {e["method"]: by_rank.get(e.get("rank"), UNRANKED_COLOR) for e in setting.get("entries", [])}


def is_floor(entry: dict) -> bool:
    """A floor: an entry that does not learn from the weak labels (teacher-free) or that ends below the weak
    model it learns from (its pooled PGR interval lies below 0), as the AAR study's "no teacher / no
    learning" floors strong_zeroshot and majority do. A build's own `floor` field, where present, decides."""
    if entry.get("floor") is not None:
        return bool(entry["floor"])
    if entry.get("teacher_free"):
        return True
    ci = entry.get("pooled_pgr_ci")
    return bool(ci) and ci[1] < 0


def _span(values: list[float], clip: tuple[float, float], include: tuple[float, ...] = (0.0,)) -> tuple[float, float]:
    lo, hi = min([*values, *include]), max([*values, *include])
    lo, hi = max(lo, clip[0]), min(hi, clip[1])
    pad = 0.06 * (hi - lo) if hi > lo else 0.1
    return lo - pad, hi + pad


def _at(value: float, lo: float, hi: float) -> float:
    """A value's position on [lo, hi] in percent of the width, clipped to the axis."""
    return 100 * (min(max(value, lo), hi) - lo) / (hi - lo)


def _anchor(at: float) -> int:
    """How much of a label to shift left of its point (percent of its width): none near the left edge, all of
    it near the right one, so a label never sticks out of its figure."""
    return 0 if at < 12 else 100 if at > 88 else 50


def _short_marks(entry: dict) -> str:
    out = ""
    if entry.get("teacher_free"):
        out += '<span class="mark tf" title="teacher-free: does not use the weak labels">TF</span>'
    if entry.get("non_default_recipe"):
        out += '<span class="mark ndr" title="non-default training recipe">NR</span>'
    if entry.get("duplicate_of"):
        out += f'<span class="mark dup" title="a copy of {escape(entry["duplicate_of"], quote=True)}">copy</span>'
    if entry.get("flags"):
        out += '<span class="mark flag" title="flagged: see the method page">flagged</span>'
    return out


# ---- the first screen: ranking and rank under each change ---------------------------------------------------
def ranking_plot(setting: dict) -> str:
    """The ranking as a forest plot: per entry, in board order, its rank, name, pooled PGR and 95% interval,
    coloured by rank group. The axis spans the learning entries' intervals and 0 (the weak model); an entry
    beyond it (a floor far below 0) is an arrow at the edge, its value printed beside it. The submissions only:
    the reference methods' reruns under a recipe change (entries with a `recipe`, 32 on a seed setting) are
    placed in the table below, and would push the ranking off a phone's first screen."""
    everything = setting.get("entries", [])
    entries = [e for e in everything if not e.get("recipe")]
    recipe_runs = len(everything) - len(entries)
    colors = group_colors(setting)
    values = [
        v
        for e in entries
        if e.get("pooled_pgr") is not None and not is_floor(e)
        for v in (e.get("pooled_pgr_ci") or [e["pooled_pgr"]])
    ] or [v for e in entries if e.get("pooled_pgr") is not None for v in (e.get("pooled_pgr_ci") or [e["pooled_pgr"]])]
    lo, hi = _span(values, (-1.0, 2.0), (0.0, 1.0) if max(values, default=0) > 0.8 else (0.0,))
    ranks = [e.get("rank") for e in entries if e.get("rank") is not None]
    guides = "".join(
        f'<i class="f-guide" style="left:{_at(v, lo, hi):.2f}%" title="{escape(what, quote=True)}"></i>'
        for v, what in ((0.0, "0: the weak model"), (1.0, "1: the ceiling"))
        if lo < v < hi
    )
    ticks = "".join(
        f'<span class="f-tick" style="left:{_at(v, lo, hi):.2f}%;transform:translateX(-{_anchor(_at(v, lo, hi))}%)">'
        f"{label}</span>"
        for v, label in ((0.0, "0 weak"), (1.0, "1 ceiling"))
        if lo < v < hi
    )
    rows = [
        '<div class="f-row f-head"><span>Rank</span><span>Method</span>'
        f'<span class="f-bar f-axis">{ticks}</span>'
        '<span class="f-val"><span class="long">Pooled </span>PGR</span></div>'
    ]
    for e in entries:
        color = colors.get(e["method"], UNRANKED_COLOR)
        rank = e.get("rank")
        shared = rank is not None and ranks.count(rank) > 1
        rank_text = "&ndash;" if rank is None else f"{'=' if shared else ''}{rank}"
        value, ci = e.get("pooled_pgr"), e.get("pooled_pgr_ci")
        bar = guides
        if value is not None:
            if ci:
                a, b = _at(ci[0], lo, hi), _at(ci[1], lo, hi)
                bar += f'<i class="f-ci" style="left:{a:.2f}%;width:{max(b - a, 0.4):.2f}%;background:{color}"></i>'
            if lo <= value <= hi:
                bar += f'<i class="f-pt" style="left:{_at(value, lo, hi):.2f}%;background:{color}"></i>'
            else:
                side = "left" if value < lo else "right"
                bar += (
                    f'<i class="f-clip {side}" style="color:{color}">{"&#9664;" if side == "left" else "&#9654;"}</i>'
                )
        why = "" if rank is not None else f' title="{escape(e.get("unranked_reason") or "unranked", quote=True)}"'
        rows.append(
            f'<div class="f-row" data-method="{escape(e["method"], quote=True)}">'
            f'<span class="f-rank" style="color:{color}"{why}>{rank_text}</span>'
            f'<span class="f-name"><a href="methods/{slug(e["method"])}.html">{escape(e["method"])}</a>'
            f"{_short_marks(e)}</span>"
            f'<span class="f-bar">{bar}</span>'
            f'<span class="f-val">{_num(value)}<small>{_ci_text(ci)}</small></span></div>'
        )
    if recipe_runs:
        rows.append(
            f'<p class="f-more">+ {recipe_runs} run{"s" if recipe_runs != 1 else ""} of the reference methods under '
            "a recipe change, placed in the table below</p>"
        )
    return f'<div class="forest" id="forest-{slug(setting["name"])}">{"".join(rows)}</div>'


def _ci_text(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


CHANGE_ORDER = ("leave_one_task_out", "leave_one_family_out", "tasks_resampled", "seeds_resampled")


def _change_key(kind: str) -> tuple:
    if kind in CHANGE_ORDER:
        return (0, CHANGE_ORDER.index(kind), 0.0)
    if kind.startswith("recipe_"):
        knob, _, factor = kind[len("recipe_") :].rpartition("_x")
        try:
            value = float(factor)
        except ValueError:
            value = 0.0
        return (1, 0 if knob == "lr" else 1 if knob == "epochs" else 2, value, knob)
    return (2, 0, 0.0, kind)


def _factor(kind: str) -> str:
    factor = kind.rpartition("_x")[2]
    return {"0.5": "&times;&frac12;", "2": "&times;2"}.get(factor, f"&times;{escape(factor)}")


def _change_heads(kind: str) -> tuple[str, str, str]:
    """(group heading, column heading, what it is in words) of one change."""
    if kind == "leave_one_task_out":
        return "drop", "1 task", "one task left out (each in turn; the range of places)"
    if kind == "leave_one_family_out":
        return "drop", "1 family", "one family of tasks left out (each in turn; the range of places)"
    if kind == "tasks_resampled":
        return "resampled", "tasks", "the tasks resampled with replacement"
    if kind == "seeds_resampled":
        return "resampled", "seeds", "the weak, ceiling and method seeds resampled"
    if kind.startswith("recipe_"):
        knob = kind[len("recipe_") :].rpartition("_x")[0]
        short = {"lr": "lr", "epochs": "ep."}.get(knob, escape(knob))
        return "strong recipe", f"{short} {_factor(kind)}", f"the strong model's {knob} {_factor(kind)} (rerun)"
    if kind.startswith("model_pair_"):
        other = kind[len("model_pair_") :]
        return "other pair", escape(other), f"the order on setting {other}: another model pair"
    return "other", escape(kind.replace("_", " ")), escape(kind)


def ranked_submissions(setting: dict) -> list[dict]:
    """The ranked submissions, in board order: the entries whose places the robustness figures are about. The
    reference methods' reruns under a recipe change (entries with a `recipe`) are placed on the board too, but are
    not submissions: each is a column of the chart (its method's place in that run), never a row, and takes no
    place among the rows."""
    return [e for e in setting.get("entries", []) if e.get("rank") is not None and not e.get("recipe")]


def _slots(entries: list[dict]) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """The ranked entries' places on the board (1 = top) and the places each one's rank group holds."""
    place = {e["method"]: i + 1 for i, e in enumerate(entries)}
    spans: dict[str, tuple[int, int]] = {}
    for e in entries:
        same = [place[o["method"]] for o in entries if o.get("rank") == e.get("rank")]
        spans[e["method"]] = (min(same), max(same))
    return place, spans


def _reorder(place: dict[str, int], scores: dict[str, float]) -> dict[str, int]:
    """The places `scores` give the entries it holds: their board places, dealt out in the order of the new
    scores (so an entry that another order does not hold keeps no place, and the others read as board places)."""
    held = [m for m in place if scores.get(m) is not None and math.isfinite(scores[m])]
    slots = sorted(place[m] for m in held)
    order = sorted(held, key=lambda m: (-scores[m], place[m]))
    return dict(zip(order, slots))


def _pooled_without(setting: dict, entry: dict, left_out: str | list[str]) -> float | None:
    """The entry's pooled PGR over the setting's tasks but `left_out` (a task, or a family's tasks)."""
    out = {left_out} if isinstance(left_out, str) else set(left_out)
    num = den = 0.0
    for t in setting.get("tasks", []):
        if t["name"] in out:
            continue
        r = (entry.get("tasks") or {}).get(t["name"]) or {}
        if r.get("w2s_acc") is None:
            return None
        num += r["w2s_acc"] - t["weak_acc"]
        den += t["ceiling_acc"] - t["weak_acc"]
    return num / den if den > 0 else None


def change_places(setting: dict, others: dict[str, dict], recipes: dict[str, dict[str, float]]) -> dict:
    """change -> method -> its place(s) on the board under that change: (best, worst) over the tasks left out
    one at a time, and over the families left out one at a time (the families the build named in
    `robustness.perturbations.leave_one_family_out.families`); one place under a recipe change (the
    reference run's pooled PGR, `recipes`: label -> method -> pooled PGR) or on another model pair (that
    setting's pooled PGR, `others`: its leaderboard section). The resampled changes have no single order: none."""
    ranked = ranked_submissions(setting)
    place, _ = _slots(ranked)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    tasks = [t["name"] for t in setting.get("tasks", [])]
    if len(tasks) > 1 and ranked:
        runs = [_reorder(place, {e["method"]: _pooled_without(setting, e, t) for e in ranked}) for t in tasks]
        out["leave_one_task_out"] = {
            m: (min(r[m] for r in runs), max(r[m] for r in runs)) for m in place if all(m in r for r in runs)
        }
    perturbations = (setting.get("robustness") or {}).get("perturbations") or {}
    families = (perturbations.get("leave_one_family_out") or {}).get("families") or {}
    if len(families) > 1 and ranked:
        runs = [
            _reorder(place, {e["method"]: _pooled_without(setting, e, members) for e in ranked})
            for members in families.values()
        ]
        out["leave_one_family_out"] = {
            m: (min(r[m] for r in runs), max(r[m] for r in runs)) for m in place if all(m in r for r in runs)
        }
    for label, scores in recipes.items():
        got = _reorder(place, scores)
        if len(got) >= 2:
            out[label] = {m: (p, p) for m, p in got.items()}
    for name, other in others.items():
        if name == setting.get("name"):
            continue
        scores = {e["method"]: e.get("pooled_pgr") for e in ranked_submissions(other)}
        got = _reorder(place, scores)
        if len(got) >= 2:
            out[f"model_pair_{name}"] = {m: (p, p) for m, p in got.items()}
    return out


def _stay_class(p: float | None) -> str:
    if p is None:
        return "na"
    return "s4" if p >= 0.95 else "s3" if p >= 0.75 else "s2" if p >= 0.25 else "s1" if p >= 0.05 else "s0"


def rank_chart(setting: dict, others: dict[str, dict] | None = None, recipes: dict | None = None) -> str:
    """Is PGR robust? Per ranked entry (rows, board order) and per change that should not matter (columns): its
    place under the change (a range over the tasks, or the families, left out in turn), and, as the cell's
    colour, the probability that it stays in its rank group there (leaderboard.json's robustness figures); the
    resampled changes have no single order, so their cells show that probability. The last row is the whole
    order's Kendall tau-b against the board's."""
    ranked = ranked_submissions(setting)
    if len(ranked) < 2:
        return ""
    perturbations = (setting.get("robustness") or {}).get("perturbations") or {}
    places = change_places(setting, others or {}, recipes or {})
    kinds = sorted(set(perturbations) | set(places), key=_change_key)
    place, spans = _slots(ranked)
    colors = group_colors(setting)
    heads = [_change_heads(k) for k in kinds]
    groups: list[list] = []
    for group, _, _ in heads:
        if groups and groups[-1][0] == group:
            groups[-1][1] += 1
        else:
            groups.append([group, 1])
    top = (
        '<tr><th rowspan="2" class="rc-name">Method</th><th rowspan="2" class="rc-place" '
        'title="its place on the board, and the places its rank group holds">Place</th>'
        + "".join(f'<th colspan="{n}" class="rc-group">{escape(g)}</th>' for g, n in groups)
        + "</tr>"
    )
    second = (
        "<tr>"
        + "".join(
            f'<th title="{escape(what, quote=True)}" data-change="{escape(k, quote=True)}">{col}</th>'
            for (_, col, what), k in zip(heads, kinds)
        )
        + "</tr>"
    )
    rows = []
    for e in ranked:
        m = e["method"]
        lo, hi = spans[m]
        group = f"{lo}" if lo == hi else f"{lo}&ndash;{hi}"
        cells = [
            f'<td class="rc-name"><i class="dot" style="background:{colors[m]}"></i>'
            f'<span class="rc-num">{place[m]}</span>'
            f'<a href="methods/{slug(m)}.html" title="{escape(m, quote=True)}">{escape(m)}</a></td>',
            f'<td class="rc-place">{place[m]}<small>{group}</small></td>',
        ]
        figures = e.get("robustness") or {}
        for k in kinds:
            p = figures.get(k)
            got = places.get(k, {}).get(m)
            if got is None and p is None:
                cells.append('<td class="na" title="not measured for this entry">&ndash;</td>')
                continue
            if got is not None:
                text = f"{got[0]}" if got[0] == got[1] else f"{got[0]}&ndash;{got[1]}"
                stays = lo <= got[0] and got[1] <= hi
                cls = _stay_class(p) if p is not None else ("s4" if stays else "s0")
                small = f"<small>{p:.2f}</small>" if p is not None else ""
                said = f"{m}: place {text.replace('&ndash;', '-')} (its group holds {group.replace('&ndash;', '-')})"
            else:
                text, cls, small = f"{p:.2f}", _stay_class(p), "<small>P</small>"
                said = f"{m}"
            if p is not None:
                said += f"; P(stays in its rank group) = {p:.3f}"
            cells.append(f'<td class="{cls}" title="{escape(said, quote=True)}">{text}{small}</td>')
        rows.append(f'<tr data-method="{escape(m, quote=True)}">' + "".join(cells) + "</tr>")
    taus = []
    for k in kinds:
        c = perturbations.get(k) or {}
        tau = c.get("tau_b")
        if tau is None or not math.isfinite(tau):
            taus.append("<td>&ndash;</td>")
            continue
        interval = c.get("tau_b_interval")
        said = f"Kendall tau-b of the whole order: {tau:+.2f}" + (
            f" (95%: {interval[0]:+.2f} to {interval[1]:+.2f})" if interval else ""
        )
        cls = "s4" if tau >= 0.8 else "s2" if tau >= 0.5 else "s0"
        taus.append(f'<td class="{cls}" title="{escape(said, quote=True)}">{tau:+.2f}</td>')
    foot = (
        '<tr class="rc-tau"><th class="rc-name" title="Kendall tau-b between the board\'s order and the order '
        'under the change: 1 the same order, 0 unrelated">order &tau;<sub>b</sub></th><td class="rc-place"></td>'
        + "".join(taus)
        + "</tr>"
    )
    legend = (
        '<p class="rc-legend"><span class="s4">&ge;0.95</span><span class="s3">&ge;0.75</span>'
        '<span class="s2">&ge;0.25</span><span class="s1">&ge;0.05</span><span class="s0">&lt;0.05</span> '
        "P(stays in its rank group). A number is the place under the change (board places; a range for the "
        "tasks or the families left out in turn); under &ldquo;resampled&rdquo; it is the probability itself.</p>"
    )
    return (
        f'<div class="table-wrap"><table class="rankchart" id="rankchart-{slug(setting["name"])}">'
        f"<thead>{top}{second}</thead><tbody>{''.join(rows)}</tbody><tfoot>{foot}</tfoot></table></div>{legend}"
    )


def _change_words(kind: str) -> str:
    if kind == "leave_one_task_out":
        return "one task is left out"
    if kind == "leave_one_family_out":
        return "one family of tasks is left out"
    if kind == "tasks_resampled":
        return "the tasks are resampled"
    if kind == "seeds_resampled":
        return "the seeds are resampled"
    if kind.startswith("recipe_"):
        knob, _, factor = kind[len("recipe_") :].rpartition("_x")
        what = {"lr": "the learning rate", "epochs": "the epochs"}.get(knob, knob)
        how = {"0.5": "halved", "2": "doubled"}.get(factor, f"scaled by {factor}")
        return f"{what} is {how}" if knob == "lr" else f"{what} are {how}"
    if kind.startswith("model_pair_"):
        return f"another model pair ranks them ({kind[len('model_pair_') :]})"
    return kind.replace("_", " ")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def verdict(setting: dict) -> str:
    """One paragraph, from the data: under which changes the order holds (tau-b >= 0.8), mostly holds (0.5 to
    0.8) or does not (below 0.5), and how many entries keep their rank group under the ones where it does not."""
    perturbations = (setting.get("robustness") or {}).get("perturbations") or {}
    sorted_kinds = sorted(perturbations, key=_change_key)
    said: dict[str, list[str]] = {"holds": [], "mostly": [], "breaks": []}
    breaks = []
    for kind in sorted_kinds:
        tau = (perturbations[kind] or {}).get("tau_b")
        if tau is None or not math.isfinite(tau):
            continue
        part = "holds" if tau >= 0.8 else "mostly" if tau >= 0.5 else "breaks"
        said[part].append(f"{_change_words(kind)} ({tau:+.2f})")
        if part == "breaks":
            breaks.append(kind)
    if not any(said.values()):
        return ""
    parts = []
    if said["holds"]:
        parts.append(f"The order holds (Kendall &tau;<sub>b</sub> &ge; 0.8) when {_join(said['holds'])}")
    if said["mostly"]:
        parts.append(f"it mostly holds when {_join(said['mostly'])}")
    if said["breaks"]:
        parts.append(f"it does not hold when {_join(said['breaks'])}")
    text = "; ".join(parts) + "."
    if breaks:
        entries = [e for e in setting.get("entries", []) if any(k in (e.get("robustness") or {}) for k in breaks)]
        least = {e["method"]: min(e["robustness"][k] for k in breaks if k in e["robustness"]) for e in entries}
        fragile = [v for v in least.values() if v <= 0.1]
        if entries and fragile:
            bound = math.ceil(max(fragile) * 100) / 100
            text += (
                f" There, {len(fragile)} of the {len(entries)} entries measured "
                f"{'keeps its' if len(fragile) == 1 else 'keep their'} rank group with "
                f"probability &le; {bound:.2f}: their rank belongs to this recipe as much as to the method."
            )
    return f'<p class="verdict">{text[0].upper()}{text[1:]}</p>'


# ---- per task: weak -> w2s -> ceiling -----------------------------------------------------------------------------
def gap_strips(setting: dict) -> str:
    """Per task, the weak model, the ceiling and the gap between them, and each entry's w2s accuracy as a dot
    (coloured by rank group, in board order from top to bottom): where in the gap each method lands."""
    entries = setting.get("entries", [])
    if not entries:
        return ""
    colors = group_colors(setting)
    rows = []
    n = len(entries)
    for t in setting.get("tasks", []):
        weak, ceiling = t["weak_acc"], t["ceiling_acc"]
        gap = max(abs(ceiling - weak), 0.02)
        lo, hi = min(weak, ceiling) - 0.7 * gap, max(weak, ceiling) + 0.35 * gap
        a, b = _at(min(weak, ceiling), lo, hi), _at(max(weak, ceiling), lo, hi)
        marks = [
            f'<i class="g-gap" style="left:{a:.2f}%;width:{b - a:.2f}%"></i>',
            f'<i class="g-end" style="left:{_at(weak, lo, hi):.2f}%" title="weak {100 * weak:.1f}%"></i>',
            f'<i class="g-end" style="left:{_at(ceiling, lo, hi):.2f}%" title="ceiling {100 * ceiling:.1f}%"></i>',
            f'<b class="g-lab" style="left:{_at(weak, lo, hi):.2f}%;'
            f'transform:translateX(-{_anchor(_at(weak, lo, hi))}%)">weak {100 * weak:.1f}</b>',
            f'<b class="g-lab" style="left:{_at(ceiling, lo, hi):.2f}%;'
            f'transform:translateX(-{_anchor(_at(ceiling, lo, hi))}%)">ceiling {100 * ceiling:.1f}</b>',
        ]
        for i, e in enumerate(entries):
            r = (e.get("tasks") or {}).get(t["name"]) or {}
            acc = r.get("w2s_acc")
            if acc is None:
                continue
            pgr = f"PGR {r['pgr']:+.2f}" if r.get("pgr") is not None and r.get("defined", True) else "PGR undefined"
            tip = escape(f"{e['method']}: w2s {100 * acc:.1f}% ({pgr})", quote=True)
            top = 8 + 60 * i / max(n - 1, 1)
            cls = "g-dot" if lo <= acc <= hi else "g-dot clipped"
            marks.append(
                f'<i class="{cls}" style="left:{_at(acc, lo, hi):.2f}%;top:{top:.1f}%;'
                f'background:{colors.get(e["method"])}" title="{tip}"></i>'
            )
        split = "held-out" if t.get("split") == "heldout" else "development"
        rows.append(
            f'<div class="g-row"><span class="g-name">{escape(t["name"])}<small>{split}, '
            f"{(t.get('n') or {}).get('test', '?')} test</small></span>"
            f'<span class="g-track">{"".join(marks)}</span></div>'
        )
    return (
        '<div class="strips">' + "".join(rows) + "</div>"
        '<p class="note">Shaded: the gap from the weak model to the ceiling (official baselines). Dots: each '
        "entry's w2s accuracy, in board order from top to bottom, coloured by rank group; a dot on an edge lies "
        "beyond it (hover for the number).</p>"
    )


def table(setting: dict) -> str:
    """The table: every number per entry. The per-task PGR columns and the official weak and ceiling rows are
    behind a toggle (the button before the table), so that the rest fits a 1,352-pixel column."""
    tasks = [t["name"] for t in setting["tasks"]]
    changes = (setting.get("robustness") or {}).get("perturbations") or {}
    pairs = sorted(k for k in changes if k.startswith("model_pair_"))
    recipe = any(k.startswith("recipe_") for k in changes)
    ranks = [e["rank"] for e in setting["entries"] if e.get("rank") is not None]
    split = {t["split"] for t in setting["tasks"]} == {"development", "heldout"}  # show the transfer columns
    head = [
        '<th class="sortable" data-default="asc">Rank</th>',
        '<th class="method sortable" data-default="asc">Method</th>',
        '<th class="sortable" title="sum(w2s - weak) / sum(ceiling - weak) over all tasks: ranked by">Pooled PGR</th>',
        '<th class="sortable" title="mean of the tasks\' PGR">Mean PGR</th>',
    ]
    if split:
        head += [
            '<th class="sortable" title="pooled PGR over the development tasks">Dev.</th>',
            '<th class="sortable" title="pooled PGR over the held-out tasks">Held-out</th>',
            '<th class="sortable" title="held-out minus development pooled PGR">Held-out &minus; dev.</th>',
        ]
    head += [
        '<th class="sortable" title="the smallest probability that the entry stays in its rank group when one task '
        "is left out, one family of tasks is (where the suite names families), the tasks are resampled or the seeds "
        'are (the method page has each)">Stays in group</th>'
    ]
    head += [
        f'<th class="sortable" title="the probability that the entry stays in its rank group in the order of '
        f'setting {escape(k[len("model_pair_") :], quote=True)} (another model pair; entries ranked on both)">'
        f"On {escape(k[len('model_pair_') :])}</th>"
        for k in pairs
    ]
    if recipe:
        head += [
            '<th class="sortable" title="the smallest probability that the entry stays in its rank group when the '
            "strong recipe's learning rate or epochs are halved or doubled (reference runs of the built-in methods "
            'that train; the method page has each)">Recipe</th>'
        ]
    head += ['<th class="sortable task-col" title="mean of the tasks\' w2s accuracy">Mean w2s acc. %</th>']
    head += [_task_head(t) for t in setting["tasks"]]
    rows = []
    for e in setting["entries"]:
        undefined = len(tasks) - e.get("tasks_defined", len(tasks))
        cells = [
            _rank(e, e.get("rank") is not None and ranks.count(e["rank"]) > 1),
            f'<td class="method" data-sort="{escape(e["method"], quote=True)}">'
            f'<a href="methods/{slug(e["method"])}.html">{escape(e["method"])}</a>{marks(e)}</td>',
            _score_cell("pooled", e["pooled_pgr"], e["pooled_pgr_ci"], "the summed gap is not clearly positive", True),
            _score_cell("mean", e["mean_pgr"], e["mean_pgr_ci"], f"PGR undefined on {undefined} task(s)"),
            *(_transfer_cells(e) if split else []),
            _stays_cell(e),
            *(_change_cell(e, k) for k in pairs + (["recipe"] if recipe else [])),
            f'<td class="task-col" data-sort="{e.get("mean_w2s_accuracy")!r}">{_pct(e.get("mean_w2s_accuracy"))}</td>',
        ]
        cells += [_pgr_cell(e["tasks"][t], "task-col") for t in tasks]
        rows.append(f'<tr class="entry" data-method="{escape(e["method"], quote=True)}">' + "".join(cells) + "</tr>")
    for role, label in (("weak_acc", "weak acc. % (official)"), ("ceiling_acc", "ceiling acc. % (official)")):
        cells = ["<td></td>", f'<td class="method">{label}</td>'] + ["<td></td>"] * (
            (6 if split else 3) + len(pairs) + recipe
        )
        cells += ['<td class="task-col"></td>']
        cells += [f'<td class="task-col">{_pct(t[role])}</td>' for t in setting["tasks"]]
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    name = slug(setting["name"])
    return (
        f'<p class="table-tools"><button type="button" class="toggle-tasks" data-table="table-{name}" '
        f'aria-pressed="false">Show per-task PGR and the official weak and ceiling accuracies</button> '
        '<span class="note">Click a column header to sort.</span></p>'
        f'<div class="table-wrap"><table class="leaderboard" id="table-{name}">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def plot(setting: dict, methods: list[str] | None = None, height: int = 300) -> str:
    """Inline SVG: PGR by task, one colour per method, 95% intervals as bars; dashed lines at 0 and 1.
    The axis spans [-1.5, 2] at most; a value beyond it is drawn as a triangle at the edge, its number in
    the tooltip, so one very negative entry does not flatten everyone else's points."""
    tasks = [t["name"] for t in setting["tasks"]]
    entries = [e for e in setting["entries"] if methods is None or e["method"] in methods]
    values = [0.0, 1.0]
    for e in entries:
        for t in tasks:
            r = e["tasks"][t]
            if r["defined"]:
                values += [r["pgr"], *(r["pgr_ci"] or [])]
    lo, hi = max(min(values), -1.5), min(max(values), 2.0)
    pad = 0.06 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    width = max(560, 150 * len(tasks) + 60)
    left, right, top = 48, 12, 14
    per_row = max(1, (width - left) // 130)
    legend_rows = -(-len(entries) // per_row)
    bottom = 34 + 18 * legend_rows
    total_h = height + 18 * legend_rows
    pw, ph = width - left - right, total_h - top - bottom

    def y(v: float) -> float:
        return top + ph * (hi - min(max(v, lo), hi)) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" '
        f'role="img" aria-label="PGR by task, {escape(setting["name"])}" class="pgr-plot">'
    ]
    for v in (0.0, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#9aa3ad" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#5d6670">{v:.0f}</text>'
        )
    for v, label in ((lo, f"{lo:+.1f}"), (hi, f"{hi:+.1f}")):
        parts.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="9" fill="#9aa3ad">{label}</text>'
        )
    parts.append(
        f'<text x="12" y="{top + ph / 2:.1f}" font-size="11" fill="#5d6670" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})" text-anchor="middle">PGR</text>'
    )
    slot = pw / max(len(tasks), 1)
    for i, t in enumerate(tasks):
        cx = left + slot * (i + 0.5)
        parts.append(
            f'<text x="{cx:.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="11" fill="#1d2125">'
            f"{escape(t)}</text>"
        )
        for j, e in enumerate(entries):
            r = e["tasks"][t]
            x = cx + (j - (len(entries) - 1) / 2) * min(12.0, slot / (len(entries) + 1))
            color = PALETTE[j % len(PALETTE)]
            name = f"{escape(e['method'])} on {escape(t)}"
            if not r["defined"]:
                parts.append(
                    f'<text x="{x:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle" font-size="10" fill="{color}">'
                    f"<title>{name}: PGR undefined</title>&#215;</text>"
                )
                continue
            if r["pgr_ci"]:
                parts.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(r["pgr_ci"][0]):.1f}" y2="{y(r["pgr_ci"][1]):.1f}" '
                    f'stroke="{color}" stroke-width="1.5"/>'
                )
            tip = f"<title>{name}: PGR {r['pgr']:+.2f}</title>"
            if lo <= r["pgr"] <= hi:
                parts.append(f'<circle cx="{x:.1f}" cy="{y(r["pgr"]):.1f}" r="3.5" fill="{color}">{tip}</circle>')
            else:  # off the axis: a triangle pointing the way, at the edge
                yy, d = (y(lo), 1) if r["pgr"] < lo else (y(hi), -1)
                parts.append(
                    f'<path class="clipped" d="M{x - 4:.1f},{yy - 6 * d:.1f} L{x + 4:.1f},{yy - 6 * d:.1f} '
                    f'L{x:.1f},{yy:.1f} Z" fill="{color}">{tip}</path>'
                )
    for j, e in enumerate(entries):
        color = PALETTE[j % len(PALETTE)]
        lx, ly = left + 130 * (j % per_row), top + ph + 34 + 18 * (j // per_row)
        parts.append(
            f'<circle cx="{lx + 5}" cy="{ly - 4}" r="4" fill="{color}"/>'
            f'<text x="{lx + 13}" y="{ly}" font-size="11" fill="#1d2125">{escape(e["method"])}</text>'
        )
    parts.append("</svg>")
    return '<div class="plot">' + "".join(parts) + "</div>"


def transfer_plot(setting: dict) -> str:
    """Does development predict held-out? Inline SVG: each ranked entry's held-out against development pooled
    PGR with both 95% intervals, the line held-out = development dashed, and the Pearson and Spearman
    correlations with bootstrap intervals over entries (reports.plot.correlations, as `w2sbench plot` draws
    them), computed among the entries that learn from the weak labels. The floors (is_floor: teacher-free, or
    below the weak model) are drawn apart, grey and hollow, and left out of r: two points far below the rest
    would carry any correlation on their own. The axes span the learning entries (within [-0.5, 1.5]); a point
    beyond is a triangle at the edge. Empty without held-out tasks or with fewer than three such entries."""
    from ...reports.plot import correlations

    def point(e: dict) -> dict:
        return {
            "development": e["transfer"]["development"]["pooled_pgr"],
            "development_ci": e["transfer"]["development"].get("pooled_pgr_ci"),
            "heldout": e["transfer"]["heldout"]["pooled_pgr"],
            "heldout_ci": e["transfer"]["heldout"].get("pooled_pgr_ci"),
        }

    usable = [
        e
        for e in setting.get("entries", [])
        if e.get("rank") is not None
        and e.get("transfer")
        and e["transfer"]["development"].get("pooled_pgr") is not None
        and e["transfer"]["heldout"].get("pooled_pgr") is not None
    ]
    points = {e["method"]: point(e) for e in usable if not is_floor(e)}
    floors = {e["method"]: point(e) for e in usable if is_floor(e)}
    data = correlations(points)
    if data is None:
        return ""
    values = [0.0] + [v for p in points.values() for k in ("development", "heldout") for v in [p[k]]]
    lo, hi = max(min(values), -0.5), min(max(values), 1.5)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    size, left, top = 300, 48, 12
    colors = group_colors(setting)

    def at(v: float) -> float:
        return size * (min(max(v, lo), hi) - lo) / (hi - lo)

    def xy(dev: float, held: float) -> tuple[float, float]:
        return left + at(dev), top + size - at(held)

    legend_h = 16 * (len(points) + len(floors) + (1 if floors else 0))
    height = max(top + size + 40, top + legend_h + 20)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + size + 190} {height}" '
        f'width="{left + size + 190}" height="{height}" role="img" class="transfer-plot" '
        f'aria-label="held-out against development pooled PGR, {escape(setting["name"])}">',
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#d0d5da"/>',
        f'<line x1="{xy(lo, lo)[0]:.1f}" y1="{xy(lo, lo)[1]:.1f}" x2="{xy(hi, hi)[0]:.1f}" y2="{xy(hi, hi)[1]:.1f}" '
        'stroke="#9aa3ad" stroke-dasharray="4 3"/>',
        f'<text x="{left + size / 2}" y="{top + size + 30}" text-anchor="middle" font-size="11" fill="#5d6670">'
        "development pooled PGR</text>",
        f'<text x="12" y="{top + size / 2}" font-size="11" fill="#5d6670" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + size / 2})">held-out pooled PGR</text>',
    ]
    step = 0.1 if hi - lo <= 1.0 else 0.5
    v = math.ceil(lo / step) * step
    while v <= hi:
        x0, y0 = xy(v, v)
        parts.append(f'<text x="{x0:.1f}" y="{top + size + 14}" text-anchor="middle" font-size="10">{v:.1f}</text>')
        parts.append(f'<text x="{left - 6}" y="{y0 + 4:.1f}" text-anchor="end" font-size="10">{v:.1f}</text>')
        v = round(v + step, 10)
    row = 0

    def draw(m: str, p: dict, color: str, floor: bool) -> None:
        nonlocal row
        x, y = xy(p["development"], p["heldout"])
        if not floor:
            if p["development_ci"]:
                x1, x2 = xy(p["development_ci"][0], 0)[0], xy(p["development_ci"][1], 0)[0]
                parts.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}"/>')
            if p["heldout_ci"]:
                y1, y2 = xy(0, p["heldout_ci"][0])[1], xy(0, p["heldout_ci"][1])[1]
                parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="{color}"/>')
        kind = "floor, not in r: " if floor else ""
        tip = f"<title>{escape(m)}: {kind}development {p['development']:+.2f}, held-out {p['heldout']:+.2f}</title>"
        inside = lo <= p["development"] <= hi and lo <= p["heldout"] <= hi
        fill = f'fill="none" stroke="{color}" stroke-width="1.5"' if floor else f'fill="{color}"'
        cls = "floor" if floor else "point"
        parts.append(
            f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" {fill}>{tip}</circle>'
            if inside
            else f'<path class="clipped {cls}" d="M{x - 4:.1f},{y + 4:.1f} L{x + 4:.1f},{y + 4:.1f} '
            f'L{x:.1f},{y - 4:.1f} Z" {fill}>{tip}</path>'
        )
        ly = top + 12 + 16 * row
        mark = f'<circle cx="{left + size + 16}" cy="{ly - 4}" r="4" {fill}/>'
        parts.append(f'{mark}<text x="{left + size + 24}" y="{ly}" font-size="11">{escape(m)}</text>')
        row += 1

    for m, p in points.items():
        draw(m, p, colors.get(m, UNRANKED_COLOR), False)
    if floors:
        parts.append(
            f'<text x="{left + size + 10}" y="{top + 12 + 16 * row}" font-size="10" fill="#5d6670">'
            "floors, not in r:</text>"
        )
        row += 1
        for m, p in floors.items():
            draw(m, p, UNRANKED_COLOR, True)
    parts.append("</svg>")

    def said(name: str, r: dict) -> str:
        return f"{name.capitalize()} r = {_num(r['r'])} {_ci(r['ci'])}" if r["r"] is not None else f"{name} r undefined"

    everyone = correlations({**points, **floors}) if floors else None
    with_floors = (
        f" Counting the {len(floors)} floor(s) too, Pearson r would be {_num(everyone['pearson']['r'])}: carried "
        "by points far from the rest."
        if everyone and everyone["pearson"]["r"] is not None
        else ""
    )
    return (
        "<h3>Does development predict held-out?</h3>"
        + "".join(parts)
        + f'<p class="setting-meta transfer-r">Across the {len(points)} ranked entries that learn from the weak '
        f"labels: {said('pearson', data['pearson'])}, {said('spearman', data['spearman'])} (95% intervals: "
        "bootstrap over entries; points beyond the axes sit at the edge). Floors (teacher-free, or below the weak "
        f"model: pooled PGR interval under 0) are drawn hollow and grey and left out of r.{with_floors} Points "
        "near the dashed line keep on the held-out tasks what they recover on the development ones.</p>"
    )


def paired_table(setting: dict) -> str:
    """Row minus column, pooled PGR, with the paired 95% interval; significant differences marked."""
    entries = [e for e in setting["entries"] if e["pooled_pgr"] is not None]
    if len(entries) < 2:
        return ""
    head = "<th>row &minus; column</th>" + "".join(f"<th>{escape(e['method'])}</th>" for e in entries)
    rows = []
    for a in entries:
        cells = [f'<td class="method">{escape(a["method"])}</td>']
        for b in entries:
            d = (a.get("paired") or {}).get(b["method"]) if a is not b else None
            if d is None or d["d_pooled_pgr"] is None:
                cells.append('<td class="self"></td>' if a is b else "<td>&ndash;</td>")
                continue
            ci = d["d_pooled_pgr_ci"]
            cls = "better" if ci and ci[0] > 0 else "worse" if ci and ci[1] < 0 else "tie"
            cells.append(f'<td class="{cls}">{_num(d["d_pooled_pgr"])}{_ci(ci)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<h3>Paired differences</h3><p class="note">Pooled PGR of the row minus the column, with the paired 95% '
        "interval (the same test resamples, seeds paired). Green: the row is significantly better; red: worse. "
        "Rank: 1 + the number of entries significantly better, directly or through a chain of such wins; "
        "different ranks need not be resolved from each other (see this matrix).</p>"
        f'<div class="table-wrap"><table class="paired" id="paired-{slug(setting["name"])}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _footer(doc: dict) -> str:
    g = doc["generated"]
    commit = (g["git_commit"] or "unknown")[:12]
    return (
        f"Built {escape(g['created'])} by w2sbench {escape(g['w2sbench_version'])} at commit {escape(commit)} from "
        f"{len(g['submissions'])} submission(s); official baselines {escape(g['baselines']['file'])} "
        f"(sha256 {g['baselines']['sha256'][:12]}); weak/ceiling tolerance {doc['tolerance']['accuracy']} accuracy."
        + (f" Skipped: {escape('; '.join(g['skipped']))}" if g["skipped"] else "")
    )


def _card(card: dict) -> str:
    def link(v: str) -> str:
        return (
            f'<a href="{escape(v, quote=True)}">{escape(v)}</a>' if v.startswith(("http://", "https://")) else escape(v)
        )

    rows = [
        ("Name", escape(str(card.get("name", "")))),
        ("Version", escape(str(card.get("version", "")))),
        ("Authors", escape(", ".join(card.get("authors") or []))),
        ("Description", escape(card.get("description", ""))),
        ("Code", link(card.get("code") or "")),
        ("Paper", link(card["paper"]) if card.get("paper") else "&ndash;"),
        ("Licence", escape(card.get("license", ""))),
        ("Teacher-free", "yes" if card.get("teacher_free") else "no"),
        (
            "Training recipe",
            "non-default: " + escape(card.get("recipe_notes") or "")
            if card.get("non_default_recipe")
            else "the setting's fixed recipe",
        ),
    ]
    if card.get("contact"):
        rows.append(("Contact", escape(card["contact"])))
    rows.append(("Config", f"<pre>{escape(json.dumps(card.get('config', {}), indent=1, sort_keys=True))}</pre>"))
    return '<dl class="card">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _method_results(setting: dict, entry: dict) -> str:
    rows = "".join(
        f'<tr><td class="text">{escape(t["name"])}</td>'
        f'<td class="text">{"held-out" if t["split"] == "heldout" else "dev."}</td>'
        f"<td>{_pct(t['weak_acc'])}</td><td>{_pct(t['ceiling_acc'])}</td>"
        f"<td>{_pct(entry['tasks'][t['name']]['w2s_acc'])}</td>{_pgr_cell(entry['tasks'][t['name']])}</tr>"
        for t in setting["tasks"]
    )
    tr = entry.get("transfer")
    transfer = (
        f"<p>Development <strong>{_num(tr['development']['pooled_pgr'])}</strong> "
        f"{_ci(tr['development']['pooled_pgr_ci'])} &middot; held-out <strong>{_num(tr['heldout']['pooled_pgr'])}"
        f"</strong> {_ci(tr['heldout']['pooled_pgr_ci'])} &middot; held-out &minus; development "
        f"<strong>{_num(tr['difference']['pooled_pgr'])}</strong> {_ci(tr['difference']['pooled_pgr_ci'])} "
        "(pooled PGR)</p>"
        if tr
        else ""
    )
    paired = "".join(
        f'<tr><td class="text">{escape(other)}</td><td>{_num(d["d_pooled_pgr"])}{_ci(d["d_pooled_pgr_ci"])}</td>'
        f"<td>{_num(d['d_mean_pgr'])}{_ci(d['d_mean_pgr_ci'])}</td></tr>"
        for other, d in entry.get("paired", {}).items()
    )
    paired = (
        '<h3>Paired differences</h3><table class="tasks paired-one"><thead><tr><th class="method">This minus</th>'
        f"<th>Pooled PGR</th><th>Mean PGR</th></tr></thead><tbody>{paired}</tbody></table>"
        if paired
        else ""
    )
    rank = (
        f"unranked ({entry.get('unranked_reason') or 'pooled PGR undefined'})"
        if entry["rank"] is None
        else f"rank {entry['rank']}"
        + (f" (not significantly different from {', '.join(entry['tied_with'])})" if entry.get("tied_with") else "")
    )
    rep = entry.get("reproduced")
    reproduced = (
        f"reproduced by the harness on {rep['date'][:10]} at commit {(rep['commit'] or 'unknown')[:10]} "
        f"(largest w2s accuracy difference {100 * rep['largest_difference']:.2f} points, tolerance "
        f"{100 * rep['tolerance']:.1f})"
        if rep
        else "not reproduced by the harness: not ranked"
    )
    prov = entry.get("provenance") or {}
    flags = "".join(
        f"<li>{escape(f['task'])}: <strong>{escape(f['flag'])}</strong>: {escape(f['saw'])}</li>"
        for f in entry.get("flags", [])
    )
    flags = f'<h3>Flags</h3><ul class="flags">{flags}</ul>' if flags else ""
    return (
        f'<section class="setting"><h2>Setting {escape(setting["name"])}</h2>'
        f"<p>Pooled PGR <strong>{_num(entry['pooled_pgr'])}</strong> {_ci(entry['pooled_pgr_ci'])} "
        f"&middot; mean PGR {_num(entry['mean_pgr'])} {_ci(entry['mean_pgr_ci'])} &middot; {escape(rank)}</p>"
        f"{transfer}"
        f'<p class="reproduced">{escape(reproduced)}</p>{flags}{_robustness_table(entry)}'
        '<table class="tasks"><thead><tr><th class="method">Task</th><th class="method">Split</th>'
        "<th>Weak %</th><th>Ceiling %</th><th>W2S %</th><th>PGR</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{plot(setting, [entry['method']], height=240)}{paired}"
        f"<h3>Provenance</h3><pre>{escape(json.dumps(prov, indent=1, sort_keys=True))}</pre></section>"
    )


def _tabs(doc: dict) -> str:
    settings = list(doc["settings"].values())
    if len(settings) < 2:
        return ""
    links = "".join(
        f'<a class="tab" href="#setting-{slug(s["name"])}" data-setting="{slug(s["name"])}">{escape(s["name"])}'
        f"<small>{escape(_short_model(s.get('weak_model', '')))} &rarr; "
        f"{escape(_short_model(s.get('strong_model', '')))}</small></a>"
        for s in settings
    )
    return f'<nav class="tabs" aria-label="settings">{links}</nav>'


def _short_model(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def _section(setting: dict, others: dict[str, dict], recipes: dict) -> str:
    name = escape(setting["name"])
    dev = [t["name"] for t in setting["tasks"] if t["split"] == "development"]
    held = [t["name"] for t in setting["tasks"] if t["split"] == "heldout"]
    meta = (
        f'<p class="setting-meta">Setting <strong>{name}</strong> v{setting["version"]} (hash {setting["hash"]}): '
        f"{escape(setting['weak_model'])} &rarr; {escape(setting['strong_model'])}. "
        f"{escape(setting.get('description', ''))} Weak and ceiling: the official baselines, mean of "
        f"{setting['baseline_seeds']} seeds. Development tasks: {escape(', '.join(dev))}; held-out tasks: "
        f"{escape(', '.join(held) or 'none')}. Ranked by the pooled PGR over all of them.</p>"
    )
    if not setting["entries"]:
        body = "<p>No submissions yet.</p>"
    else:
        chart = rank_chart(setting, others, recipes)
        first = (
            '<div class="first">'
            f'<figure class="panel"><figcaption><h2>Ranking <span class="on">{name}</span></h2>'
            '<p class="sub">Pooled PGR with its 95% interval; colour: rank group (rank = 1 + the number of '
            "entries significantly better)</p></figcaption>"
            f"{ranking_plot(setting)}</figure>"
            + (
                '<figure class="panel"><figcaption><h2>Is PGR robust?</h2>'
                '<p class="sub">Each method&rsquo;s place when something that should not matter changes</p>'
                f"</figcaption>{chart}{verdict(setting)}</figure>"
                if chart
                else ""
            )
            + "</div>"
        )
        body = (
            first
            + meta
            + "<h3>All numbers</h3>"
            + table(setting)
            + "<h3>Weak &rarr; w2s &rarr; ceiling, per task</h3>"
            + gap_strips(setting)
            + "<h3>PGR by task</h3>"
            + plot(setting)
            + transfer_plot(setting)
            + paired_table(setting)
        )
    return f'<section class="setting" id="setting-{slug(setting["name"])}">{body}</section>'


def recipe_scores(recipes_dir: Path | None, doc: dict) -> dict[str, dict[str, dict[str, float]]]:
    """setting -> change (`recipe_<knob>_x<factor>`, as leaderboard.json names it) -> method -> pooled PGR,
    from the reference runs under the strong recipe perturbed (recipes_dir/<setting>/<knob>=<factor>.json,
    results JSONs: `summary.<method>.pooled_pgr`). Only the methods whose run is of the entry's own pinned code
    (the same rule as the build's), and only runs of that setting; anything unreadable is left out."""
    from ...schema_io import read_json

    out: dict[str, dict[str, dict[str, float]]] = {}
    if recipes_dir is None or not Path(recipes_dir).is_dir():
        return out
    for name, setting in doc.get("settings", {}).items():
        folder = Path(recipes_dir) / name
        if not folder.is_dir():
            continue
        code = {
            e["method"]: ((e.get("card") or {}).get("source") or {}).get("sha256")
            for e in setting.get("entries", [])
            if e.get("rank") is not None
        }
        for path in sorted(folder.glob("*.json")):
            try:
                run = read_json(path)
                change = run["setting"]["config"]["perturbed"]["strong"]
                ((knob, factor),) = change.items()
                label = f"recipe_{knob}_x{float(factor):g}"
                scores = {
                    m: s["pooled_pgr"]
                    for m, s in run["summary"].items()
                    if m in code
                    and s.get("pooled_pgr") is not None
                    and (run["methods"][m].get("code") or {}).get("sha256") == code[m]
                }
            except Exception:  # a run in another shape: no places from it (leaderboard.json still has its P)
                continue
            if run["setting"].get("name") == name and len(scores) >= 2:
                out.setdefault(name, {})[label] = scores
    return out


def render_site(doc: dict, out_dir: Path, recipes: dict | None = None) -> list[Path]:
    """Write index.html, submit.html, style.css, app.js, leaderboard.json and methods/<name>.html; returns the
    pages written (index first). `recipes`: recipe_scores(...), the places under the recipe changes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("style.css", "app.js"):
        (out_dir / name).write_text(_template(name))
    (out_dir / "leaderboard.json").write_text(json.dumps(doc, indent=1) + "\n")
    footer = _footer(doc)
    data = json.dumps(doc, sort_keys=True).replace("</", "<\\/")
    settings = doc["settings"]
    sections = (
        "\n".join(_section(s, settings, (recipes or {}).get(s["name"], {})) for s in settings.values())
        or "<p>No official settings yet.</p>"
    )
    index = out_dir / "index.html"
    index.write_text(
        Template(_template("index.html")).substitute(sections=sections, tabs=_tabs(doc), footer=footer, data=data)
    )
    submit = out_dir / "submit.html"
    official = ", ".join(f"<code>{escape(n)}</code>" for n in settings) or "none yet"
    submit.write_text(Template(_template("submit.html")).substitute(settings=official, footer=footer))
    methods_dir = out_dir / "methods"
    if methods_dir.is_dir():
        shutil.rmtree(methods_dir)  # pages of methods no longer on the board must not linger
    methods_dir.mkdir()
    written = [index, submit]
    by_method: dict[str, list[tuple[dict, dict]]] = {}
    for setting in settings.values():
        for e in setting["entries"]:
            by_method.setdefault(e["method"], []).append((setting, e))
    method_page = Template(_template("method.html"))
    for name, pairs in sorted(by_method.items()):
        page = methods_dir / f"{slug(name)}.html"
        page.write_text(
            method_page.substitute(
                title=escape(name),
                marks=marks(pairs[0][1]),
                card=_card(pairs[0][1].get("card") or {"name": name}),
                results="\n".join(_method_results(s, e) for s, e in pairs),
                footer=footer,
            )
        )
        written.append(page)
    return written
