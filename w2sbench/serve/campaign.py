"""A campaign: what `w2sbench serve` offers its agents, read from one YAML file (schemas/campaign.schema.json).

    name: w2s-sprint
    setting: tiny
    tasks: {development: [rotten_tomatoes, vader_nyt], heldout: [election_tweets]}
    validation_fraction: 0.5        # of each development task's test split: the part answers come from
    seed: 0                         # which examples form that part (fixed for the campaign)
    rule: {kind: ladder, step: 0.02}  # or paired_ladder (release only on a paired one-sided win), or
                                      # noisy_ladder (a noisy threshold, a budget of releases: ladder.py)
    method_timeout_s: 1200            # the most one job may run, all its tasks and seeds together
                                      # (default: the setting's limit per method seed x tasks x seeds)
    workers: 1                        # jobs run at once (agents are served in turn)
    probe: {timeout_s: 60, memory_gib: 4}   # the sandboxed probe that describes an agent's code
    calls_per_agent: 4                # concurrent HTTP calls an agent may have open
    agents:
      alice: {token_sha256: <sha256 of the token>, evaluations: 50, compute_seconds: 36000, finals: 2}
    state: ./campaign-state           # queue, budgets, released answers, the log, stored code
    listen: {host: 127.0.0.1, port: 8765}
    executor: ray                     # optional: jobs' units on a Ray cluster (ray_address: HOST:6379)

Tokens are never written in the file, only their SHA-256 (`w2sbench serve token` makes one). The test split
of every development task is cut once, by `seed`, into a validation part (what answers come from) and a final
part (what finals use, never an answer); held-out tasks are touched only by finals.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..validation import read_yaml, validate

DEFAULTS = {
    "setting": "tiny",
    "validation_fraction": 0.5,
    "seed": 0,
    "backend": "auto",
    "max_code_bytes": 256 * 1024,
    "executor": "inprocess",
    "workers": 1,
    "calls_per_agent": 4,
}
PROBE_DEFAULTS = {"timeout_s": 60.0, "memory_gib": 4.0}
AGENT_DEFAULTS = {"evaluations": 50, "compute_seconds": 10 * 3600.0, "finals": 2}
RULE_DEFAULTS = {"kind": "ladder", "step": 0.02}
NOISY_DEFAULTS = {"epsilon": 2.0, "releases": 20}  # noisy_ladder: privacy loss per release, releases per agent
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Agent:
    name: str
    token_sha256: str
    evaluations: int
    compute_seconds: float
    finals: int


@dataclass(frozen=True)
class Campaign:
    path: str  # the file it was read from (named in errors)
    name: str
    setting: str
    development: tuple[str, ...]
    heldout: tuple[str, ...]
    agents: dict[str, Agent]
    rule: dict[str, Any]
    state: Path
    validation_fraction: float = 0.5
    seed: int = 0
    limit: str | None = None
    include: tuple[str, ...] = ()
    seeds: int | None = None
    baseline_seeds: int | None = None
    backend: str = "auto"
    method_timeout_s: float | None = None
    max_code_bytes: int = 256 * 1024
    finals_visible: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    executor: str = "inprocess"
    ray_address: str | None = None
    cache: str | None = None
    workers: int = 1
    probe_timeout_s: float = 60.0
    probe_memory_gib: float = 4.0
    calls_per_agent: int = 4
    raw: dict = field(default_factory=dict, repr=False)

    def agent_for(self, token: str | None) -> Agent | None:
        """The agent whose token this is (compared in constant time), or None."""
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for agent in self.agents.values():
            if hmac.compare_digest(agent.token_sha256, digest):
                found = agent
        return found

    def validation_part(self, task: str, n_test: int) -> np.ndarray:
        """The sorted indices of a development task's test split that answers come from (fixed by the
        campaign's seed and the task's name); the rest is the final part."""
        digest = hashlib.sha256(f"{self.seed}:{task}".encode()).digest()
        order = np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(n_test)
        k = max(1, min(n_test - 1, round(self.validation_fraction * n_test)))
        return np.sort(order[:k])

    def final_part(self, task: str, n_test: int) -> np.ndarray:
        mask = np.ones(n_test, dtype=bool)
        mask[self.validation_part(task, n_test)] = False
        return np.flatnonzero(mask)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file; a problem is one ConfigError naming the file and the field."""
    path = Path(path)
    doc = read_yaml(path)
    where = str(path)
    validate(doc, "campaign", where)
    overlap = set(doc["tasks"]["development"]) & set(doc["tasks"].get("heldout", []))
    if overlap:
        raise ConfigError(where, "tasks.heldout", f"{sorted(overlap)[0]!r} is also a development task")
    tokens = [a["token_sha256"] for a in doc["agents"].values()]
    if len(set(tokens)) < len(tokens):
        raise ConfigError(where, "agents", "two agents share a token")
    rule = {**RULE_DEFAULTS, **doc.get("rule", {})}
    if rule["kind"] == "noisy_ladder":
        rule = {**NOISY_DEFAULTS, **rule}
    elif set(rule) & set(NOISY_DEFAULTS):
        raise ConfigError(where, "rule", f"{sorted(set(rule) & set(NOISY_DEFAULTS))[0]} is for kind noisy_ladder")
    probe = {**PROBE_DEFAULTS, **doc.get("probe", {})}
    agents = {name: Agent(name=name, **{**AGENT_DEFAULTS, **spec}) for name, spec in sorted(doc["agents"].items())}
    merged = {**DEFAULTS, **doc}
    listen = doc.get("listen", {})
    state = Path(doc["state"])
    if not state.is_absolute():
        state = path.resolve().parent / state
    return Campaign(
        path=where,
        name=doc["name"],
        setting=merged["setting"],
        development=tuple(doc["tasks"]["development"]),
        heldout=tuple(doc["tasks"].get("heldout", [])),
        agents=agents,
        rule=rule,
        state=state,
        validation_fraction=float(merged["validation_fraction"]),
        seed=int(merged["seed"]),
        limit=doc["tasks"].get("limit"),
        include=tuple(str(path.resolve().parent / p) for p in doc["tasks"].get("include", [])),
        seeds=doc.get("seeds"),
        baseline_seeds=doc.get("baseline_seeds"),
        backend=merged["backend"],
        method_timeout_s=doc.get("method_timeout_s"),
        max_code_bytes=int(merged["max_code_bytes"]),
        finals_visible=bool(doc.get("finals", {}).get("visible_before_close", False)),
        host=listen.get("host", "127.0.0.1"),
        port=int(listen.get("port", 8765)),
        executor=merged["executor"],
        ray_address=doc.get("ray_address"),
        cache=doc.get("cache"),
        workers=int(merged["workers"]),
        probe_timeout_s=float(probe["timeout_s"]),
        probe_memory_gib=float(probe["memory_gib"]),
        calls_per_agent=int(merged["calls_per_agent"]),
        raw=doc,
    )
