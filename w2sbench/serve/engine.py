"""The scoring service's engine: the tools an agent calls, one queue of jobs, and the answers it may see.

Every call goes through `Service.call(token, tool, arguments)`: the token names the agent (or the call is
refused), the tool runs, and the call is logged with its arguments, answer and budget before and after. Both
faces (HTTP, MCP) are thin layers over it, so what an agent can learn is decided here only:

- answers come from the validation part of the development tasks (campaign.validation_part), through the
  release rule (ladder.py), as one pooled PGR rounded to the step, with the method's flag names;
- never counts, histograms, per-task, per-example or per-seed numbers, and no harness error text (a job
  that fails in the harness says so; only the method's own error line is passed on);
- an agent sees only its own jobs; the final part and the held-out tasks are touched by finals alone.

Jobs run one at a time in a worker thread through the ordinary pipeline (`api.evaluate`), with the
method in its sealed sandbox; the agent's code is never imported here (isolation.probe).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MethodFailed, W2SError
from ..isolation.described import DescriptionRejected, stand_in
from ..isolation.resolve import describe
from . import ladder
from .campaign import Campaign
from .state import State

TOOLS = ("describe", "submit_method", "job", "budget", "history", "nominate_final", "devkit")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,3}$")
MAX_FILES = 32
DEVKIT_PAGE = 500

METHOD_API = """\
Write one Python file (sent as __init__.py) that defines one subclass of w2sbench.methods.Method or
LossMethod with a lower-case `name`. Hyperparameters are annotated class fields with defaults
(`aux_coef: float = 0.5`); submit_method's `hyperparameters` overrides them.
- LossMethod: override targets(ctx) -> (soft targets on train_unlabel, per-example weights or None) and/or
  loss(logits, weak_probs, step_frac) -> a torch scalar; the fixed trainer trains the strong model with it.
