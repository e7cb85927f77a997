"""The honest loop end to end: `w2sbench serve` on a real task, examples/agent_loop.py talking to it over MCP
(stdio, through `w2sbench serve mcp`), then every finished job nominated and `serve finals` run, so that each
method's released score, true validation score (the operator's log) and final part score can be compared.

The campaign is section 11's: rotten_tomatoes in the tiny setting, splits 100 / 300 / 1,000 (500 validation,
500 final examples), two seeds each, the hf backend.

    python benchmarks/serve_loop.py --rule ladder --out benchmarks/serve-loop-DATE.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from w2sbench.serve.campaign import token_sha256  # noqa: E402
from w2sbench.serve.http_api import HttpClient  # noqa: E402

TOKEN = "loop-token"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rule", default="ladder", choices=("ladder", "paired_ladder", "noisy_ladder"))
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="w2sbench-serve-loop-"))
    campaign = work / "campaign.yaml"
    campaign.write_text(
        json.dumps(
            {
                "name": "loop",
                "tasks": {"development": ["rotten_tomatoes"], "limit": "100,300,1000"},
                "seeds": 2,
                "baseline_seeds": 2,
                "backend": "hf",
                "rule": {"kind": args.rule, "step": 0.02},
                "agents": {"loop": {"token_sha256": token_sha256(TOKEN), "evaluations": 50, "finals": 20}},
                "state": str(work / "state"),
                "listen": {"host": "127.0.0.1", "port": 0},
            }
        )
    )
    w2sbench = [sys.executable, "-m", "w2sbench"]
    env = {**os.environ, "W2SBENCH_TOKEN": TOKEN}
    service = subprocess.Popen(
        [*w2sbench, "serve", str(campaign)], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    started = time.monotonic()
    try:
        url = None
        for line in service.stderr:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/api", line)
            if found:
                url = found.group(1)
                threading.Thread(target=service.stderr.read, daemon=True).start()  # drained: a full pipe stops it
                break
        if url is None:
            raise SystemExit("the service did not start")
        loop = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "agent_loop.py"), "--url", url, "--trials", str(args.trials)],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        print(loop.stdout, loop.stderr[-2000:], sep="\n")
        if loop.returncode != 0:
            raise SystemExit(f"the agent loop failed ({loop.returncode})")
        loop_s = time.monotonic() - started
        client = HttpClient(url, TOKEN)
        jobs = [j for j in client.call("history")["jobs"] if j["status"] == "done"]
        for j in jobs:
            client.call("nominate_final", {"job": j["job"]})
    finally:
        os.killpg(service.pid, 15)
        service.wait(timeout=60)
    subprocess.run([*w2sbench, "serve", "finals", str(campaign)], check=True, timeout=3600)
    events = [json.loads(x) for x in (work / "state" / "log.jsonl").read_text().splitlines() if x.strip()]
    true = {e["job"]: e["true_score"] for e in events if e["event"] == "job_finished"}
    final = {e["job"]: e["pooled_pgr"] for e in events if e["event"] == "final"}
    rows = [
        {
            "method": j["method"],
            "released": j["released_score"],
            "validation": round(true[j["job"]], 3),
            "final": round(final[j["job"]], 3),
        }
        for j in jobs
    ]
    from scipy.stats import spearmanr

    out = {
        "rule": args.rule,
        "loop_s": round(loop_s, 1),
        "jobs": rows,
        "spearman_validation_final": round(
            float(spearmanr([r["validation"] for r in rows], [r["final"] for r in rows]).statistic), 3
        ),
        "spearman_released_final": round(
            float(spearmanr([r["released"] for r in rows], [r["final"] for r in rows]).statistic), 3
        ),
    }
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
