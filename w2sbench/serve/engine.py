"""The scoring service's engine: the tools an agent calls, per-agent queues of jobs, and the answers it may see.

Every call goes through `Service.call(token, tool, arguments)`: the token names the agent (or the call is
refused), the arguments are checked as plain data (nesting at most 16 deep, no lone surrogate in any
string), the tool runs, and the call is logged with its arguments, answer and budget before and after.
Both faces (HTTP, MCP) are thin layers over it, so what an agent can learn is decided here only:

- a job gives the method train_unlabel and the validation part of each development task's test split, and
  nothing of the final part (its test texts are the validation part's; engine.spec RunOptions.test_parts);
  the final part and the held-out tasks are touched by `serve finals` alone, which runs the nominated
  methods afresh;
- a finished job's answer is one pooled PGR on the validation parts, through the release rule (ladder.py),
  rounded to the step; a failed job's, one line from a fixed vocabulary (failures.py). Never counts,
  histograms, per-task, per-example or per-seed numbers, never flags, never text or numbers of the
  method's choosing. Flags, the method's own error line and what its code printed go to the operator's
  log (flags are reported at the finals, computed on what the finals score);
- budgets bound what they name: a submission that runs the agent's code is charged an evaluation before
  it runs, and compute seconds are reserved before and settled after (state.py);
- an agent sees only its own jobs, and agents are served in turn (one agent's slow job delays another's by
  at most one job's limit).

Jobs run in `workers` threads through the ordinary pipeline, with the method in its sealed sandbox; the
agent's code is never imported here (isolation.probe).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MethodFailed, W2SError
from ..isolation.described import DescriptionRejected, stand_in
from ..isolation.probe import ProbeFailed, probe
from ..isolation.quotas import GIB, Quotas
from ..methods.identity import source_of
from ..scoring import correct_matrix, pooled_pgr
from . import failures, ladder
from .campaign import Campaign
from .state import State

if TYPE_CHECKING:
    from ..engine.record import RunRecord

TOOLS = ("describe", "submit_method", "job", "budget", "history", "nominate_final", "devkit")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,3}$")
CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FILES = 32
MAX_DEPTH = 16  # of an argument's nesting (files: {name: text} is 2)
DEVKIT_PAGE = 500

METHOD_API = """\
Write one Python file (sent as __init__.py) that defines one subclass of w2sbench.methods.Method or
LossMethod with a lower-case `name` that no built-in method has. Hyperparameters are annotated class fields
with defaults (`aux_coef: float = 0.5`), named unlike anything of the method API (name, config, run, ...);
submit_method's `hyperparameters` overrides them.
- LossMethod: override targets(ctx) -> (soft targets on train_unlabel, per-example weights or None) and/or
  loss(logits, weak_probs, step_frac) -> a torch scalar; the fixed trainer trains the strong model with it.