- Method: override run(ctx) -> p(label=1) for every test text.
ctx holds: unlabel_texts, test_texts, weak_unlabel, weak_test (the weak model's soft labels),
strong_features(split), train_strong(targets, loss_fn=None, weights=None, subset=None) -> student with
.predict(split), label_probs(prompts, role), zero_shot(split, role), generate(prompts, max_tokens, role),
recipe, rng. No ground-truth label of train_unlabel or test exists in the method's process; it runs in a
sandbox with no network and no task data."""


class ToolError(W2SError):
    """A call the service refuses: one line for the agent (and an HTTP status for the HTTP face)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Service:
    def __init__(self, campaign: Campaign, run_jobs: bool = True):
        from ..isolation import sandbox

        why = sandbox.unavailable_reason()
        if why:
            raise W2SError(f"w2sbench serve runs every method in the sandbox, which cannot start here ({why})")
        self.campaign = campaign
        self.state = State(campaign.state)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._devkit_lock = threading.Lock()
        requeued = self.state.requeue_interrupted()
        self.state.log("start", campaign=campaign.name, requeued=requeued, pid=os.getpid())
        self.worker: threading.Thread | None = None
        if run_jobs:
            self.worker = threading.Thread(target=self._work, name="w2sbench-serve-jobs", daemon=True)
            self.worker.start()

    # ---- the one entry ------------------------------------------------------------------------------------
    def call(self, token: str | None, tool: str, arguments: dict | None = None) -> dict:
        agent = self.campaign.agent_for(token)
        arguments = dict(arguments or {})
        logged_args = {
            k: (v if k != "files" else sorted(v) if isinstance(v, dict) else "?") for k, v in arguments.items()
        }
        if agent is None:
            self.state.log("refused", tool=tool, reason="unknown token")
            raise ToolError("unknown or missing token", 401)
        if tool not in TOOLS:
            self.state.log("refused", agent=agent.name, tool=tool, reason="unknown tool")
            raise ToolError(f"unknown tool {tool!r}; tools: {', '.join(TOOLS)}", 404)
        before = self._left(agent.name)
        handler = getattr(self, f"_{tool}")
        try:
            inspect.signature(handler).bind(agent, **arguments)
        except TypeError as e:
            self.state.log("refused", agent=agent.name, tool=tool, arguments=logged_args, reason=str(e))
            raise ToolError(f"{tool}: bad arguments ({e})") from None
        try:
            answer = handler(agent, **arguments)
        except ToolError as e:
            self.state.log("refused", agent=agent.name, tool=tool, arguments=logged_args, reason=str(e))
            raise
        after = self._left(agent.name)
        shown = answer if tool != "devkit" else {k: v for k, v in answer.items() if k != "rows"}
        self.state.log(
            "call",
            agent=agent.name,
            tool=tool,
            arguments=logged_args,
            answer=shown,
            budget_before=before,
            budget_after=after,
        )
        return answer

    # ---- tools --------------------------------------------------------------------------------------------
    def _describe(self, agent) -> dict:
        c = self.campaign
        return {
            "campaign": c.name,
            "setting": c.setting,
            "development_tasks": [self._task_card(t) for t in c.development],
            "heldout_tasks": list(c.heldout) if c.heldout else [],
            "rule": {**c.rule, "score": "pooled PGR over the development tasks' validation parts"},
            "method_api": METHOD_API,
            "max_code_bytes": c.max_code_bytes,
            "budget": self._left(agent.name),
        }

    def _budget(self, agent) -> dict:
        return self._left(agent.name)

    def _left(self, agent_name: str) -> dict:
        agent = self.campaign.agents[agent_name]
        row = self.state.agent_row(agent_name)
        nominated = self.state.query("SELECT COUNT(*) AS n FROM nominations WHERE agent = ?", agent_name)[0]["n"]
        return {
            "evaluations_left": max(0, agent.evaluations - row["evaluations_used"]),
            "compute_seconds_left": round(max(0.0, agent.compute_seconds - row["compute_used"]), 1),
            "finals_left": max(0, agent.finals - nominated),
        }

    def _submit_method(self, agent, files: dict, hyperparameters: dict | None = None, class_name: str = "") -> dict:
        if not isinstance(hyperparameters or {}, dict) or not isinstance(class_name, str):
            raise ToolError("hyperparameters must be an object of name: value, class_name a string")
        folder = self._store_code(files)
        try:
            cls = describe({"kind": "folder", "path": str(folder)}, class_name or None)
            description = cls.__w2s_described__[0]
            method = cls(**(hyperparameters or {}))
        except DescriptionRejected as e:
            raise ToolError(f"the method was not accepted: {e}") from None
        except W2SError as e:  # a hyperparameter the method does not declare, or of the wrong type
            raise ToolError(str(e)) from None
        job_id = uuid.uuid4().hex[:12]
        budget = self._left(agent.name)
        if budget["evaluations_left"] <= 0 or budget["compute_seconds_left"] <= 0:
            raise ToolError("budget exhausted: no evaluations or compute seconds left", 429)
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, seq, agent, status, method, description, hyperparameters, code_sha256,"
                " submitted)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    self.state.next_seq(db),
                    agent.name,
                    method.run_name,
                    json.dumps(description),
                    json.dumps(method.hyperparameter_values(), sort_keys=True),
                    folder.name,
                    time.time(),
                ),
            )
            db.execute("UPDATE agents SET evaluations_used = evaluations_used + 1 WHERE name = ?", (agent.name,))
        self._wake.set()
        return {"job": job_id, "status": "queued", "method": method.run_name, "code_sha256": folder.name}

    def _store_code(self, files: Any) -> Path:
        if not isinstance(files, dict) or not files or len(files) > MAX_FILES:
            raise ToolError(f"files: give 1 to {MAX_FILES} files as {{name: text}}, with __init__.py among them")
        if "__init__.py" not in files:
            raise ToolError("files: the method's entry file must be named __init__.py")
        total = 0
        for name, text in files.items():
            if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or ".." in name.split("/"):
                raise ToolError(f"files: {str(name)[:80]!r} is not a plain relative file name")
            if not isinstance(text, str):
                raise ToolError(f"files: {name}: the content must be text")
            total += len(text.encode("utf-8"))
        if total > self.campaign.max_code_bytes:
            raise ToolError(f"files: {total} bytes of code, the campaign allows {self.campaign.max_code_bytes}")
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name].encode("utf-8")).digest())
        folder = self.state.folder / "code" / digest.hexdigest()[:16]
        if not folder.is_dir():
            tmp = folder.with_name(folder.name + f".tmp{uuid.uuid4().hex[:6]}")
            for name, text in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(text, encoding="utf-8")
            try:
                tmp.rename(folder)
            except OSError:  # stored meanwhile by an identical submission
                pass
        return folder

    def _job(self, agent, job: str) -> dict:
        return self._job_view(self._own_job(agent, job))

    def _own_job(self, agent, job: Any):
        rows = self.state.query("SELECT * FROM jobs WHERE id = ? AND agent = ?", str(job), agent.name)
        if not rows:  # someone else's job reads exactly like a missing one
            raise ToolError(f"no job {str(job)[:40]!r} of yours", 404)
        return rows[0]

    def _job_view(self, row) -> dict:
        view = {"job": row["id"], "method": row["method"], "status": row["status"], "submitted": row["submitted"]}
        if row["status"] == "queued":
            ahead = self.state.query(
                "SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running') AND seq < ?", row["seq"]
            )[0]["n"]
            view["jobs_ahead"] = ahead
        if row["status"] == "done":
            view["released_score"] = row["released"]
            view["new_best"] = bool(row["new_best"])
            view["flags"] = json.loads(row["flags"] or "[]")
        if row["status"] == "failed":
            view["reason"] = row["reason"]
        if row["compute_s"] is not None:
            view["compute_seconds"] = round(row["compute_s"], 1)
        return view

    def _history(self, agent) -> dict:
        rows = self.state.query("SELECT * FROM jobs WHERE agent = ? ORDER BY seq", agent.name)
        best = self.state.agent_row(agent.name)["best_released"]
        return {"jobs": [self._job_view(r) for r in rows], "best_released_score": best}

    def _nominate_final(self, agent, job: str) -> dict:
        row = self._own_job(agent, job)
        if row["status"] != "done":
            raise ToolError(f"job {row['id']} is {row['status']}: only a finished job can be nominated")
        with self.state.transaction() as db:
            taken = [r["job"] for r in db.execute("SELECT job FROM nominations WHERE agent = ?", (agent.name,))]
            if row["id"] not in taken:
                if len(taken) >= agent.finals:
                    raise ToolError(f"you have nominated {len(taken)} finals, the campaign allows {agent.finals}", 429)
                db.execute("INSERT INTO nominations VALUES (?, ?, ?)", (agent.name, row["id"], time.time()))
        nominated = [r["job"] for r in self.state.query("SELECT job FROM nominations WHERE agent = ?", agent.name)]
        out: dict[str, Any] = {"nominated": nominated}
        if self.campaign.finals_visible:
            done = {r["job"]: json.loads(r["result"]) for r in self.state.query("SELECT * FROM finals")}
            out["finals"] = {j: done[j]["released"] for j in nominated if j in done}
        return out

    def _devkit(self, agent, task: str, part: str = "train_label", offset: int = 0, limit: int = DEVKIT_PAGE) -> dict:
        """What an agent may hold: train_label texts with labels; train_unlabel and validation texts without
        labels; the weak model's soft labels (first baseline seed) on the latter two."""
        if task not in self.campaign.development:
            raise ToolError(f"devkit: {task!r} is not a development task of this campaign", 404)
        parts = ("train_label", "train_unlabel", "validation")
        if part not in parts:
            raise ToolError(f"devkit: part must be one of {', '.join(parts)}")
        if not (isinstance(offset, int) and isinstance(limit, int) and offset >= 0 and 0 < limit <= DEVKIT_PAGE):
            raise ToolError(f"devkit: offset >= 0 and 0 < limit <= {DEVKIT_PAGE}")
        rows = self._devkit_rows(task)[part]
        return {"task": task, "part": part, "total": len(rows), "offset": offset, "rows": rows[offset : offset + limit]}

    # ---- the queue ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.worker is not None:
            self.worker.join(timeout=5)

    def _work(self) -> None:
        start = time.monotonic()
        try:
            warm_shared_stages(self.campaign)
            self.state.log("warm", seconds=round(time.monotonic() - start, 1))
        except Exception as e:  # the jobs will say so; the operator reads why here
            self.state.log("warm_error", error=f"{type(e).__name__}: {e}")
        while not self._stop.is_set():
            # Fair between agents: the queued job of the agent that has started the fewest jobs, oldest first.
            rows = self.state.query(
                "SELECT j.id FROM jobs j WHERE j.status = 'queued' ORDER BY (SELECT COUNT(*) FROM jobs k"
                " WHERE k.agent = j.agent AND k.status != 'queued'), j.seq LIMIT 1"
            )
            if not rows:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.run_job(rows[0]["id"])

    def run_job(self, job_id: str) -> None:
        with self.state.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'running', started = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), job_id),
            )
        row = self.state.query("SELECT * FROM jobs WHERE id = ?", job_id)[0]
        self.state.log(
            "job_started", agent=row["agent"], job=job_id, code_sha256=row["code_sha256"], attempt=row["attempts"]
        )
        start = time.monotonic()
        try:
            result = self._run(row, self.campaign.development)
            outcome = self._score(row, result)
        except MethodFailed as e:  # the method's own failure (its only method): the agent may read its line
            outcome = {"status": "failed", "reason": self._method_line(str(e))}
        except Exception as e:  # the harness's own failure: the agent learns that, the operator why
            outcome = {"status": "failed", "reason": "the harness failed on this job (the operator's log says why)"}
            self.state.log("job_error", job=job_id, error=f"{type(e).__name__}: {e}")
        self._finish(row, outcome, time.monotonic() - start)

    def _run(self, row, tasks: tuple[str, ...]) -> dict:
        from ..api import evaluate

        c = self.campaign
        description = json.loads(row["description"])
        method = stand_in(
            description, {"kind": "folder", "path": str(self.state.folder / "code" / row["code_sha256"])}
        )(**json.loads(row["hyperparameters"]))
        result = evaluate(
            [method],
            list(tasks),
            c.setting,
            seeds=c.seeds,
            baseline_seeds=c.baseline_seeds,
            limit=c.limit,
            executor=c.executor,
            ray_address=c.ray_address,
            backend=c.backend,
            n_boot=200,
            method_timeout=c.method_timeout_s,
            include_path=c.include,
            cache=c.cache,
        )
        return result.to_dict() if hasattr(result, "to_dict") else result

    def _score(self, row, result: dict) -> dict:
        failed = (result.get("failed_methods") or {}).get(row["method"])
        if failed is not None:
            return {"status": "failed", "reason": self._method_line(failed)}
        score, correct, weights, gap = validation_score(self.campaign, result, row["method"])
        flags = sorted(
            {
                f.get("flag", f.get("name", "flag")) if isinstance(f, dict) else str(f)
                for t in self.campaign.development
                for f in result["tasks"][t]["methods"][row["method"]].get("flags", [])
            }
        )
        return {
            "status": "done",
            "true_score": score,
            "correct": correct,
            "weights": weights,
            "gap": gap,
            "flags": flags,
            "step": effective_step(self.campaign.rule["step"], weights, gap),
        }

    def _method_line(self, line: str) -> str:
        """The pipeline's line about the method's own failure, with the service's folders left out."""
        code = str(self.state.folder / "code")
        return "the method failed: " + _one_line(re.sub(re.escape(code) + r"/[0-9a-f]+/", "", line))

    def _finish(self, row, outcome: dict, seconds: float) -> None:
        agent = row["agent"]
        with self.state.transaction() as db:
            best_row = db.execute("SELECT best_released, best_job FROM agents WHERE name = ?", (agent,)).fetchone()
            best, best_job = (best_row["best_released"], best_row["best_job"]) if best_row else (None, None)
            released = new_best = None
            if outcome["status"] == "done" and outcome["true_score"] is not None:
                decision = self._decide(outcome, best, best_job)
                released, new_best = decision.released, decision.new_best
                np.save(self.state.folder / "scores" / f"{row['id']}.npy", outcome["correct"])
                if new_best:
                    db.execute(
                        "UPDATE agents SET best_released = ?, best_job = ? WHERE name = ?", (released, row["id"], agent)
                    )
            elif outcome["status"] == "done":
                outcome = {"status": "failed", "reason": "the validation gap of this campaign is not positive"}
            db.execute(
                "UPDATE jobs SET status = ?, finished = ?, reason = ?, compute_s = ?, released = ?, new_best = ?,"
                " flags = ?, true_score = ? WHERE id = ?",
                (
                    outcome["status"],
                    time.time(),
                    outcome.get("reason"),
                    seconds,
                    released,
                    None if new_best is None else int(new_best),
                    json.dumps(outcome.get("flags", [])),
                    outcome.get("true_score"),
                    row["id"],
                ),
            )
            db.execute("UPDATE agents SET compute_used = compute_used + ? WHERE name = ?", (seconds, agent))
        self.state.log(
            "job_finished",
            agent=agent,
            job=row["id"],
            method=row["method"],
            code_sha256=row["code_sha256"],
            status=outcome["status"],
            reason=outcome.get("reason"),
            released=released,
            true_score=outcome.get("true_score"),
            flags=outcome.get("flags", []),
            step=outcome.get("step"),
            compute_s=round(seconds, 2),
        )

    def _decide(self, outcome: dict, best: float | None, best_job: str | None) -> ladder.Decision:
        rule = self.campaign.rule
        if rule["kind"] == "ladder":
            return ladder.fixed_step(outcome["true_score"], best, outcome["step"])
        diff = None
        if best_job is not None:
            previous = np.load(self.state.folder / "scores" / f"{best_job}.npy")
            diff = outcome["correct"] - previous
        return ladder.paired(outcome["true_score"], best, outcome["step"], diff, outcome["weights"], outcome["gap"])

    # ---- what an agent may hold locally ------------------------------------------------------------------------
    def _task_card(self, name: str) -> dict:
        from ..tasks import load_task

        task = load_task(name, [Path(p) for p in self.campaign.include])
        rows = self._devkit_rows(name)
        return {
            "name": name,
            "description": getattr(task, "description", "") or "",
            "sizes": {part: len(v) for part, v in rows.items()},
        }

    def _devkit_rows(self, task_name: str) -> dict[str, list[dict]]:
        path = self.state.folder / "devkit" / f"{task_name}.json"
        with self._devkit_lock:
            if not path.is_file():
                from ..validation import write_json

                write_json(build_devkit(self.campaign, task_name), path)
            return json.loads(path.read_text())


