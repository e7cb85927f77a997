"""The terminal summary: one row per task and method, accuracies and PGR with 95% intervals."""

from __future__ import annotations

from ..engine.suspicion import flag_summary


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def _ci(ci) -> str:
    return "" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _val(x: float | None) -> str:
    return "undef." if x is None else f"{x:+.2f}"


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _auroc_pgr(p: dict | None) -> str:
    """The compact second figure: PGR on AUROC, its point only (blank in a document without it)."""
    if not p:
        return ""
    return _val(p["pgr"]) if "pgr" in p else _val(p.get("pooled_pgr"))


def summary_table(doc: dict) -> str:
    rows = [("task", "method", "weak", "ceiling", "w2s", "gap", "PGR", "95% CI", "AUROC PGR")]
    notes = []
    for task, entry in doc["tasks"].items():
        for name, m in entry["methods"].items():
            p = m["pgr"]
            pgr = f"{p['pgr']:+.2f}" if p["defined"] else "undef."
            if not p["defined"]:
                notes.append(f"{task}/{name}: PGR undefined: {p['undefined_reason']}")
            rows.append(
                (
                    task + ("*" if entry.get("split") == "heldout" else ""),
                    name,
                    _pct(entry["weak"]["accuracy"]),
                    _pct(entry["ceiling"]["accuracy"]),
                    _pct(m["w2s"]["accuracy"]),
                    _pct(p["gap"]),
                    pgr,
                    _ci(p["pgr_ci"]),
                    _auroc_pgr(m.get("pgr_auroc")),
                )
            )
    heldout = {t for t, e in doc["tasks"].items() if e.get("split") == "heldout"}
    for name, s in doc["summary"].items():
        rows.append(
            (
                "POOLED",
                name,
                "",
                "",
                _pct(s["mean_w2s_accuracy"]),
                _pct(s["pooled_gap"]),
                _val(s["pooled_pgr"]),
                _ci(s["pooled_pgr_ci"]),
                _auroc_pgr(s.get("auroc")),
            )
        )
        auc = s.get("auroc")
        auc_mean = _val(auc["mean_pgr"]) if auc else ""
        rows.append(("MEAN", name, "", "", "", "", _val(s["mean_pgr"]), _ci(s["mean_pgr_ci"]), auc_mean))
        if s["pooled_undefined_reason"]:
            notes.append(f"POOLED/{name}: undefined: {s['pooled_undefined_reason']}")
    lines = _table(rows)
    k, s = doc["seeds"]["baseline"], doc["seeds"]["method"]
    lines.append(
        f"accuracies in %, weak/ceiling mean of {k} seeds, w2s mean of {s}; "
        "PGR interval: bootstrap over test examples and seeds"
        + (f"; held-out tasks marked *: {', '.join(sorted(heldout))}" if heldout else "")
    )
    lines.append(
        "POOLED: sum(w2s - weak) / sum(ceiling - weak) over tasks (the gap-weighted mean of the tasks' PGR; "
        "gap column: summed gap); MEAN: mean of the tasks' PGR"
        + (
            "; AUROC PGR: the same figures on AUROC instead of accuracy (intervals in the results JSON)"
            if any(s.get("auroc") for s in doc["summary"].values())
            else ""
        )
    )
    flagged = flag_summary(
        {
            task: {name: m.get("flags", []) for name, m in entry["methods"].items()}
            for task, entry in doc["tasks"].items()
        }
    )
    if flagged:
        notes += [*flagged, "(a flag rejects nothing: it says what looks suspicious; see w2sbench/engine/suspicion.py)"]
    moved = transfer_table(doc)
    return "\n".join(lines + notes + (["", moved] if moved else []))


def transfer_table(doc: dict) -> str:
    """Development vs held-out (the results' `transfer`): pooled and mean PGR on each side, and held-out minus
    development, with 95% intervals; empty when the run has no held-out task or no development task."""
    tr = doc.get("transfer")
    if not tr:
        return ""
    rows = [("method", "development", "95% CI", "held-out", "95% CI", "held-out - dev", "95% CI")]
    for name, m in tr["methods"].items():
        for key, label in (("pooled_pgr", "POOLED"), ("mean_pgr", "MEAN")):
            dev, held, diff = m["development"], m["heldout"], m["difference"]
            rows.append(
                (
                    f"{name} {label}",
                    _val(dev[key]),
                    _ci(dev[f"{key}_ci"]),
                    _val(held[key]),
                    _ci(held[f"{key}_ci"]),
                    _val(diff[key]),
                    _ci(diff[f"{key}_ci"]),
                )
            )
    lines = _table(rows)
    lines.insert(0, f"development ({', '.join(tr['development'])}) vs held-out ({', '.join(tr['heldout'])}):")
    lines.append("held-out - dev < 0: the method recovers less of the gap on the tasks held out from development")
    return "\n".join(lines)


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
    rows += [
        ("POOLED", name, "", "", _val(e.get("d_pooled_pgr")), _ci(e.get("d_pooled_pgr_ci")))
        for name, e in comp["mean"].items()
    ]
    if len(rows) == 1:
        return ""
    lines = _table(rows)
    lines.append(
        f"Δ = method - {base}, accuracy in points; MEAN: of the tasks' Δ, POOLED: Δ of the pooled PGR; "
        "intervals: paired bootstrap over test examples and seeds"
    )
    return "\n".join(lines)