- Method: override run(ctx) -> p(label=1) for every test text.
ctx holds: unlabel_texts, test_texts (in a job: the validation part of the task's test split, the texts the
devkit's 'validation' part lists, in that order), weak_unlabel, weak_test (the weak model's soft labels),
strong_features(split), train_strong(targets, loss_fn=None, weights=None, subset=None) -> student with
.predict(split), label_probs(prompts, role), zero_shot(split, role), generate(prompts, max_tokens, role),
recipe, rng. No ground-truth label of train_unlabel or test exists in the method's process; it runs in a
sandbox with no network and no task data."""

DEBUGGING = (
    "Debug locally: the development kit (devkit) gives train_label with labels and train_unlabel and the "
    "validation texts with the weak model's soft labels, enough to run your method with the w2sbench package "
    "on your side. A job tells you only its released score, or one line from `failures` (never your method's "
    "own error text, what it printed, or any number it chose)."
)


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
        self.job_limit_s = job_limit(campaign)
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._warm = threading.Event()
        self._devkit_lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._rng = np.random.default_rng(secrets.randbits(128))  # the noisy rule's draws: never seeded
        # Only the service that runs the jobs takes over what a dead one left (`serve finals` shares the state
        # of a live one): running jobs queued again, and reservations rebuilt from the jobs that hold them
        # (a probe that a kill -9 cut short held one that nothing would settle).
        requeued = self.state.requeue_interrupted() if run_jobs else []
        if run_jobs:
            self.state.rebuild_reservations()
        self.state.log("start", campaign=campaign.name, requeued=requeued, pid=os.getpid(), runs_jobs=run_jobs)
        self.workers: list[threading.Thread] = []
        if run_jobs:
            threading.Thread(target=self._warm_up, name="w2sbench-serve-warm", daemon=True).start()
            for i in range(campaign.workers):
                worker = threading.Thread(target=self._work, name=f"w2sbench-serve-jobs-{i}", daemon=True)
                worker.start()
                self.workers.append(worker)

    # ---- the one entry ------------------------------------------------------------------------------------
    def call(self, token: str | None, tool: str, arguments: dict | None = None) -> dict:
        agent = self.campaign.agent_for(token)
        if agent is None:
            self.state.log("refused", tool=str(tool)[:40], reason="unknown token")
            raise ToolError("unknown or missing token", 401)
        if tool not in TOOLS:
            self.state.log("refused", agent=agent.name, tool=str(tool)[:40], reason="unknown tool")
            raise ToolError(f"unknown tool {str(tool)[:40]!r}; tools: {', '.join(TOOLS)}", 404)
        if not isinstance(arguments, (dict, type(None))):
            self.state.log("refused", agent=agent.name, tool=tool, reason="arguments are not an object")
            raise ToolError(f"{tool}: the arguments must be an object of name: value")
        arguments = dict(arguments or {})
        problem = plain_data_problem(arguments)
        if problem:
            self.state.log("refused", agent=agent.name, tool=tool, reason=problem)
            raise ToolError(f"{tool}: {problem}")
        logged_args = {
            k: (v if k != "files" else sorted(v) if isinstance(v, dict) else "?") for k, v in arguments.items()
        }
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
            self.state.log(
                "refused",
                agent=agent.name,
                tool=tool,
                arguments=logged_args,
                reason=str(e),
                budget_before=before,
                budget_after=self._left(agent.name),
            )
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
            "job_time_limit_s": self.job_limit_s,
            "probe_time_limit_s": c.probe_timeout_s,
            "debugging": DEBUGGING,
            "failures": list(failures.VOCABULARY),
            "budget": self._left(agent.name),
        }

    def _budget(self, agent) -> dict:
        return self._left(agent.name)

    def _left(self, agent_name: str) -> dict:
        agent = self.campaign.agents[agent_name]
        row = self.state.agent_row(agent_name)
        nominated = self.state.query("SELECT COUNT(*) AS n FROM nominations WHERE agent = ?", agent_name)[0]["n"]
        left = {
            "evaluations_left": max(0, agent.evaluations - row["evaluations_used"]),
            "compute_seconds_left": _down(agent.compute_seconds - row["compute_used"] - row["compute_reserved"]),
            "compute_seconds_reserved": _up(row["compute_reserved"]),
            "finals_left": max(0, agent.finals - nominated),
        }
        if self.campaign.rule["kind"] == "noisy_ladder":
            left["releases_left"] = max(0, int(self.campaign.rule["releases"]) - row["releases_used"])
        return left

    def _submit_method(self, agent, files: Any, hyperparameters: Any = None, class_name: Any = "") -> dict:
        if not isinstance(hyperparameters or {}, dict) or not isinstance(class_name, str):
            raise ToolError("hyperparameters must be an object of name: value, class_name a string")
        if class_name and not CLASS_NAME.fullmatch(class_name):
            raise ToolError("class_name must be the plain name of a top-level class")
        files = self._check_files(files)
        code = code_sha256(files)
        known = self.state.query(
            "SELECT description FROM probes WHERE code_sha256 = ? AND class_name = ?", code, class_name
        )
        if known:  # described before: no code of the agent's runs for this, and a refusal costs nothing
            description = json.loads(known[0]["description"])
            method = self._configure(description, self.state.folder / "code" / code, hyperparameters)
            return self._queue(agent, method, description, code, charge=True)
        # The probe runs the agent's code: the evaluation is charged and its time reserved before it starts.
        reserved = self._reserve(agent.name, self.campaign.probe_timeout_s, evaluation=True)
        start, console, detail = time.monotonic(), [], None
        try:
            folder = self._store_code(files, code)
            quotas = Quotas(memory=int(self.campaign.probe_memory_gib * GIB))
            origin = _origin(folder)
            description = probe(
                origin, class_name or None, source_of(origin).sha256, timeout_s=reserved, quotas=quotas, console=console
            )
            refusal = self._refusal(description)
            if refusal:
                raise ToolError(refusal)
        except ProbeFailed as e:
            detail = str(e)
            if e.limit == "time":
                raise ToolError(failures.PROBE_TIME.format(round(reserved, 1))) from None
            if e.limit == "memory":
                raise ToolError(failures.PROBE_MEMORY.format(quotas.describe("memory"))) from None
            if e.limit == "ended":
                raise ToolError(failures.PROBE_ENDED) from None
            raise ToolError(failures.probe_failure(detail)) from None
        finally:
            seconds = time.monotonic() - start
            charged = self._settle(agent.name, reserved, seconds)
            self.state.log(
                "probe",
                agent=agent.name,
                code_sha256=code,
                class_name=class_name,
                seconds=round(seconds, 3),
                charged=round(charged, 3),
                error=detail,
                console=console[0][-MAX_LOGGED:] if console and console[0] else None,
            )
        with self.state.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO probes VALUES (?, ?, ?, ?)",
                (code, class_name, json.dumps(description, sort_keys=True), time.time()),
            )
        method = self._configure(description, folder, hyperparameters)
        return self._queue(agent, method, description, code, charge=False)

    def _refusal(self, description: dict) -> str | None:
        """Why a described method may not run here: a built-in's name (a job would run and be logged under
        it), or a hyperparameter that shadows the method API (`name` renamed a job, `config` broke the
        harness)."""
        from ..methods.registry import BUILTIN

        if description["name"] in BUILTIN:
            return f"the name {description['name']!r} is reserved for a built-in method: choose another"
        shadowed = sorted(h["name"] for h in description["hyperparameters"] if h["name"] in API_NAMES)
        if shadowed:
            return f"hyperparameter {shadowed[0]!r} shadows the method API ({', '.join(sorted(API_NAMES)[:6])}, ...)"
        return None

    def _configure(self, description: dict, folder: Path, hyperparameters: dict | None):
        try:
            return stand_in(description, _origin(folder))(**(hyperparameters or {}))
        except DescriptionRejected as e:
            raise ToolError(f"the method was not accepted: {e}") from None
        except W2SError as e:  # a hyperparameter the method does not declare, or of the wrong type
            raise ToolError(str(e)) from None

    def _reserve(self, agent_name: str, want: float, evaluation: bool) -> float:
        """Reserve up to `want` compute seconds (and charge one evaluation) in one transaction; refused with
        429 when nothing is left. Returns the seconds reserved: the code's time limit."""
        agent = self.campaign.agents[agent_name]
        self.state.agent_row(agent_name)
        with self.state.transaction() as db:
            row = db.execute("SELECT * FROM agents WHERE name = ?", (agent_name,)).fetchone()
            compute_left = agent.compute_seconds - row["compute_used"] - row["compute_reserved"]
            if (evaluation and agent.evaluations - row["evaluations_used"] <= 0) or compute_left <= 0:
                raise ToolError("budget exhausted: no evaluations or compute seconds left", 429)
            amount = min(float(want), compute_left)
            db.execute(
                "UPDATE agents SET evaluations_used = evaluations_used + ?, compute_reserved = compute_reserved + ?"
                " WHERE name = ?",
                (int(evaluation), amount, agent_name),
            )
        return amount

    def _settle(self, agent_name: str, reserved: float, seconds: float) -> float:
        """Charge what ran, never more than was reserved, and free the reservation. Returns the charge."""
        charged = min(max(0.0, seconds), reserved)
        with self.state.transaction() as db:
            db.execute(
                "UPDATE agents SET compute_used = compute_used + ?, compute_reserved = MAX(0, compute_reserved - ?)"
                " WHERE name = ?",
                (charged, reserved, agent_name),
            )
        return charged

    def _queue(self, agent, method, description: dict, code: str, charge: bool) -> dict:
        """Accept a job: its time limit is the least of the campaign's job limit and the compute left after
        every other reservation, reserved now (and an evaluation charged, unless the probe was)."""
        job_id = uuid.uuid4().hex[:12]
        with self.state.transaction() as db:
            db.execute("INSERT OR IGNORE INTO agents (name) VALUES (?)", (agent.name,))
            row = db.execute("SELECT * FROM agents WHERE name = ?", (agent.name,)).fetchone()
            compute_left = agent.compute_seconds - row["compute_used"] - row["compute_reserved"]
            if (charge and agent.evaluations - row["evaluations_used"] <= 0) or compute_left <= 0:
                raise ToolError("budget exhausted: no evaluations or compute seconds left", 429)
            limit = min(self.job_limit_s, compute_left)
            db.execute(
                "INSERT INTO jobs (id, seq, agent, status, method, description, hyperparameters, code_sha256,"
                " submitted, reserved_s) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    self.state.next_seq(db),
                    agent.name,
                    method.run_name,
                    json.dumps(description),
                    json.dumps(method.hyperparameter_values(), sort_keys=True),
                    code,
                    time.time(),
                    limit,
                ),
            )
            db.execute(
                "UPDATE agents SET evaluations_used = evaluations_used + ?, compute_reserved = compute_reserved + ?"
                " WHERE name = ?",
                (int(charge), limit, agent.name),
            )
        with self._wake:
            self._wake.notify_all()
        return {
            "job": job_id,
            "status": "queued",
            "method": method.run_name,
            "code_sha256": code,
            "time_limit_s": round(limit, 1),
        }

    def _check_files(self, files: Any) -> dict[str, str]:
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
        folders = {"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)}
        clash = sorted(folders & set(files))
        if clash:
            raise ToolError(f"files: {clash[0]!r} is both a file and a folder")
        if total > self.campaign.max_code_bytes:
            raise ToolError(f"files: {total} bytes of code, the campaign allows {self.campaign.max_code_bytes}")
        return files

    def _store_code(self, files: dict[str, str], code: str) -> Path:
        """The code's folder under its hash, written under a temporary name and renamed (removed on failure)."""
        folder = self.state.folder / "code" / code
        if folder.is_dir():
            return folder
        tmp = folder.with_name(folder.name + f".tmp{uuid.uuid4().hex[:6]}")
        try:
            for name, text in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(text, encoding="utf-8")
            try:
                tmp.rename(folder)
            except OSError:  # stored meanwhile by an identical submission
                pass
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise ToolError("files: the code could not be stored", 500)
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
        if row["status"] == "queued":  # the agent's own jobs before this one; nothing of other agents'
            ahead = self.state.query(
                "SELECT COUNT(*) AS n FROM jobs WHERE agent = ? AND status IN ('queued', 'running') AND seq < ?",
                row["agent"],
                row["seq"],
            )[0]["n"]
            view["jobs_ahead"] = ahead
        if row["status"] == "done":
            view["released_score"] = row["released"]
            view["new_best"] = bool(row["new_best"])
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
        with self._wake:
            self._wake.notify_all()
        for worker in self.workers:
            worker.join(timeout=5)

    def _warm_up(self) -> None:
        start = time.monotonic()
        try:
            warm_shared_stages(self.campaign)
            self.state.log("warm", seconds=round(time.monotonic() - start, 1))
        except Exception as e:  # the jobs will say so; the operator reads why here
            self.state.log("warm_error", error=f"{type(e).__name__}: {e}")
        finally:
            self._warm.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._warm.wait(1.0)
            job = self._claim() if self._warm.is_set() else None
            if job is None:
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self.run_job(job)

    def _claim(self) -> str | None:
        """The next job, marked running in the same transaction: agents in turn (the first agent, by name,
        after the one whose job started last, that has a job queued), each agent's jobs oldest first."""
        with self.state.transaction() as db:
            queued = db.execute("SELECT agent, MIN(seq) AS seq FROM jobs WHERE status = 'queued' GROUP BY agent")
            first = {r["agent"]: r["seq"] for r in queued}
            if not first:
                return None
            last = db.execute("SELECT agent FROM jobs WHERE started IS NOT NULL ORDER BY started DESC LIMIT 1")
            last = last.fetchone()
            names = sorted(first)
            turn = next((a for a in names if last is None or a > last["agent"]), names[0])
            job = db.execute("SELECT id FROM jobs WHERE agent = ? AND seq = ?", (turn, first[turn])).fetchone()["id"]
            db.execute(
                "UPDATE jobs SET status = 'running', started = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), job),
            )
        return job

    def run_job(self, job_id: str) -> None:
        """Run a claimed job (status running) to its end: within its reserved time limit, on the validation
        parts; the outcome is released through the rule, charged and logged."""
        row = self.state.query("SELECT * FROM jobs WHERE id = ?", job_id)[0]
        limit = row["reserved_s"] if row["reserved_s"] is not None else self.job_limit_s
        self.state.log(
            "job_started",
            agent=row["agent"],
            job=job_id,
            code_sha256=row["code_sha256"],
            attempt=row["attempts"],
            time_limit_s=round(limit, 3),
        )
        start = time.monotonic()
        detail = None
        try:
            record = self.run_method(row, self.campaign.development, "validation", deadline=time.time() + limit)
            outcome = self._score(row, record)
        except MethodFailed as e:  # the method's own failure: the agent reads which, the operator what
            detail = str(e)
            outcome = {"status": "failed", "reason": failures.job_failure(detail, row["method"])}
        except Exception as e:  # the harness's own failure: the agent learns that, the operator why
            detail = f"{type(e).__name__}: {e}"
            outcome = {"status": "failed", "reason": failures.HARNESS}
            self.state.log("job_error", job=job_id, error=detail)
        if outcome["status"] == "failed" and outcome.get("detail"):
            detail = outcome.pop("detail")
        self._finish(row, outcome, time.monotonic() - start, limit, detail)

    def run_method(self, row, tasks: tuple[str, ...], part: str, deadline: float | None = None) -> RunRecord:
        """The run of a job's method (its stored code, described and sealed, with its hyperparameters) on
        `tasks`, each development task's test split cut to `part` ('validation' for jobs, 'final' for finals;
        held-out tasks whole), the method units ended by `deadline` (time.time()). Jobs score it as it is;
        finals also write its results JSON."""
        from ..engine.run import run

        description = json.loads(row["description"])
        method = stand_in(description, _origin(self.state.folder / "code" / row["code_sha256"]))(
            **json.loads(row["hyperparameters"])
        )
        parts = {t: self.part(t, part) for t in tasks if t in self.campaign.development}
        return run(self.campaign.run_spec(tasks, parts, deadline, methods=(method,)))

    def part(self, task: str, which: str) -> tuple[int, ...]:
        """The indices of a development task's test split in its validation or final part."""
        if task not in self._sizes:
            self._sizes[task] = test_size(self.campaign, task)
        n = self._sizes[task]
        idx = self.campaign.validation_part(task, n) if which == "validation" else self.campaign.final_part(task, n)
        return tuple(int(i) for i in idx)

    def _score(self, row, record: RunRecord) -> dict:
        failed = record.failed.get(row["method"])
        if failed is not None:
            return {"status": "failed", "reason": failures.job_failure(failed, row["method"]), "detail": failed}
        score, correct, weights, gap = validation_score(self.campaign, record, row["method"])
        return {
            "status": "done",
            "true_score": score,
            "correct": correct,
            "weights": weights,
            "gap": gap,
            "flags": job_flags(self.campaign.development, record, row["method"]),
            "step": effective_step(self.campaign.rule["step"], weights, gap),
            "move": float(np.max(weights)) / gap if gap > 0 else 0.0,
        }

    def _finish(self, row, outcome: dict, seconds: float, limit: float, detail: str | None) -> None:
        agent = row["agent"]
        charged = min(seconds, limit)
        with self.state.transaction() as db:
            best_row = db.execute("SELECT * FROM agents WHERE name = ?", (agent,)).fetchone()
            best, best_job = best_row["best_released"], best_row["best_job"]
            released = new_best = None
            if outcome["status"] == "done" and outcome["true_score"] is not None:
                decision = self._decide(outcome, best, best_job, best_row, db)
                released, new_best = decision.released, decision.new_best
                np.save(self.state.folder / "scores" / f"{row['id']}.npy", outcome["correct"])
                if new_best:
                    db.execute(
                        "UPDATE agents SET best_released = ?, best_job = ?, releases_used = releases_used + 1"
                        " WHERE name = ?",
                        (released, row["id"], agent),
                    )
                    if self.campaign.rule["kind"] == "noisy_ladder":  # a new threshold after each release
                        db.execute("UPDATE agents SET threshold_noise = NULL WHERE name = ?", (agent,))
            elif outcome["status"] == "done":
                outcome = {"status": "failed", "reason": failures.GAP}
            db.execute(
                "UPDATE jobs SET status = ?, finished = ?, reason = ?, compute_s = ?, released = ?, new_best = ?,"
                " flags = ?, true_score = ? WHERE id = ?",
                (
                    outcome["status"],
                    time.time(),
                    outcome.get("reason"),
                    charged,
                    released,
                    None if new_best is None else int(new_best),
                    json.dumps(outcome.get("flags", [])),
                    outcome.get("true_score"),
                    row["id"],
                ),
            )
            reserved = row["reserved_s"] if row["reserved_s"] is not None else 0.0
            db.execute(
                "UPDATE agents SET compute_used = compute_used + ?, compute_reserved = MAX(0, compute_reserved - ?)"
                " WHERE name = ?",
                (charged, reserved, agent),
            )
        self.state.log(
            "job_finished",
            agent=agent,
            job=row["id"],
            method=row["method"],
            code_sha256=row["code_sha256"],
            status=outcome["status"],
            reason=outcome.get("reason"),
            method_error=detail,
            released=released,
            true_score=outcome.get("true_score"),
            flags=outcome.get("flags", []),
            step=outcome.get("step"),
            compute_s=round(charged, 3),
            wall_s=round(seconds, 3),
            time_limit_s=round(limit, 3),
        )

    def _decide(self, outcome: dict, best: float | None, best_job: str | None, agent_row, db) -> ladder.Decision:
        rule = self.campaign.rule
        if rule["kind"] == "ladder":
            return ladder.fixed_step(outcome["true_score"], best, outcome["step"])
        if rule["kind"] == "noisy_ladder":
            if agent_row["releases_used"] >= int(rule["releases"]):
                return ladder.Decision(best, False)  # the budget of releases is spent: nothing more is said
            move, epsilon = outcome["move"], float(rule["epsilon"])
            rho = agent_row["threshold_noise"]
            if rho is None:
                rho = ladder.threshold_noise(move, epsilon, self._rng)
                db.execute("UPDATE agents SET threshold_noise = ? WHERE name = ?", (rho, agent_row["name"]))
            return ladder.noisy(outcome["true_score"], best, outcome["step"], move, epsilon, rho, self._rng)
        diff = None
        if best_job is not None:
            previous = np.load(self.state.folder / "scores" / f"{best_job}.npy")
            diff = outcome["correct"] - previous
        return ladder.paired(outcome["true_score"], best, outcome["step"], diff, outcome["weights"], outcome["gap"])

    # ---- what an agent may hold locally ------------------------------------------------------------------------
    def _task_card(self, name: str) -> dict:
        from ..tasks import load_task

        task = load_task(name, [Path(p) for p in self.campaign.spec.include_path])
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
                from ..schema_io import write_json

                write_json(build_devkit(self.campaign, task_name), path)
            return json.loads(path.read_text())


def _pipeline(campaign: Campaign, task_names: list[str], parts: dict[str, tuple[int, ...]] | None = None):
    """The campaign's pipeline over `task_names` (the options of every job, hence the same cache keys), each
    task's test split cut to `parts[task]` where given: its inputs and shared stages, without a run."""
    from ..engine.run import pipeline_of

    return pipeline_of(campaign.run_spec(task_names, parts))


def test_size(campaign: Campaign, task_name: str) -> int:
    """How many examples the whole test split of a task has (what the two parts are cut from)."""
    pipe = _pipeline(campaign, [task_name])
    return len(pipe.splits(pipe.tasks[0]).test)


def validation_parts(campaign: Campaign, task_names) -> dict[str, tuple[int, ...]]:
    return {
        t: tuple(int(i) for i in campaign.validation_part(t, test_size(campaign, t)))
        for t in task_names
        if t in campaign.development
    }


def job_limit(campaign: Campaign) -> float:
    """The most one job may run, all its tasks and seeds together: the campaign's job_timeout_s, else its
    method_timeout_s (per method seed; else the setting's) times the job's method units."""
    if campaign.job_timeout_s:
        return float(campaign.job_timeout_s)
    from ..engine.run import setting_of

    setting = setting_of(campaign.spec)
    options = campaign.spec.options
    seeds = options.method_seeds or setting.method_seeds
    per_seed = options.method_timeout_s or setting.method_timeout_s
    return float(per_seed) * len(campaign.development) * seeds


def warm_shared_stages(campaign: Campaign) -> None:
    """The stages every job shares (features, weak and ceiling of each development task's validation part),
    computed before the first job, so that no agent's compute budget pays for them."""
    pipe = _pipeline(campaign, list(campaign.development), validation_parts(campaign, campaign.development))
    for role in ("weak", "strong"):
        pipe.compute_features(role)
    for task in pipe.tasks:
        for seed in range(pipe.baseline_seeds):
            pipe.weak_labels(task, seed)
            pipe.ceiling(task, seed)


def build_devkit(campaign: Campaign, task_name: str) -> dict[str, list[dict]]:
    """The development kit of one task: train_label with labels, train_unlabel and the validation part
    without, and the weak model's soft labels (its first baseline seed) on the latter two: the texts and
    soft labels a job's method is given, in the same order."""
    pipe = _pipeline(campaign, [task_name], validation_parts(campaign, [task_name]))
    task = pipe.tasks[0]
    splits = pipe.splits(task)
    weak = pipe.weak_labels(task, 0)
    return {
        "train_label": [{"text": e.text, "label": int(e.label)} for e in splits.train_label],
        "train_unlabel": [
            {"text": e.text, "weak_p1": round(float(p), 6)} for e, p in zip(splits.train_unlabel, weak["train_unlabel"])
        ],
        "validation": [{"text": e.text, "weak_p1": round(float(p), 6)} for e, p in zip(splits.test, weak["test"])],
    }


def _correct(record: RunRecord, method: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per task of the record: the weak, ceiling and method's correctness [seeds, n] (0/1) and n, read from
    the predictions the record holds."""
    out = {}
    for tr in record.tasks:
        labels = np.array([e.label for e in tr.splits.test])
        weak, ceiling, w2s = (
            correct_matrix(p, labels) for p in (tr.weak_test, tr.ceiling_test, tr.methods[method].test_probs)
        )
        out[tr.task.name] = (weak, ceiling, w2s, len(labels))
    return out


def validation_score(
    campaign: Campaign, record: RunRecord, method: str
) -> tuple[float | None, np.ndarray, np.ndarray, float]:
    """Pooled PGR (scoring.pooled_pgr) of `method` in a job's run (each development task's test split there is
    its validation part), each group averaged over its seeds; with the per-example w2s correctness (seed
    mean), each example's weight in the pooled accuracy, and the pooled gap."""
    tasks = campaign.development
    correct = {t: [m.mean(axis=0) for m in c[:3]] for t, c in _correct(record, method).items()}  # seed means
    weak, ceiling, w2s = ([float(correct[t][i].mean()) for t in tasks] for i in range(3))
    score, _, gap = pooled_pgr(weak, ceiling, w2s)
    n = {t: len(correct[t][2]) for t in tasks}
    weights = np.concatenate([np.full(n[t], 1.0 / (len(tasks) * n[t])) for t in tasks])
    return score, np.concatenate([correct[t][2] for t in tasks]), weights, gap / len(tasks)


def job_flags(tasks, record: RunRecord, method: str) -> dict[str, list[str]]:
    """The method's flag names per task (for the operator's log and the finals; never for the agent)."""
    flags = {tr.task.name: tr.flags.get(method, []) for tr in record.tasks}
    out = {}
    for t in tasks:
        names = [f.get("flag", f.get("name", "flag")) if isinstance(f, dict) else str(f) for f in flags[t]]
        if names:
            out[t] = sorted(set(names))
    return out


def effective_step(step: float, weights: np.ndarray, gap: float) -> float:
    """The campaign's step, raised where needed to twice what one validation example can move the score
    (its weight over the gap, in PGR), rounded up to 0.001: below that, a one-example flip could cross a
    rounding boundary and be seen. Fixed for a campaign (the weak and ceiling runs are)."""
    move = float(np.max(weights)) / gap if gap > 0 else 0.0
    return max(step, math.ceil(2 * move * 1000 - 1e-9) / 1000)


def final_score(campaign: Campaign, record: RunRecord, method: str) -> dict:
    """Per task and pooled PGR (scoring.pooled_pgr), with the flags, in a finals run: its development tasks'
    test splits are their final parts, its held-out tasks whole."""
    names = (*campaign.development, *campaign.heldout)
    correct = _correct(record, method)
    per_task = {}
    for name in names:
        *matrices, n = correct[name]
        weak, ceiling, w2s = (float(m.mean()) for m in matrices)  # over seeds and examples at once
        per_task[name] = {
            "examples": int(n),
            "weak": weak,
            "ceiling": ceiling,
            "w2s": w2s,
            "pgr": pooled_pgr([weak], [ceiling], [w2s])[0],
            "split": "development (final part)" if name in campaign.development else "held-out",
            "flags": job_flags([name], record, method).get(name, []),
        }
    pooled = pooled_pgr(*([per_task[t][k] for t in names] for k in ("weak", "ceiling", "w2s")))[0]
    return {"tasks": per_task, "pooled_pgr": pooled}


def plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why a call's arguments are not plain data the service can store and log, or None: nesting deeper than
    MAX_DEPTH, a string or key with a lone surrogate (JSON can say one; no file or log can hold it)."""
    if depth > MAX_DEPTH:
        return f"the arguments are nested more than {MAX_DEPTH} deep"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string in the arguments is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            problem = plain_data_problem(k, depth + 1) or plain_data_problem(v, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = plain_data_problem(v, depth + 1)
            if problem:
                return problem
    return None


def code_sha256(files: dict[str, str]) -> str:
    """The name a code folder is stored under: a hash of its file names and contents."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name].encode("utf-8")).digest())
    return digest.hexdigest()[:16]


def _api_names() -> frozenset[str]:
    from ..methods.base import LossMethod, Method

    return frozenset(n for cls in (Method, LossMethod) for n in dir(cls) if not n.startswith("__"))


API_NAMES = _api_names()  # what a hyperparameter may not be called: it would shadow the method API
MAX_LOGGED = 16 * 1024  # characters of what an agent's code printed, kept in the operator's log


def _down(x: float) -> float:
    return max(0.0, math.floor(x * 10) / 10)


def _up(x: float) -> float:
    return max(0.0, math.ceil(x * 10) / 10)


def _origin(folder: Path) -> dict:
    """An agent's stored code, as isolation.loader names code: a folder whose __init__.py defines the method."""
    return {"kind": "folder", "path": str(folder)}