def _pipeline(campaign: Campaign, task_names: list[str]):
    """A pipeline over `task_names` with the options every job of the campaign runs with (same cache keys)."""
    from ..api import parse_limit
    from ..cache import ArtifactStore
    from ..engine.pipeline import Pipeline, RunOptions
    from ..settings import load_setting
    from ..tasks import load_task

    options = RunOptions(
        backend=campaign.backend,
        sizes=parse_limit(campaign.limit),
        baseline_seeds=campaign.baseline_seeds,
        method_seeds=campaign.seeds,
    )
    store = ArtifactStore(Path(campaign.cache)) if campaign.cache else None
    tasks = [load_task(name, [Path(p) for p in campaign.include]) for name in task_names]
    return Pipeline(load_setting(campaign.setting), tasks, options, store)


def warm_shared_stages(campaign: Campaign) -> None:
    """The stages every job shares (features, weak and ceiling of each development task), computed before
    the first job, so that no agent's compute budget pays for them."""
    pipe = _pipeline(campaign, list(campaign.development))
    for role in ("weak", "strong"):
        pipe.compute_features(role)
    for task in pipe.tasks:
        for seed in range(pipe.baseline_seeds):
            pipe.weak_labels(task, seed)
            pipe.ceiling(task, seed)


def build_devkit(campaign: Campaign, task_name: str) -> dict[str, list[dict]]:
    """The development kit of one task: train_label with labels, train_unlabel and the validation part
    without, and the weak model's soft labels (its first baseline seed) on the latter two."""
    pipe = _pipeline(campaign, [task_name])
    task = pipe.tasks[0]
    splits = pipe.splits(task)
    weak = pipe.weak_labels(task, 0)
    part = campaign.validation_part(task.name, len(splits.test))
    return {
        "train_label": [{"text": e.text, "label": int(e.label)} for e in splits.train_label],
        "train_unlabel": [
            {"text": e.text, "weak_p1": round(float(p), 6)} for e, p in zip(splits.train_unlabel, weak["train_unlabel"])
        ],
        "validation": [{"text": splits.test[i].text, "weak_p1": round(float(weak["test"][i]), 6)} for i in part],
    }


