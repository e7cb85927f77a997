"""Rendering leaderboard.json as a static site: plain HTML/CSS/JS with every number written into the
pages (and the JSON embedded), so it works from file:// and GitHub Pages with no server or fetch."""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

PALETTE = ["#2457a6", "#c0392b", "#27864a", "#8e44ad", "#d98500", "#16a2b8", "#6b4226", "#d6336c", "#495057", "#7a9a01"]


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
    if entry["teacher_free"]:
        out += '<span class="mark tf" title="teacher-free: does not use the weak labels">TF</span>'
    if entry["non_default_recipe"]:
        note = escape(entry["card"].get("recipe_notes") or "non-default training recipe", quote=True)
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


def _pgr_cell(task: dict) -> str:
    if not task["defined"]:
        reason = escape(task["undefined_reason"] or "undefined", quote=True)
        return (
            f'<td class="pgr" data-sort="" title="{reason}"><span class="undef">undef.</span>'
            f'<span class="ci">w2s {_pct(task["w2s_acc"])}%</span></td>'
        )
    return f'<td class="pgr" data-sort="{task["pgr"]!r}">{_num(task["pgr"])}{_ci(task["pgr_ci"])}</td>'


def _rank(entry: dict, shared: bool) -> str:
    """The rank cell (1 + the entries shown to be better); `=` where several entries share it, its tooltip
    naming the entries this one is not significantly different from."""
    if entry["rank"] is None:
        why = escape(entry.get("unranked_reason") or "unranked", quote=True)
        return f'<td data-sort="" class="unranked" title="{why}">&ndash;</td>'
    said = "paired difference not significant: " + (", ".join(entry["tied_with"]) or "none")
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


