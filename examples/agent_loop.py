"""An honest scripted agent: it talks to `w2sbench serve` over MCP (stdio), as an agent framework would, tries
a few confidence-weighted losses, keeps the best by the released score and nominates it for the finals.

    W2SBENCH_TOKEN=... python examples/agent_loop.py --url http://127.0.0.1:8765 [--trials 6]

No language model: the "ideas" are a fixed list of hyperparameters for one loss (the auxiliary-confidence
loss of Burns et al. 2023, written out below). What it shows is the loop and that a released score tracks
the final one when nobody hunts the validation examples.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

METHOD = '''
import torch
from w2sbench.methods import LossMethod


class AuxConf(LossMethod):
    """Cross-entropy to a mix of the weak labels and the student's own predictions hardened at 0.5:
    target = (1 - a) * w + a * 1[p1 > p0], a ramped up linearly over the first `warmup` of training."""

    name = "auxconf"
    alpha: float = 0.5
    warmup: float = 0.2

    def loss(self, logits, weak_probs, step_frac):
        a = self.alpha * (min(1.0, step_frac / self.warmup) if self.warmup > 0 else 1.0)
        logp = torch.log_softmax(logits, dim=-1)  # [b, 2]
        hard = (logp.detach()[:, 1] > logp.detach()[:, 0]).float()
        target = (1 - a) * weak_probs + a * hard
        return -(1 - target) * logp[:, 0] - target * logp[:, 1]  # per example
'''

IDEAS = [
    {"alpha": a, "warmup": w} for a, w in ((0.0, 0.2), (0.25, 0.2), (0.5, 0.2), (0.75, 0.2), (0.5, 0.5), (0.9, 0.1))
]


async def loop(url: str, trials: int) -> None:
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "w2sbench", "serve", "mcp", "--url", url], env=dict(os.environ)
    )
    async with Client(server) as c:

        async def call(tool: str, **args) -> dict:
            result = await c.call_tool(tool, args)
            if result.is_error:
                raise SystemExit(f"{tool}: {result.content[0].text}")
            return result.structured_content

        card = await call("describe")
        print(f"campaign {card['campaign']}: {[t['name'] for t in card['development_tasks']]}, budget {card['budget']}")
        best = (None, None)
        for idea in IDEAS[:trials]:
            job = (await call("submit_method", files={"__init__.py": METHOD}, hyperparameters=idea))["job"]
            while (view := await call("job", job=job))["status"] not in ("done", "failed"):
                await asyncio.sleep(1)
            print(
                f"{view['method']:<40} {view['status']:<6} released {view.get('released_score')}"
                f"{'  (new best)' if view.get('new_best') else ''}"
            )
            if view.get("new_best"):
                best = (job, view["released_score"])
        if best[0] is not None:
            print("nominated:", (await call("nominate_final", job=best[0]))["nominated"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="An honest scripted agent over MCP.")
    ap.add_argument("--url", default="http://127.0.0.1:8765")
    ap.add_argument("--trials", type=int, default=len(IDEAS))
    args = ap.parse_args()
    if not os.environ.get("W2SBENCH_TOKEN"):
        raise SystemExit("set W2SBENCH_TOKEN to the agent's token")
    asyncio.run(loop(args.url, args.trials))
