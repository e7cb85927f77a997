"""`w2sbench serve`: the scoring service for agents. Its tools over HTTP and MCP (in memory and over stdio),
tokens and isolation between agents, budgets, the release rule, the development kit, finals, the log and
report, a restart after kill -9 in the middle of a job, and small versions of the attacks it must resist.
Jobs run the real pipeline and the sandboxed method process on a small local task with synthetic
features (tests/serve_toy.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import serve_toy

from w2sbench.errors import ConfigError
from w2sbench.isolation import sandbox
from w2sbench.serve import ladder
from w2sbench.serve.campaign import load_campaign
from w2sbench.serve.engine import Service, ToolError
from w2sbench.serve.http_api import HttpClient, LocalClient, make_server, serve_in_thread

needs_sandbox = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")
TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token"}

CONSTANT = '''
import numpy as np
from w2sbench.methods import Method


class Fixed(Method):
    """Predicts the weak model's hard labels on test, with example `flip` flipped (-1: none)."""

    name = "fixed"
    flip: int = -1

    def run(self, ctx):
        p = (ctx.weak_test >= 0.5).astype(np.float32)
        if self.flip >= 0:
            p[self.flip] = 1 - p[self.flip]
        return p
'''

VANILLA = '''
from w2sbench.methods import LossMethod


class Plain(LossMethod):
    """Vanilla: the fixed trainer on the weak soft labels."""

    name = "plain"
