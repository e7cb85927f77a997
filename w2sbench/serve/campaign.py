"""A campaign: what `w2sbench serve` offers its agents, read from one YAML file (schemas/campaign.schema.json).

    name: w2s-sprint
    setting: tiny
    tasks: {development: [rotten_tomatoes, vader_nyt], heldout: [election_tweets]}
    validation_fraction: 0.5        # of each development task's test split: the part answers come from
    seed: 0                         # which examples form that part (fixed for the campaign)
    rule: {kind: ladder, step: 0.02}  # or paired_ladder (release only on a paired one-sided win), or
                                      # noisy_ladder (a noisy threshold, a budget of releases: ladder.py)
    job_timeout_s: 1200               # the most one job may run, all its tasks and seeds together
                                      # (default: method_timeout_s, else the setting's, x tasks x seeds)
    workers: 1                        # jobs run at once (agents are served in turn)
    n_boot: 200                       # bootstrap draws of the jobs' intervals (default 200)
    # and any knob of a run under the name it has everywhere (RunSpec: w2sbench/engine/spec.py): method_seeds,
    # baseline_seeds, limit, include_path, backend, tensor_parallel_size, method_timeout_s (per method seed),
    # method_quota, allow_cpu, executor, ray_address, cache; `seeds`, tasks.limit and tasks.include are
    # older names of method_seeds, limit and include_path
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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.spec import RunSpec
from ..errors import ConfigError
from ..schema_io import read_yaml, validate

DEFAULTS = {
    "validation_fraction": 0.5,
    "seed": 0,
    "max_code_bytes": 256 * 1024,
    "workers": 1,
    "calls_per_agent": 4,
}
# the knobs of a run a campaign file may set at its top level (RunSpec's names), and their defaults here
RUN_KNOBS = (
    *("setting", "method_seeds", "seeds", "baseline_seeds", "limit", "include_path", "backend"),
    *("tensor_parallel_size", "n_boot", "method_timeout_s", "method_quota", "allow_cpu", "executor"),
    *("ray_address", "cache"),
)
RUN_DEFAULTS = {"setting": "tiny", "n_boot": 200}
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
    development: tuple[str, ...]
    heldout: tuple[str, ...]
    agents: dict[str, Agent]
    rule: dict[str, Any]
    state: Path
    spec: RunSpec = field(default_factory=RunSpec)  # how every job and final runs (its tasks and method per run)
    validation_fraction: float = 0.5
    seed: int = 0
    job_timeout_s: float | None = None
    max_code_bytes: int = 256 * 1024
    finals_visible: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    probe_timeout_s: float = 60.0
    probe_memory_gib: float = 4.0
    calls_per_agent: int = 4
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def setting(self) -> str:
        return str(self.spec.setting)

    def run_spec(
        self,
        tasks: Sequence[str],
        parts: dict[str, tuple[int, ...]] | None = None,
        deadline: float | None = None,
        methods: tuple = (),
    ) -> RunSpec:
        """The campaign's run on `tasks` (same options, hence the same cache keys, for every job), each task's
        test split cut to `parts[task]` where given, its method units ended by `deadline` (time.time())."""
        options = replace(self.spec.options, test_parts=parts or None, method_deadline=deadline)
        return replace(self.spec, tasks=tuple(tasks), methods=tuple(methods) or self.spec.methods, options=options)

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
    knobs = {**RUN_DEFAULTS, **{k: doc[k] for k in RUN_KNOBS if k in doc}}
    for old, new in (("limit", "limit"), ("include", "include_path")):  # the older names, under tasks
        if old in doc["tasks"]:
            if new in doc:
                raise ConfigError(where, f"tasks.{old}", f"give {new} once, at the top level (this is its older name)")
            knobs[new] = doc["tasks"][old]
    if "include_path" in knobs:
        knobs["include_path"] = [str(path.resolve().parent / p) for p in knobs["include_path"]]
    return Campaign(
        path=where,
        name=doc["name"],
        development=tuple(doc["tasks"]["development"]),
        heldout=tuple(doc["tasks"].get("heldout", [])),
        agents=agents,
        rule=rule,
        state=state,
        spec=RunSpec.build(where, knobs),
        validation_fraction=float(merged["validation_fraction"]),
        seed=int(merged["seed"]),
        job_timeout_s=doc.get("job_timeout_s"),
        max_code_bytes=int(merged["max_code_bytes"]),
        finals_visible=bool(doc.get("finals", {}).get("visible_before_close", False)),
        host=listen.get("host", "127.0.0.1"),
        port=int(listen.get("port", 8765)),
        workers=int(merged["workers"]),
        probe_timeout_s=float(probe["timeout_s"]),
        probe_memory_gib=float(probe["memory_gib"]),
        calls_per_agent=int(merged["calls_per_agent"]),
        raw=doc,
    )
