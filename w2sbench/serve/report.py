"""`w2sbench serve report LOG`: what each agent tried, read back from the service's append-only log.

Per agent: every job in order (method, code hash, released answer, the true validation score that was not
released, flags, the method's own error line for a failed job, compute), what the release rule kept back
(the largest |released - true|), and the finals.
The figure draws released and true score against submission number, one panel per agent (PNG and SVG).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..errors import ConfigError


def read_log(path: Path) -> list[dict]:
    events = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            if number == len(Path(path).read_text(encoding="utf-8").splitlines()):
                break  # a last line cut by kill -9: everything before it stands
            raise ConfigError(str(path), f"line {number}", "not a JSON event") from None
    return events


def summarise(events: list[dict]) -> dict[str, dict]:
    """agent -> {"jobs": [...finished jobs in order], "finals": [...], "calls": n, "refused": n}."""
    agents: dict[str, dict] = defaultdict(lambda: {"jobs": [], "finals": [], "calls": 0, "refused": 0})
    for e in events:
        agent = e.get("agent")
        if e["event"] == "job_finished" and agent:
            agents[agent]["jobs"].append(e)
        elif e["event"] == "final" and agent:
            agents[agent]["finals"].append(e)
        elif e["event"] == "call" and agent:
            agents[agent]["calls"] += 1
        elif e["event"] == "refused" and agent:
            agents[agent]["refused"] += 1
    return dict(agents)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


def format_report(agents: dict[str, dict]) -> str:
    lines = []
    for name, info in sorted(agents.items()):
        jobs = info["jobs"]
        lines.append(f"agent {name}: {len(jobs)} jobs, {info['calls']} calls, {info['refused']} refused")
        if jobs:
            lines.append(f"  {'#':>3}  {'method':<32} {'code':<12} {'released':>8} {'true':>8}  status / flags")
        for i, j in enumerate(jobs, 1):
            why = j.get("method_error") or j.get("reason") or ""
            what = j["status"] if j["status"] != "failed" else f"failed: {why}"[:100]
            flags = j.get("flags") or []
            if isinstance(flags, dict):  # per task (since the flags stopped being released)
                flags = sorted({f for names in flags.values() for f in names})
            flags = ",".join(flags)
            lines.append(
                f"  {i:>3}  {j['method'][:32]:<32} {j['code_sha256'][:12]:<12} {_fmt(j.get('released')):>8}"
                f" {_fmt(j.get('true_score')):>8}  {what}{' ' + flags if flags else ''}"
            )
        pairs = [(j["released"], j["true_score"]) for j in jobs if j.get("released") is not None]
        if pairs:
            worst = max(abs(r - t) for r, t in pairs)
            lines.append(f"  largest |released - true|: {worst:.3f}")
        for f in info["finals"]:
            lines.append(f"  final: {f['method']} (job {f['job']}): pooled PGR {_fmt(f.get('pooled_pgr'))}")
    return "\n".join(lines) if lines else "no agent has called the service yet"


def draw(agents: dict[str, dict], out_dir: Path) -> list[Path]:
    from matplotlib.ticker import MaxNLocator

    from ..reports.plot import _figure, _metadata

    names = sorted(a for a, info in agents.items() if info["jobs"])
    if not names:
        return []
    fig = _figure(5.0 * len(names), 3.4)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        jobs = agents[name]["jobs"]
        xs = list(range(1, len(jobs) + 1))
        ax.plot(xs, [j.get("true_score") for j in jobs], "o", color="0.55", label="true (not released)")
        ax.step(xs, [j.get("released") for j in jobs], where="post", color="C0", label="released")
        for f in agents[name]["finals"]:
            job_numbers = [i for i, j in zip(xs, jobs) if j["job"] == f["job"]]
            if job_numbers and f.get("pooled_pgr") is not None:
                ax.plot(job_numbers, [f["pooled_pgr"]], "*", color="C3", markersize=11, label="final")
        ax.set_title(name)
        ax.set_xlabel("submission")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("pooled PGR (validation)")
        ax.legend(fontsize=7)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("png", "svg"):
        path = out_dir / f"serve-report.{fmt}"
        fig.savefig(path, format=fmt, dpi=150, metadata=_metadata(fmt))
        written.append(path)
    return written