'''


# ---- pure parts ---------------------------------------------------------------------------------------------
def test_the_fixed_step_ladder_releases_only_clear_improvements_rounded_to_the_step():
    first = ladder.fixed_step(0.312, None, 0.05)
    assert first == ladder.Decision(0.3, True)
    assert ladder.fixed_step(0.34, 0.3, 0.05) == ladder.Decision(0.3, False)  # +0.04 < step: the old answer
    assert ladder.fixed_step(0.36, 0.3, 0.05) == ladder.Decision(0.35, True)
    assert ladder.fixed_step(0.10, 0.3, 0.05) == ladder.Decision(0.3, False)  # worse: the best again


def test_the_paired_ladder_needs_a_win_beyond_one_standard_error():
    w = np.full(100, 0.01)  # 100 examples, equal weights
    noise = np.zeros(100)
    noise[:3] = 1  # 3 examples better: mean 0.03, se ~0.017; in PGR (gap 0.2): +0.15
    assert ladder.paired(0.45, 0.3, 0.05, noise, w, gap=0.2) == ladder.Decision(0.45, True)
    one = np.zeros(1000)
    one[0] = 1  # one flip of 1000: mean 0.001, just above its se, but 0.005 in PGR: under half a step
    assert ladder.paired(0.305, 0.3, 0.05, one, np.full(1000, 0.001), gap=0.2) == ladder.Decision(0.3, False)
    worse = -noise  # a paired loss is never released, whatever the unpaired score says
    assert ladder.paired(0.45, 0.3, 0.05, worse, w, gap=0.2) == ladder.Decision(0.3, False)


def test_a_campaign_file_with_a_bad_field_is_one_line_naming_it(tmp_path):
    path = serve_toy.campaign_yaml(tmp_path, TOKENS)
    doc = json.loads(path.read_text())
    doc["rule"] = {"kind": "oracle"}
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"campaign.yaml: field 'rule.kind'"):
        load_campaign(path)
    doc["rule"] = {"kind": "ladder"}
    doc["agents"]["bob"]["token_sha256"] = doc["agents"]["alice"]["token_sha256"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="field 'agents': two agents share a token"):
        load_campaign(path)
    doc["agents"]["bob"]["token_sha256"] = "0" * 64
    doc["executor"] = "slurm"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="campaign.yaml: field 'executor'"):
        load_campaign(path)
    doc["executor"], doc["ray_address"] = "ray", "127.0.0.1:6379"
    path.write_text(json.dumps(doc))
    assert load_campaign(path).spec.executor == "ray"  # units name the agent's method by its description (test_ray)


def test_the_validation_and_final_parts_are_fixed_disjoint_and_cover_the_test_split(tmp_path):
    c = load_campaign(serve_toy.campaign_yaml(tmp_path, TOKENS))
    v, f = c.validation_part("toy", 200), c.final_part("toy", 200)
    assert len(v) == 100 and len(f) == 100 and not set(v) & set(f) and set(v) | set(f) == set(range(200))
    assert np.array_equal(v, c.validation_part("toy", 200))  # the same on every call (and restart)
    assert not np.array_equal(v, c.validation_part("other", 200))  # per task


# ---- the service ----------------------------------------------------------------------------------------------
@pytest.fixture
def toy(tmp_path, monkeypatch):
    serve_toy.write_task(tmp_path)
    serve_toy.patch(tmp_path, monkeypatch.setattr)
    return tmp_path


def wait(client, job: str, timeout: float = 300) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = client.call("job", {"job": job})
        if view["status"] in ("done", "failed"):
            return view
        time.sleep(0.3)
    raise AssertionError(f"job {job} did not finish")


@needs_sandbox
def test_tools_over_http_tokens_isolation_budget_and_the_log(toy):
    path = serve_toy.campaign_yaml(toy, TOKENS, budgets={"bob": {"evaluations": 1}})
    service = Service(load_campaign(path))
    server = make_server(service, "127.0.0.1", 0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    alice, bob = HttpClient(url, TOKENS["alice"]), HttpClient(url, TOKENS["bob"])
    try:
        with pytest.raises(ToolError, match="unknown or missing token") as e:
            HttpClient(url, "guess").call("budget")
        assert e.value.status == 401
        card = alice.call("describe")
        assert card["development_tasks"][0]["sizes"] == {"train_label": 60, "train_unlabel": 120, "validation": 200}
        assert "heldout" not in json.dumps(card["development_tasks"])

        job = alice.call("submit_method", {"files": {"__init__.py": VANILLA}})
        done = wait(alice, job["job"])
        assert done["status"] == "done" and set(done) >= {"released_score", "new_best"}
        # an answer is one rounded aggregate: no counts, no flags, no per-task, per-seed or per-example numbers
        assert set(done) == {"job", "method", "status", "submitted", "released_score", "new_best", "compute_seconds"}
        assert abs(done["released_score"] / 0.05 - round(done["released_score"] / 0.05)) < 1e-9

        with pytest.raises(ToolError, match="no job .* of yours"):
            bob.call("job", {"job": job["job"]})  # another agent's job reads like a missing one
        with pytest.raises(ToolError, match="no job .* of yours"):
            bob.call("nominate_final", {"job": job["job"]})
        assert bob.call("history")["jobs"] == []

        bobs = bob.call("submit_method", {"files": {"__init__.py": VANILLA}})
        with pytest.raises(ToolError, match="budget exhausted") as e:
            bob.call("submit_method", {"files": {"__init__.py": VANILLA}})
        assert e.value.status == 429
        assert bob.call("budget")["evaluations_left"] == 0

        for body, status in ((b"x" * 700_000, 413), (b"{not json", 400), (b"[1, 2]", 400)):
            request = urllib.request.Request(
                f"{url}/api/budget", data=body, headers={"Authorization": f"Bearer {TOKENS['alice']}"}
            )
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(request, timeout=30)
            assert e.value.code == status and list(json.loads(e.value.read())) == ["error"]
        with pytest.raises(ToolError, match="not a plain relative file name"):
            alice.call("submit_method", {"files": {"__init__.py": VANILLA, "../../escape.py": ""}})
        with pytest.raises(ToolError, match="job: bad arguments .missing a required argument: 'job'"):
            alice.call("job", {"jb": job["job"]})
        with pytest.raises(ToolError, match="hyperparameters must be an object"):
            alice.call("submit_method", {"files": {"__init__.py": VANILLA}, "hyperparameters": [1]})
        with pytest.raises(ToolError, match="hyperparameter"):  # VANILLA was described before: no code runs
            alice.call("submit_method", {"files": {"__init__.py": VANILLA}, "hyperparameters": {"flip": 1}})
        assert alice.call("budget")["evaluations_left"] == 29  # refused before any code ran: nothing spent
        # refused after the probe ran the code: the evaluation is spent (it was charged before the code ran)
        with pytest.raises(ToolError, match=r"^importing your code raised ZeroDivisionError \(debug it locally"):
            alice.call("submit_method", {"files": {"__init__.py": "1/0"}})
        with pytest.raises(ToolError, match="hyperparameter"):
            alice.call("submit_method", {"files": {"__init__.py": CONSTANT}, "hyperparameters": {"flip": "x"}})
        assert alice.call("budget")["evaluations_left"] == 27

        rows = alice.call("devkit", {"task": "toy", "part": "validation", "limit": 5})["rows"]
        assert len(rows) == 5 and set(rows[0]) == {"text", "weak_p1"}  # no label
        labelled = alice.call("devkit", {"task": "toy", "part": "train_label", "limit": 1})["rows"]
        assert set(labelled[0]) == {"text", "label"}
        assert wait(bob, bobs["job"])["status"] == "done"  # (no job left running when the test's patches go)
    finally:
        server.shutdown()
        service.stop()
    events = [json.loads(line) for line in (toy / "state" / "log.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "job_finished" and e["agent"] == "alice"]
    assert finished[0]["true_score"] is not None and finished[0]["released"] == done["released_score"]
    assert any(e["event"] == "refused" and e["reason"] == "unknown token" for e in events)
    assert (toy / "state" / "code" / job["code_sha256"] / "__init__.py").read_text() == VANILLA


@needs_sandbox
def test_the_agents_code_is_never_imported_by_the_service(toy):
    """Top-level code runs only in the sandbox: a file that would write beside the service's state when
    imported leaves no trace, and the job still runs (the stand-in names it)."""
    marker = toy / "state" / "imported-here"
    code = f"try:\n    open({str(marker)!r}, 'w').write('x')\nexcept OSError:\n    pass\n" + VANILLA
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS)))
    try:
        client = LocalClient(service, TOKENS["alice"])
        view = wait(client, client.call("submit_method", {"files": {"__init__.py": code}})["job"])
        assert view["status"] == "done"
        assert not marker.exists()
        assert not any(m.startswith("w2sbench_user_method_probe") for m in sys.modules)
    finally:
        service.stop()


@needs_sandbox
def test_a_failing_method_gets_a_line_of_the_vocabulary_and_the_operator_its_own(toy):
    broken = VANILLA.replace(
        'name = "plain"', 'name = "plain"\n\n    def targets(self, ctx):\n        raise ValueError("my bug")'
    )
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS)))
    try:
        client = LocalClient(service, TOKENS["alice"])
        view = wait(client, client.call("submit_method", {"files": {"__init__.py": broken}})["job"])
    finally:
        service.stop()
    assert view["status"] == "failed"
    assert view["reason"] == "the method raised ValueError in the sealed process"
    events = [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "job_finished"]
    assert "ValueError: my bug" in finished[-1]["method_error"]  # the operator reads the method's own line


@needs_sandbox
def test_the_one_flip_attack_learns_nothing_through_the_ladder(toy):
    """Flip one validation-part prediction at a time: through the service every answer repeats the best
    released score, so the labels the attacker infers are no better than its guess; the raw results (what
    evaluate() returns) give every flipped label away. The guarantee needs a step of more than twice what one
    example moves the score (here 1/(200 examples x a gap of about 0.2), about 0.025): the campaign asks for
    0.01, and the service raises it."""
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS, rule={"kind": "ladder", "step": 0.01})))
    client = LocalClient(service, TOKENS["alice"])
    try:
        base = wait(client, client.call("submit_method", {"files": {"__init__.py": CONSTANT}})["job"])
        answers = []
        for i in range(6):  # the method's test texts are the validation part's, in the devkit's order
            job = client.call(
                "submit_method", {"files": {"__init__.py": CONSTANT}, "hyperparameters": {"flip": int(i)}}
            )
            answers.append(wait(client, job["job"])["released_score"])
    finally:
        service.stop()
    assert answers == [base["released_score"]] * 6  # nothing moved: nothing to read
    # the true scores moved (the log has them): the rule, not luck, hid them
    events = [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines()]
    true = [e["true_score"] for e in events if e["event"] == "job_finished"]
    assert len(set(np.round(true, 9))) > 1
    step = [e["step"] for e in events if e["event"] == "job_finished"][0]
    assert step > 0.01 and max(abs(t - true[0]) for t in true) < step / 2  # each flip moved under half a step


RANDOM = CONSTANT.replace(
    "        p = (ctx.weak_test >= 0.5).astype(np.float32)",
    "        p = np.random.default_rng(self.flip).integers(0, 2, len(ctx.test_texts)).astype(np.float32)",
)


@needs_sandbox
def test_random_submissions_see_only_the_ladder(toy):
    """The boosting attack's first half (random label vectors, keep the ones the answers favour): every
    answer repeats the best released score or is a new best at least a step above it, and a released score
    is within half a step of the true one. What the attacker can select on is only the new bests."""
    step = 0.1
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS, rule={"kind": "ladder", "step": step})))
    client = LocalClient(service, TOKENS["alice"])
    try:
        views = []
        for seed in range(6):
            job = client.call("submit_method", {"files": {"__init__.py": RANDOM}, "hyperparameters": {"flip": seed}})
            views.append(wait(client, job["job"]))
    finally:
        service.stop()
    events = [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines()]
    true = {e["job"]: e["true_score"] for e in events if e["event"] == "job_finished"}
    best = None
    for v in views:
        if v["new_best"]:
            assert best is None or v["released_score"] >= best + step - 1e-9
            assert abs(v["released_score"] - true[v["job"]]) <= step / 2 + 1e-9
            best = v["released_score"]
        else:
            assert v["released_score"] == best
    assert service.state.agent_row("alice")["best_released"] == best


@needs_sandbox
def test_mcp_tools_in_memory_and_over_stdio(toy):
    from mcp import Client, StdioServerParameters

    from w2sbench.serve.mcp_tools import build_server

    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS)))
    server = make_server(service, "127.0.0.1", 0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"

    async def in_memory():
        async with Client(build_server(LocalClient(service, TOKENS["alice"]))) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"describe", "submit_method", "job", "budget", "history", "nominate_final", "devkit"}
            sent = await c.call_tool("submit_method", {"files": {"__init__.py": VANILLA}})
            job = sent.structured_content["job"]
            refused = await c.call_tool("nominate_final", {"job": "0000"})
            assert refused.is_error and "no job '0000' of yours" in refused.content[0].text
            return job

    async def over_stdio(job):
        env = {**os.environ, "W2SBENCH_TOKEN": TOKENS["alice"]}
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "w2sbench", "serve", "mcp", "--url", url], env=env
        )
        async with Client(params) as c:
            for _ in range(600):
                view = (await c.call_tool("job", {"job": job})).structured_content
                if view["status"] == "done":
                    break
                await asyncio.sleep(0.5)
            assert view["status"] == "done"
            nominated = (await c.call_tool("nominate_final", {"job": job})).structured_content
            assert nominated["nominated"] == [job]
            return view

    try:
        job = asyncio.run(in_memory())
        asyncio.run(over_stdio(job))
    finally:
        server.shutdown()
        service.stop()


@needs_sandbox
def test_finals_score_only_the_final_part_and_report_reads_the_log(toy, tmp_path):
    from w2sbench.serve.finals import run_finals
    from w2sbench.serve.report import draw, format_report, read_log, summarise

    campaign = load_campaign(serve_toy.campaign_yaml(toy, TOKENS))
    service = Service(campaign)
    client = LocalClient(service, TOKENS["alice"])
    try:
        job = wait(client, client.call("submit_method", {"files": {"__init__.py": VANILLA}})["job"])
        client.call("nominate_final", {"job": job["job"]})
    finally:
        service.stop()
    records = run_finals(campaign, say=lambda line: None)
    assert [r["job"] for r in records] == [job["job"]]
    results = json.loads((toy / "state" / "finals" / f"{job['job']}.results.json").read_text())
    # by hand: pooled PGR from the finals run's correctness vectors, whose test split is the final part only
    from w2sbench.scoring import decode_correct

    doc = results["tasks"]["toy"]
    assert doc["n"]["test"] == 200 == len(campaign.final_part("toy", 400))
    w, c, s = (
        decode_correct(g["correct"], 200).mean() for g in (doc["weak"], doc["ceiling"], doc["methods"]["plain"]["w2s"])
    )
    assert records[0]["tasks"]["toy"]["examples"] == 200
    assert records[0]["pooled_pgr"] == pytest.approx((s - w) / (c - w))
    assert run_finals(campaign, say=lambda line: None)[0]["pooled_pgr"] == records[0]["pooled_pgr"]  # not rerun
    agents = summarise(read_log(toy / "state" / "log.jsonl"))
    text = format_report(agents)
    assert "agent alice: 1 jobs" in text and "final: plain" in text
    assert [p.suffix for p in draw(agents, tmp_path / "fig")] == [".png", ".svg"]


@needs_sandbox
def test_kill_9_in_the_middle_of_a_job_loses_nothing_and_charges_once(toy):
    path = serve_toy.campaign_yaml(toy, TOKENS)

    def start():
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("serve_toy.py")), str(toy), str(path)],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for line in proc.stderr:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/api", line)
            if found:  # the rest of its stderr drained, so that a full pipe never stops it
                threading.Thread(target=proc.stderr.read, daemon=True).start()
                return proc, HttpClient(f"http://127.0.0.1:{found.group(1)}", TOKENS["alice"])
        raise AssertionError("the service did not start")

    proc, client = start()
    try:
        job = client.call("submit_method", {"files": {"__init__.py": VANILLA}})["job"]
        for _ in range(600):
            if client.call("job", {"job": job})["status"] == "running":
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc, client = start()
        view = wait(client, job)
        assert view["status"] == "done"
        budget = client.call("budget")
        assert budget["evaluations_left"] == 29  # charged once, at acceptance
        history = client.call("history")["jobs"]
        assert [j["job"] for j in history] == [job]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    events = [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines() if x.strip()]
    starts = [e for e in events if e["event"] == "start"]
    assert starts[-1]["requeued"] == [job]
    assert sum(e["event"] == "job_finished" for e in events) == 1


def test_the_effective_step_is_twice_one_examples_move_at_least():
    from w2sbench.serve.engine import effective_step

    weights = np.concatenate([np.full(100, 1 / 200), np.full(50, 1 / 100)])  # two tasks: 100 and 50 examples
    # one example of the smaller task moves the mean accuracy by 1/100, the score by 0.01/0.2 = 0.05
    assert effective_step(0.02, weights, gap=0.2) == pytest.approx(0.1)
    assert effective_step(0.25, weights, gap=0.2) == 0.25  # a larger step stands


@needs_sandbox
def test_a_method_cannot_read_the_services_state_or_another_agents_code(toy):
    """From inside its sandbox a method looks for the log (true scores), the database and another agent's
    stored code; it finds none of them (the job would fail with what it read)."""
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS)))
    try:
        bob = LocalClient(service, TOKENS["bob"])
        theirs = bob.call("submit_method", {"files": {"__init__.py": VANILLA}})
        wait(bob, theirs["job"])
        state = toy / "state"
        targets = [state / "log.jsonl", state / "service.db", state / "code" / theirs["code_sha256"] / "__init__.py"]

        def snoop(paths):
            return CONSTANT.replace(
                "    def run(self, ctx):\n",
                "    def run(self, ctx):\n"
                f"        for path in {[str(p) for p in paths]!r}:\n"
                "            try:\n"
                "                open(path, 'rb').read(1)\n"
                "            except OSError:\n"
                "                continue\n"
                "            raise ValueError('read ' + path)\n",
            )

        alice = LocalClient(service, TOKENS["alice"])
        view = wait(alice, alice.call("submit_method", {"files": {"__init__.py": snoop(targets)}})["job"])
        control = wait(alice, alice.call("submit_method", {"files": {"__init__.py": snoop([sys.executable])}})["job"])
    finally:
        service.stop()
    assert all(p.exists() for p in targets)
    assert view["status"] == "done", view.get("reason")
    # the control read what it named and failed on purpose (the snoop works); the agent is told only that
    assert control["status"] == "failed" and control["reason"] == "the method raised ValueError in the sealed process"
    events = [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines()]
    assert "read " + sys.executable in [e for e in events if e["event"] == "job_finished"][-1]["method_error"]
