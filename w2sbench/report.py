"""The terminal summary: one row per task and method, accuracies and PGR with 95% intervals."""

from __future__ import annotations

from .flags import flag_summary


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def _ci(ci) -> str:
    return "" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def summary_table(doc: dict) -> str:
    rows = [("task", "method", "weak", "ceiling", "w2s", "gap", "PGR", "95% CI")]
    notes = []
    for task, entry in doc["tasks"].items():
        for name, m in entry["methods"].items():
            p = m["pgr"]
            pgr = f"{p['pgr']:+.2f}" if p["defined"] else "undef."
            if not p["defined"]:
                notes.append(f"{task}/{name}: PGR undefined: {p['undefined_reason']}")
            rows.append(
                (
                    task,
                    name,
                    _pct(entry["weak"]["accuracy"]),
                    _pct(entry["ceiling"]["accuracy"]),
                    _pct(m["w2s"]["accuracy"]),
                    _pct(p["gap"]),
                    pgr,
                    _ci(p["pgr_ci"]),
                )
            )
    for name, s in doc["summary"].items():
        mean = "undef." if s["mean_pgr"] is None else f"{s['mean_pgr']:+.2f}"
        rows.append(("MEAN", name, "", "", _pct(s["mean_w2s_accuracy"]), "", mean, _ci(s["mean_pgr_ci"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    k, s = doc["seeds"]["baseline"], doc["seeds"]["method"]
    lines.append(
        f"accuracies in %, weak/ceiling mean of {k} seeds, w2s mean of {s}; "
        "PGR interval: bootstrap over test examples and seeds"
    )
    flagged = flag_summary(
        {
            task: {name: m.get("flags", []) for name, m in entry["methods"].items()}
            for task, entry in doc["tasks"].items()
        }
    )
    if flagged:
        notes += [*flagged, "(a flag rejects nothing: it says what looks suspicious; see w2sbench/flags.py)"]
    return "\n".join(lines + notes)


# ---- several methods: the difference to a baseline method (scoring.compare_to_baseline) ---------------------
def comparison_table(comp: dict) -> str:
    """The terminal table of compare_to_baseline(): Δ accuracy (points) and Δ PGR with 95% intervals."""
    base = comp["baseline"]
    rows = [("task", "method", f"Δw2s vs {base}", "95% CI", "ΔPGR", "95% CI")]

    def row(task: str, name: str, e: dict) -> tuple:
        acc_ci = f"[{100 * e['d_acc_ci'][0]:+.1f}, {100 * e['d_acc_ci'][1]:+.1f}]"
        pgr = "undef." if e["d_pgr"] is None else f"{e['d_pgr']:+.2f}"
        return (task, name, f"{100 * e['d_acc']:+.1f}", acc_ci, pgr, _ci(e["d_pgr_ci"]))

    for task, entry in comp["tasks"].items():
        rows += [row(task, name, e) for name, e in entry.items()]
    rows += [row("MEAN", name, e) for name, e in comp["mean"].items()]
    if len(rows) == 1:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"Δ = method - {base}, accuracy in points; intervals: paired bootstrap over test examples and seeds")
    return "\n".join(lines)