def table(setting: dict) -> str:
    tasks = [t["name"] for t in setting["tasks"]]
    changes = (setting.get("robustness") or {}).get("perturbations") or {}
    pairs = sorted(k for k in changes if k.startswith("model_pair_"))
    recipe = any(k.startswith("recipe_") for k in changes)
    ranks = [e["rank"] for e in setting["entries"] if e["rank"] is not None]
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
        'is left out, the tasks are resampled or the seeds are (the method page has each)">Stays in group</th>'
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
    head += ['<th class="sortable">Mean w2s acc. %</th>']
    head += [_task_head(t) for t in setting["tasks"]]
    rows = []
    for e in setting["entries"]:
        undefined = len(tasks) - e["tasks_defined"]
        cells = [
            _rank(e, e["rank"] is not None and ranks.count(e["rank"]) > 1),
            f'<td class="method" data-sort="{escape(e["method"], quote=True)}">'
            f'<a href="methods/{slug(e["method"])}.html">{escape(e["method"])}</a>{marks(e)}</td>',
            _score_cell("pooled", e["pooled_pgr"], e["pooled_pgr_ci"], "the summed gap is not clearly positive", True),
            _score_cell("mean", e["mean_pgr"], e["mean_pgr_ci"], f"PGR undefined on {undefined} task(s)"),
            *(_transfer_cells(e) if split else []),
            _stays_cell(e),
            *(_change_cell(e, k) for k in pairs + (["recipe"] if recipe else [])),
            f'<td data-sort="{e["mean_w2s_accuracy"]!r}">{_pct(e["mean_w2s_accuracy"])}</td>',
        ]
        cells += [_pgr_cell(e["tasks"][t]) for t in tasks]
        rows.append(f'<tr class="entry" data-method="{escape(e["method"], quote=True)}">' + "".join(cells) + "</tr>")
    for role, label in (("weak_acc", "weak acc. % (official)"), ("ceiling_acc", "ceiling acc. % (official)")):
        cells = ["<td></td>", f'<td class="method">{label}</td>'] + ["<td></td>"] * (
            (7 if split else 4) + len(pairs) + recipe
        )
        cells += [f"<td>{_pct(t[role])}</td>" for t in setting["tasks"]]
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table class="leaderboard" id="table-{slug(setting["name"])}">'
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
    correlations across entries with bootstrap intervals over entries (reports.plot.correlations, as
    `w2sbench plot` draws them). Axes span [-0.5, 1.5] at most, so the W2S methods are not squeezed by a
    baseline far below 0; a point beyond is a triangle at the edge.
    Empty without held-out tasks or with fewer than three such entries."""
    from ...reports.plot import correlations

    points = {
        e["method"]: {
            "development": e["transfer"]["development"]["pooled_pgr"],
            "development_ci": e["transfer"]["development"]["pooled_pgr_ci"],
            "heldout": e["transfer"]["heldout"]["pooled_pgr"],
            "heldout_ci": e["transfer"]["heldout"]["pooled_pgr_ci"],
        }
        for e in setting["entries"]
        if e["rank"] is not None
        and e.get("transfer")
        and e["transfer"]["development"]["pooled_pgr"] is not None
        and e["transfer"]["heldout"]["pooled_pgr"] is not None
    }
    data = correlations(points)
    if data is None:
        return ""
    values = [0.0, 1.0] + [v for p in points.values() for k in ("development", "heldout") for v in [p[k]]]
    lo, hi = max(min(values), -0.5), min(max(values), 1.5)
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    size, left, top = 300, 48, 12

    def at(v: float) -> float:
        return size * (min(max(v, lo), hi) - lo) / (hi - lo)

    def xy(dev: float, held: float) -> tuple[float, float]:
        return left + at(dev), top + size - at(held)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + size + 170} {top + size + 40}" '
        f'width="{left + size + 170}" height="{top + size + 40}" role="img" class="transfer-plot" '
        f'aria-label="held-out against development pooled PGR, {escape(setting["name"])}">',
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#d0d5da"/>',
        f'<line x1="{xy(lo, lo)[0]:.1f}" y1="{xy(lo, lo)[1]:.1f}" x2="{xy(hi, hi)[0]:.1f}" y2="{xy(hi, hi)[1]:.1f}" '
        'stroke="#9aa3ad" stroke-dasharray="4 3"/>',
        f'<text x="{left + size / 2}" y="{top + size + 30}" text-anchor="middle" font-size="11" fill="#5d6670">'
        "development pooled PGR</text>",
        f'<text x="12" y="{top + size / 2}" font-size="11" fill="#5d6670" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + size / 2})">held-out pooled PGR</text>',
    ]
    for v in (0.0, 1.0):
        x0, y0 = xy(v, v)
        parts.append(f'<text x="{x0:.1f}" y="{top + size + 14}" text-anchor="middle" font-size="10">{v:.0f}</text>')
        parts.append(f'<text x="{left - 6}" y="{y0 + 4:.1f}" text-anchor="end" font-size="10">{v:.0f}</text>')
    for j, (m, p) in enumerate(points.items()):
        color = PALETTE[j % len(PALETTE)]
        x, y = xy(p["development"], p["heldout"])
        if p["development_ci"]:
            x1, x2 = xy(p["development_ci"][0], 0)[0], xy(p["development_ci"][1], 0)[0]
            parts.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}"/>')
        if p["heldout_ci"]:
            y1, y2 = xy(0, p["heldout_ci"][0])[1], xy(0, p["heldout_ci"][1])[1]
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="{color}"/>')
        tip = f"<title>{escape(m)}: development {p['development']:+.2f}, held-out {p['heldout']:+.2f}</title>"
        inside = lo <= p["development"] <= hi and lo <= p["heldout"] <= hi
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">{tip}</circle>'
            if inside
            else f'<path class="clipped" d="M{x - 4:.1f},{y + 4:.1f} L{x + 4:.1f},{y + 4:.1f} L{x:.1f},{y - 4:.1f} Z" '
            f'fill="{color}">{tip}</path>'
        )
        parts.append(
            f'<circle cx="{left + size + 16}" cy="{top + 8 + 16 * j}" r="4" fill="{color}"/>'
            f'<text x="{left + size + 24}" y="{top + 12 + 16 * j}" font-size="11">{escape(m)}</text>'
        )
    parts.append("</svg>")

    def said(name: str) -> str:
        r = data[name]
        return f"{name.capitalize()} r = {_num(r['r'])} {_ci(r['ci'])}" if r["r"] is not None else f"{name} r undefined"

    return (
        "<h3>Does development predict held-out?</h3>"
        + "".join(parts)
        + f'<p class="setting-meta transfer-r">Across the {len(points)} ranked entries: {said("pearson")}, '
        f"{said('spearman')} (95% intervals: bootstrap over entries; points beyond [-0.5, 1.5] sit at the edge). "
        "Points near the dashed line keep on the held-out tasks what they recover on the development ones.</p>"
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
            d = a["paired"].get(b["method"]) if a is not b else None
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


def _section(setting: dict) -> str:
    meta = (
        f'<p class="setting-meta">Setting <strong>{escape(setting["name"])}</strong> v{setting["version"]} '
        f"(hash {setting['hash']}): {escape(setting['weak_model'])} &rarr; {escape(setting['strong_model'])}. "
        f"{escape(setting.get('description', ''))} Weak and ceiling: mean of {setting['baseline_seeds']} seeds.</p>"
    )
    dev = [t["name"] for t in setting["tasks"] if t["split"] == "development"]
    held = [t["name"] for t in setting["tasks"] if t["split"] == "heldout"]
    meta += (
        f'<p class="setting-meta">Development tasks: {escape(", ".join(dev))}; held-out tasks: '
        f"{escape(', '.join(held) or 'none')}. Ranked by the pooled PGR over all of them.</p>"
    )
    body = (
        table(setting) + "<h3>PGR by task</h3>" + plot(setting) + transfer_plot(setting) + paired_table(setting)
        if setting["entries"]
        else "<p>No submissions yet.</p>"
    )
    return (
        f'<section class="setting" id="setting-{slug(setting["name"])}">'
        f"<h2>{escape(setting['name'])}</h2>{meta}{body}</section>"
    )


def _card(card: dict) -> str:
    def link(v: str) -> str:
        return (
            f'<a href="{escape(v, quote=True)}">{escape(v)}</a>' if v.startswith(("http://", "https://")) else escape(v)
        )

    rows = [
        ("Name", escape(card["name"])),
        ("Version", escape(str(card["version"]))),
        ("Authors", escape(", ".join(card["authors"]))),
        ("Description", escape(card["description"])),
        ("Code", link(card["code"])),
        ("Paper", link(card["paper"]) if card.get("paper") else "&ndash;"),
        ("Licence", escape(card["license"])),
        ("Teacher-free", "yes" if card["teacher_free"] else "no"),
        (
            "Training recipe",
            "non-default: " + escape(card.get("recipe_notes") or "")
            if card["non_default_recipe"]
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
        + (f" (not significantly different from {', '.join(entry['tied_with'])})" if entry["tied_with"] else "")
    )
    rep = entry.get("reproduced")
    reproduced = (
        f"reproduced by the harness on {rep['date'][:10]} at commit {(rep['commit'] or 'unknown')[:10]} "
        f"(largest w2s accuracy difference {100 * rep['largest_difference']:.2f} points, tolerance "
        f"{100 * rep['tolerance']:.1f})"
        if rep
        else "not reproduced by the harness: not ranked"
    )
    prov = entry["provenance"]
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


def render_site(doc: dict, out_dir: Path) -> list[Path]:
    """Write index.html, style.css, app.js and methods/<name>.html; returns the pages written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("style.css", "app.js"):
        (out_dir / name).write_text(_template(name))
    footer = _footer(doc)
    data = json.dumps(doc, sort_keys=True).replace("</", "<\\/")
    sections = "\n".join(_section(s) for s in doc["settings"].values()) or "<p>No official settings yet.</p>"
    index = out_dir / "index.html"
    index.write_text(Template(_template("index.html")).substitute(sections=sections, footer=footer, data=data))
    methods_dir = out_dir / "methods"
    if methods_dir.is_dir():
        shutil.rmtree(methods_dir)  # pages of methods no longer on the board must not linger
    methods_dir.mkdir()
    written = [index]
    by_method: dict[str, list[tuple[dict, dict]]] = {}
    for setting in doc["settings"].values():
        for e in setting["entries"]:
            by_method.setdefault(e["method"], []).append((setting, e))
    method_page = Template(_template("method.html"))
    for name, pairs in sorted(by_method.items()):
        page = methods_dir / f"{slug(name)}.html"
        page.write_text(
            method_page.substitute(
                title=escape(name),
                marks=marks(pairs[0][1]),
                card=_card(pairs[0][1]["card"]),
                results="\n".join(_method_results(s, e) for s, e in pairs),
                footer=footer,
            )
        )
        written.append(page)
    return written