def validation_score(
    campaign: Campaign, result: dict, method: str
) -> tuple[float | None, np.ndarray, np.ndarray, float]:
    """Pooled PGR of `method` on the validation parts of the development tasks (sum over tasks of w2s - weak
    over the sum of ceiling - weak, each group averaged over its seeds), with the per-example w2s correctness
    (seed mean), each example's weight in the pooled accuracy, and the pooled gap."""
    from ..scoring import decode_correct

    diffs = gaps = 0.0
    correct, weights = [], []
    tasks = campaign.development
    for name in tasks:
        doc = result["tasks"][name]
        n = doc["n"]["test"]
        part = campaign.validation_part(name, n)
        weak, ceiling, w2s = (
            decode_correct(g["correct"], n)[:, part].mean(axis=0)
            for g in (doc["weak"], doc["ceiling"], doc["methods"][method]["w2s"])
        )
        diffs += float(w2s.mean() - weak.mean())
        gaps += float(ceiling.mean() - weak.mean())
        correct.append(w2s)
        weights.append(np.full(len(part), 1.0 / (len(tasks) * len(part))))
    score = diffs / gaps if gaps > 0 else None
    return score, np.concatenate(correct), np.concatenate(weights), gaps / len(tasks)


def effective_step(step: float, weights: np.ndarray, gap: float) -> float:
    """The campaign's step, raised where needed to twice what one validation example can move the score
    (its weight over the gap, in PGR), rounded up to 0.001: below that, a one-example flip could cross a
    rounding boundary and be seen. Fixed for a campaign (the weak and ceiling runs are)."""
    move = float(np.max(weights)) / gap if gap > 0 else 0.0
    return max(step, math.ceil(2 * move * 1000 - 1e-9) / 1000)


def final_score(campaign: Campaign, result: dict, method: str) -> dict:
    """Per task and pooled PGR on what finals use: the final part of each development task, every test
    example of each held-out task."""
    from ..scoring import decode_correct

    per_task, diffs, gaps = {}, 0.0, 0.0
    for name in (*campaign.development, *campaign.heldout):
        doc = result["tasks"][name]
        n = doc["n"]["test"]
        part = campaign.final_part(name, n) if name in campaign.development else np.arange(n)
        accs = [
            float(decode_correct(g["correct"], n)[:, part].mean())
            for g in (doc["weak"], doc["ceiling"], doc["methods"][method]["w2s"])
        ]
        gap = accs[1] - accs[0]
        per_task[name] = {
            "examples": int(len(part)),
            "weak": accs[0],
            "ceiling": accs[1],
            "w2s": accs[2],
            "pgr": (accs[2] - accs[0]) / gap if gap > 0 else None,
            "split": "development (final part)" if name in campaign.development else "held-out",
        }
        diffs, gaps = diffs + accs[2] - accs[0], gaps + gap
    return {"tasks": per_task, "pooled_pgr": diffs / gaps if gaps > 0 else None}


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line[:limit] + ("..." if len(line) > limit else "")
