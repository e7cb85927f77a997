"""Finals: each nominated method runs once, afresh, on what no answer came from: the final part of every
development task (the method is given its texts, and no job ever was) and every held-out task, through the
same pipeline; the operator runs `w2sbench serve finals CAMPAIGN` (the service may be running: the state
is shared safely). Nothing a job returned enters it: the run's test splits, its stages' cache keys and its
method artifacts are the finals' own. Writes per job STATE/finals/JOB.results.json (the full results JSON),
JOB.submission.json (a leaderboard submission to complete with the method's folder) and records the
campaign's final score with the method's flags per task, computed on what the finals score.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..errors import W2SError
from ..reports.results import build_results
from ..schema_io import write_json
from .campaign import Campaign
from .engine import Service, final_score


def run_finals(campaign: Campaign, say=print) -> list[dict]:
    service = Service(campaign, run_jobs=False)
    state = service.state
    done = {r["job"] for r in state.query("SELECT job FROM finals")}
    rows = state.query(
        "SELECT n.agent, n.job, j.method, j.code_sha256 FROM nominations n JOIN jobs j ON j.id = n.job ORDER BY n.at"
    )
    out_dir = state.folder / "finals"
    out_dir.mkdir(exist_ok=True)
    records = []
    for row in rows:
        if row["job"] in done:
            records.append(json.loads(state.query("SELECT result FROM finals WHERE job = ?", row["job"])[0]["result"]))
            continue
        job = state.query("SELECT * FROM jobs WHERE id = ?", row["job"])[0]
        say(f"finals: {row['agent']}'s {row['method']} (job {row['job']})")
        start = time.monotonic()
        run = service.run_method(job, (*campaign.development, *campaign.heldout), "final")
        score = final_score(campaign, run, job["method"])
        result = build_results(run)
        record = {
            "agent": row["agent"],
            "job": row["job"],
            "method": job["method"],
            "code_sha256": job["code_sha256"],
            "released": None if score["pooled_pgr"] is None else round(score["pooled_pgr"], 3),
            **score,
            "seconds": round(time.monotonic() - start, 1),
        }
        write_json(result, out_dir / f"{row['job']}.results.json")
        record["submission"] = _submission(result, job["method"], out_dir / f"{row['job']}.submission.json")
        shutil.copytree(state.folder / "code" / job["code_sha256"], out_dir / f"{row['job']}.code", dirs_exist_ok=True)
        with state.transaction() as db:
            db.execute("INSERT OR REPLACE INTO finals VALUES (?, ?, ?)", (row["job"], json.dumps(record), time.time()))
        state.log("final", **{k: v for k, v in record.items() if k != "tasks"}, tasks=record["tasks"])
        records.append(record)
    return records


def _submission(result: dict, method: str, path: Path) -> str:
    """The leaderboard submission of a final (its code path a placeholder to fill in), or why there is none."""
    from ..leaderboard.submission import make_submission, write_submission

    try:
        write_submission(make_submission([("results.json", result)], method), path)
    except W2SError as e:
        return f"not written: {e}"
    return str(path)
