"""The scoring service against a hostile agent (issue 29; issue 28 item 6): what it may learn from a job,
the budgets it cannot pass, the queue it cannot stall, the probe it cannot abuse, the requests it cannot
break the service with. Each test failed on the service before these changes (main at 46e1650). Jobs run
the real pipeline and the sandboxed method process on the small local task of tests/serve_toy.py."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import tracemalloc
import urllib.error
import urllib.request

import numpy as np
import pytest
import serve_toy

from w2sbench.isolation import sandbox
from w2sbench.serve.campaign import load_campaign
from w2sbench.serve.engine import Service, ToolError
from w2sbench.serve.http_api import HttpClient, LocalClient, make_server, serve_in_thread

needs_sandbox = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")
TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token"}
RAISED = "the method raised {} in the sealed process"

PLAIN = '''
from w2sbench.methods import LossMethod


class Plain(LossMethod):
    """Vanilla: the fixed trainer on the weak soft labels."""

    name = "plain"
'''


def method(body: str, name: str = "hostile", fields: str = "", top: str = "") -> str:
    """A Method whose run(ctx) is `body` (indented by the caller's four spaces)."""
    return (
        "import os, sys, time\nimport numpy as np\nfrom w2sbench.methods import Method\n"
        + top
        + f"\n\nclass Hostile(Method):\n    name = {name!r}\n"
        + "".join(f"    {line}\n" for line in fields.splitlines() if line.strip())
        + "\n    def run(self, ctx):\n"
        + "".join(f"        {line}\n" for line in body.strip().splitlines())
    )


WEAK = "return (np.asarray(ctx.weak_test) >= 0.5).astype(np.float32)"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    serve_toy.write_task(tmp_path)
    serve_toy.patch(tmp_path, monkeypatch.setattr)
    return tmp_path


def start(toy, **extra) -> tuple[Service, dict[str, LocalClient]]:
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS, **extra)))
    return service, {name: LocalClient(service, token) for name, token in TOKENS.items()}


def wait(client, job: str, timeout: float = 300) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = client.call("job", {"job": job})
        if view["status"] in ("done", "failed"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish")


def submit(client, code: str, **hyper) -> str:
    return client.call("submit_method", {"files": {"__init__.py": code}, "hyperparameters": hyper})["job"]


def events(toy) -> list[dict]:
    return [json.loads(x) for x in (toy / "state" / "log.jsonl").read_text().splitlines() if x.strip()]


def toy_texts(toy) -> tuple[list[str], list[int]]:
    """The toy task's test texts and labels (what the test, not the agent, knows)."""
    from w2sbench.tasks import load_task

    splits = load_task("toy", [toy]).load_splits()
    return [e.text for e in splits.test], [int(e.label) for e in splits.test]


# ---- 1. a job sees the validation part only; the finals cannot be moved by jobs ----------------------------
@needs_sandbox
def test_a_job_gives_the_method_only_the_validation_texts_of_the_test_split(toy):
    service, client = start(toy)
    texts, _ = toy_texts(toy)
    final = [texts[i] for i in service.campaign.final_part("toy", len(texts))]
    check = method(
        f"FINAL = set({final!r})\n"
        "if FINAL & set(ctx.test_texts) or len(ctx.test_texts) != 200:\n"
        "    raise KeyError('saw the final part')\n" + WEAK
    )
    try:
        view = wait(client["alice"], submit(client["alice"], check))
        devkit = client["alice"].call("devkit", {"task": "toy", "part": "validation", "limit": 500})["rows"]
    finally:
        service.stop()
    assert view["status"] == "done", view
    validation = [texts[i] for i in service.campaign.validation_part("toy", len(texts))]
    assert [r["text"] for r in devkit] == validation  # the devkit lists exactly what a job's method is given


@needs_sandbox
def test_what_a_job_answers_does_not_depend_on_the_final_part(toy):
    """The flag oracle of issue 29: a vector held one correct example below the `no_strong_work` threshold
    (PGR 0.5 on the whole test split) shows the flag exactly when a final-part prediction is right. Now the
    method never sees a final-part text, and no flag is released: two methods that differ only on one final
    example get the same answer, so nothing a job returns can move the final part's score."""
    texts, labels = toy_texts(toy)
    service, client = start(toy)
    c = service.campaign
    final = c.final_part("toy", len(texts))
    # weak and ceiling accuracy on the whole split, from a run of the same pipeline
    import w2sbench

    full = w2sbench.evaluate(
        ["vanilla"], "toy", "tiny", seeds=2, baseline_seeds=2, n_boot=50, include_path=[toy], cache=toy / "cache"
    ).to_dict()["tasks"]["toy"]
    weak, ceiling = full["methods"]["vanilla"]["pgr"]["weak_acc"], full["methods"]["vanilla"]["pgr"]["ceiling_acc"]
    n = len(texts)
    right = int(np.ceil(n * (weak + 0.5 * (ceiling - weak)))) - 1  # correct predictions: PGR just under 0.5
    order = [i for i in range(n) if i not in set(final)] + list(final)
    prediction = {texts[i]: float(labels[i]) for i in order[:right]}
    prediction |= {texts[i]: 1.0 - labels[i] for i in order[right:]}
    target = texts[order[right]]  # a final-part example predicted wrong; `fix` makes it right
    code = method(
        "p = np.array([PRED[t] for t in ctx.test_texts], dtype=np.float32)\n"
        "if self.fix:\n"
        "    p = np.array([1.0 - v if t == TARGET else v for t, v in zip(ctx.test_texts, p)], dtype=np.float32)\n"
        "return p",
        fields="fix: bool = False",
        top=f"PRED = {prediction!r}\nTARGET = {target!r}\n",
    )
    try:
        views = [wait(client["alice"], submit(client["alice"], code, fix=fix)) for fix in (False, True)]
    finally:
        service.stop()
    # what differs between any two jobs (and the second of two equal scores is never a new best)
    own = ("job", "submitted", "compute_seconds", "method", "new_best")
    same = [{k: v for k, v in view.items() if k not in own} for view in views]
    assert views[0]["status"] == "done" and same[0] == same[1] and not views[1]["new_best"]
    logged = [e for e in events(toy) if e["event"] == "job_finished"]
    assert logged[0]["true_score"] == logged[1]["true_score"]


# ---- 2. a fixed vocabulary of failures; no flags --------------------------------------------------------------
@needs_sandbox
def test_a_failed_job_tells_one_line_of_the_vocabulary_and_nothing_the_method_chose(toy):
    service, client = start(toy, job_timeout_s=8)
    leak = "raise ValueError('SECRET ' + ' | '.join(ctx.test_texts[:5]))"
    own = "raise Label_0110('SECRET')"
    cases = {
        leak: RAISED.format("ValueError"),
        own: RAISED.format("an exception of its own class"),
        "return np.zeros(3)": "the method returned predictions of the wrong shape "
        "(one p(label=1) per test text is expected)",
        "return ['SECRET'] * len(ctx.test_texts)": "the method returned predictions that are not numbers in [0, 1]",
        f"open({str(toy / 'state' / 'log.jsonl')!r}).read()": "the sandbox denied the method a path or an address",
        "time.sleep(60)": "the method exceeded its time limit (the least of the campaign's method limit and your "
        "compute left)",
        "os._exit(37)": "the method's sealed process ended without replying",
    }
    try:
        views = {
            body: wait(client["alice"], submit(client["alice"], method(body, top="class Label_0110(Exception): pass")))
            for body in cases
        }
    finally:
        service.stop()
    for body, told in cases.items():
        assert views[body]["status"] == "failed" and views[body]["reason"] == told, (body, views[body])
        assert "SECRET" not in json.dumps(views[body]) and "log.jsonl" not in json.dumps(views[body])
    errors = [e.get("method_error") or "" for e in events(toy) if e["event"] == "job_finished"]
    assert any("SECRET review" in e for e in errors)  # the operator's log has the method's own line


@needs_sandbox
def test_flags_never_reach_the_agent_and_the_finals_report_them(toy):
    """A method that reads the label off the toy's text (no strong work, PGR far above 0.5) is flagged: the
    log and the finals say so; the job's answer, its history and the budget do not."""
    cheat = method("return np.array([1.0 if 'great' in t else 0.0 for t in ctx.test_texts], dtype=np.float32)")
    service, client = start(toy)
    try:
        view = wait(client["alice"], submit(client["alice"], cheat))
        history = client["alice"].call("history")
        client["alice"].call("nominate_final", {"job": view["job"]})
    finally:
        service.stop()
    assert view["status"] == "done" and "flags" not in view
    text = json.dumps([view, history])
    assert "no_strong_work" not in text and "flag" not in text
    logged = [e for e in events(toy) if e["event"] == "job_finished"][0]
    assert "no_strong_work" in logged["flags"]["toy"]
    from w2sbench.serve.finals import run_finals

    record = run_finals(service.campaign, say=lambda line: None)[0]
    assert "no_strong_work" in record["tasks"]["toy"]["flags"]


# ---- 3. budgets bound what they name ------------------------------------------------------------------------------
@needs_sandbox
def test_racing_submissions_never_spend_more_compute_than_the_budget(toy):
    sleeper = method("time.sleep(4)\n" + WEAK)
    service, client = start(toy, budgets={"alice": {"compute_seconds": 20}})
    outcomes: list = []

    def one():
        try:
            outcomes.append(submit(client["alice"], sleeper))
        except ToolError as e:
            outcomes.append(e)

    try:
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = [o for o in outcomes if isinstance(o, str)]
        views = [wait(client["alice"], j) for j in jobs]
        budget = client["alice"].call("budget")
    finally:
        service.stop()
    assert any(isinstance(o, ToolError) and o.status == 429 for o in outcomes)  # reserved when accepted
    charged = sum(e["compute_s"] for e in events(toy) if e["event"] == "job_finished")
    charged += sum(e["charged"] for e in events(toy) if e["event"] == "probe")
    assert charged <= 20 + 1e-6 and budget["compute_seconds_left"] >= 0
    assert all(v["compute_seconds"] <= 20 for v in views)


@needs_sandbox
def test_the_budget_is_checked_and_charged_before_any_probe_runs(toy):
    slow_import = "import time\ntime.sleep(3)\n" + PLAIN
    service, client = start(toy, budgets={"bob": {"evaluations": 0}})
    try:
        began = time.monotonic()
        with pytest.raises(ToolError, match="budget exhausted") as refused:
            client["bob"].call("submit_method", {"files": {"__init__.py": slow_import}})
        assert refused.value.status == 429 and time.monotonic() - began < 2.5  # no code of bob's ran
        before = client["alice"].call("budget")
        job = client["alice"].call("submit_method", {"files": {"__init__.py": slow_import}})
        after = client["alice"].call("budget")
        wait(client["alice"], job["job"])
    finally:
        service.stop()
    assert after["evaluations_left"] == before["evaluations_left"] - 1
    # the probe's 3 s of import are charged (the job's time is reserved on top of that)
    assert before["compute_seconds_left"] - after["compute_seconds_left"] - after["compute_seconds_reserved"] >= 3
    assert not [e for e in events(toy) if e["event"] == "probe" and e["agent"] == "bob"]


@needs_sandbox
def test_the_probe_has_its_own_time_limit(toy):
    service, client = start(toy, probe={"timeout_s": 2})
    try:
        began = time.monotonic()
        with pytest.raises(ToolError, match=r"^importing your code took longer than the probe's limit of 2 s$"):
            client["alice"].call("submit_method", {"files": {"__init__.py": "import time\ntime.sleep(30)\n" + PLAIN}})
        assert time.monotonic() - began < 15
    finally:
        service.stop()
    probes = [e for e in events(toy) if e["event"] == "probe"]
    assert probes[0]["charged"] == pytest.approx(2.0)  # its whole limit, and not a second more


@needs_sandbox
def test_the_probe_has_its_own_memory_limit(toy):
    service, client = start(toy, probe={"memory_gib": 0.5})
    try:
        with pytest.raises(ToolError, match=r"^importing your code exceeded the probe's memory limit of 512 MiB$"):
            hog = 'block = b"x" * (1 << 30)\n' + PLAIN  # every page written
            client["alice"].call("submit_method", {"files": {"__init__.py": hog}})
    finally:
        service.stop()


# ---- 4. fair sharing ------------------------------------------------------------------------------------------------
@needs_sandbox
def test_agents_are_served_in_turn_and_a_slow_job_delays_another_agent_by_at_most_its_limit(toy):
    """bob has run two jobs before; alice then queues three slow ones and bob one. bob's starts right after
    alice's first (not after every agent with fewer jobs has caught up), alice's first ends at its limit for
    the whole job (4 seeds of 2 s each, limit 5 s), and bob's jobs_ahead counts none of alice's."""
    limit = 5.0
    service, client = start(toy, job_timeout_s=limit, method_seeds=4)
    slow = method("time.sleep(2)\n" + WEAK, fields="k: int = 0")
    try:
        for k in range(2):
            wait(client["bob"], submit(client["bob"], method(WEAK, fields="k: int = 0"), k=k))
        alices = [submit(client["alice"], slow, k=k) for k in range(3)]
        bobs = submit(client["bob"], method(WEAK, fields="k: int = 0"), k=5)
        ahead = client["bob"].call("job", {"job": bobs})
        for j in alices:
            wait(client["alice"], j)
        wait(client["bob"], bobs)
    finally:
        service.stop()
    assert ahead["status"] != "queued" or ahead["jobs_ahead"] == 0
    started = {e["job"]: e["time"] for e in events(toy) if e["event"] == "job_started"}
    assert started[alices[0]] < started[bobs] < started[alices[1]]
    assert started[bobs] - started[alices[0]] <= limit + 3.0


@needs_sandbox
def test_n_workers_run_jobs_of_two_agents_at_once(toy):
    service, client = start(toy, workers=2)
    slow = method("time.sleep(3)\n" + WEAK)
    try:
        jobs = {name: submit(client[name], slow) for name in ("alice", "bob")}
        for name, job in jobs.items():
            assert wait(client[name], job)["status"] == "done"
    finally:
        service.stop()
    log = events(toy)
    spans = [
        (
            next(e["time"] for e in log if e["event"] == "job_started" and e["job"] == j),
            next(e["time"] for e in log if e["event"] == "job_finished" and e["job"] == j),
        )
        for j in jobs.values()
    ]
    assert max(s for s, _ in spans) < min(f for _, f in spans)  # the two ran at the same time


# ---- 5. the probe: bounded, and no built-in's name, no shadowed API -----------------------------------------------
def forge(**description) -> str:
    """Code whose import writes a description of its own choosing where the probe's reply goes (stdout once;
    now the reply's own pipe, whose number the probe's argv names) and ends the process before the probe can
    describe it."""
    doc = {"class": "Plain", "name": "plain", "version": 1, "description": "", "uses_weak_labels": True}
    card = dict.fromkeys(("authors", "code", "paper", "license", "contact", "recipe_notes", "non_default_recipe"))
    line = json.dumps({**doc, "kind": "loss", "hyperparameters": [], "card": card, **description})
    return (
        "import os, sys\n"
        f"line = {line!r}\n"
        "print(line, end='', flush=True)\n"
        "for fd in {int(a) for a in sys.argv[1:2] if a.isdigit()} | set(range(3, 12)):\n"
        "    try:\n"
        "        os.write(fd, line.encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    )


@needs_sandbox
def test_a_probe_cannot_pass_for_a_built_in_or_shadow_the_method_api(toy):
    builtin = [forge(**{"class": "Vanilla", "name": "vanilla"}), PLAIN.replace('name = "plain"', 'name = "vanilla"')]
    shadows = [
        forge(hyperparameters=[{"name": "name", "type": "str", "default": "vanilla"}]),  # ran and logged as vanilla
        forge(hyperparameters=[{"name": "config", "type": "int", "default": 0}]),  # broke the harness
        PLAIN + "    run_name: int = 0\n",
    ]
    service, client = start(toy)
    try:
        for code in builtin:
            with pytest.raises(ToolError, match="reserved for a built-in method"):
                client["alice"].call("submit_method", {"files": {"__init__.py": code}})
        for code in shadows:
            with pytest.raises(ToolError, match="shadows the method API|named like a part of the method API"):
                client["alice"].call("submit_method", {"files": {"__init__.py": code}})
        assert client["alice"].call("history")["jobs"] == []
    finally:
        service.stop()


@needs_sandbox
def test_the_probes_output_is_read_up_to_a_bound_and_the_rest_dropped(toy):
    loud = "import sys\nsys.stdout.write('x' * (64 << 20))\nsys.stdout.flush()\n" + PLAIN
    service, client = start(toy)
    try:
        tracemalloc.start()
        job = client["alice"].call("submit_method", {"files": {"__init__.py": loud}})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert wait(client["alice"], job["job"])["status"] == "done"
    finally:
        service.stop()
    assert peak < 16 << 20, f"the service held {peak >> 20} MiB of the probe's output"
    probe = [e for e in events(toy) if e["event"] == "probe"][0]
    assert 0 < len(probe["console"]) <= 16 * 1024  # what it printed, cut, for the operator


def test_the_sealed_process_reports_the_description_the_probe_gave(tmp_path):
    """The sealed child describes the class it loads (isolation.loader.describe_class) as the probe did, so the
    harness can refuse a code that describes itself otherwise there (isolation.sealed: its first frame)."""
    from w2sbench.isolation.loader import describe_class, import_class
    from w2sbench.isolation.probe import probe
    from w2sbench.methods.identity import source_of

    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "__init__.py").write_text(PLAIN.replace('name = "plain"', 'name = "plain"\n    alpha: float = 0.5'))
    origin = {"kind": "folder", "path": str(folder)}
    loaded = import_class(origin, None)  # as the sealed child loads it (this test chooses to run the code)
    if sandbox.unavailable_reason() is None:
        assert probe(origin, None, source_of(origin).sha256) == describe_class(loaded)
    assert describe_class(loaded)["hyperparameters"] == [{"name": "alpha", "type": "float", "default": 0.5}]


@needs_sandbox
def test_a_code_that_describes_itself_otherwise_in_the_sealed_process_fails_its_job(toy):
    two_faced = (
        "import sys\nfrom w2sbench.methods import LossMethod\n\n\n"
        "class Plain(LossMethod):\n"
        "    name = 'plain' if sys.argv[0].endswith('probe.py') else 'other'\n"
    )
    service, client = start(toy)
    try:
        view = wait(client["alice"], submit(client["alice"], two_faced))
    finally:
        service.stop()
    assert view["reason"] == "the method's code describes itself differently in the sealed process than in the probe"


# ---- 6. malformed requests: 4xx, one line, logged, nothing left behind ---------------------------------------------
@pytest.fixture
def http(toy):
    service = Service(load_campaign(serve_toy.campaign_yaml(toy, TOKENS, calls_per_agent=2)), run_jobs=False)
    server = make_server(service, "127.0.0.1", 0)
    serve_in_thread(server)
    yield service, server.server_address[1]
    server.shutdown()
    service.stop()


def raw(port: int, head: bytes, body: bytes = b"", timeout: float = 10, trickle: float = 0) -> tuple[int, dict]:
    """Send a request as bytes (optionally the body a byte at a time); the status and the JSON answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        for i in range(len(body)) if trickle else ():
            if select.select([s], [], [], trickle)[0]:
                break  # the answer came: stop sending (more bytes would reset the connection)
            s.sendall(body[i : i + 1])
        if not trickle:
            s.sendall(body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


def post(tool: str, body: bytes, length: str | None = "auto", token: str = TOKENS["alice"]) -> bytes:
    lines = [f"POST /api/{tool} HTTP/1.1", "Host: x", f"Authorization: Bearer {token}"]
    if length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@needs_sandbox
@pytest.mark.parametrize(
    "body, status",
    [
        (b'{"files": {"__init__.py": "x = \'\\ud800\'"}}', 400),  # a lone surrogate in a file
        (b'{"files": {"__init__.py": "x = 1"}, "hyperparameters": {"tag": "\\udc00"}}', 400),  # in a string value
        (b'{"files": {"__init__.py": "x = 1", "X": "", "X/y.py": ""}}', 400),  # a file and a folder of one name
        (b"[" * 100_000 + b"]" * 100_000, 400),  # nested 100,000 deep
        (b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}", 400),  # nested deeper than the service keeps
    ],
)
def test_a_malformed_request_is_a_4xx_line_in_the_log_and_leaves_nothing(http, toy, body, status):
    service, port = http
    got, answer = raw(port, post("submit_method", body), body)
    assert got == status and list(answer) == ["error"] and "\n" not in answer["error"]
    assert [e for e in events(toy) if e["event"] == "refused"], "not in the log"
    assert not list((toy / "state" / "code").glob("*tmp*"))
    assert raw(port, post("budget", b"{}"), b"{}")[0] == 200  # and the service goes on


@needs_sandbox
def test_bad_lengths_and_slow_bodies_are_refused_in_time(http, toy, monkeypatch):
    from w2sbench.serve import http_api

    monkeypatch.setattr(http_api, "BODY_SECONDS", 2.0)
    service, port = http
    began = time.monotonic()
    assert raw(port, post("budget", b"{}", length="-1"), b"{}", timeout=5)[0] == 400
    assert raw(port, post("budget", b"", length=None), timeout=5)[0] == 411
    assert raw(port, post("budget", b"{}" + b" " * 20), b"{}" + b" " * 20, timeout=10, trickle=0.5)[0] == 408
    assert time.monotonic() - began < 8
    reasons = [e["reason"] for e in events(toy) if e["event"] == "refused"]
    assert len(reasons) == 3 and any("Content-Length" in r for r in reasons) and any("2 s" in r for r in reasons)


@needs_sandbox
def test_headers_that_trickle_in_are_cut_off(http, toy, monkeypatch):
    from w2sbench.serve import http_api

    monkeypatch.setattr(http_api, "HEADER_SECONDS", 2.0)
    service, port = http
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        for byte in post("budget", b"{}")[:-4]:  # never the blank line that ends the headers
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([s], [], [], 0.2)[0]:
                break
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
    assert closed and time.monotonic() - began < 8
    assert any(e["event"] == "refused" and "headers" in e["reason"] for e in events(toy))


@needs_sandbox
def test_an_agent_may_have_only_its_share_of_calls_open(http, toy):
    service, port = http  # calls_per_agent: 2
    held = []
    for _ in range(2):  # two calls whose bodies never come
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(post("budget", b"{}" * 10))
        held.append(s)
    time.sleep(0.5)
    try:
        assert raw(port, post("budget", b"{}"), b"{}", timeout=5)[0] == 429
        assert raw(port, post("budget", b"{}", token=TOKENS["bob"]), b"{}", timeout=5)[0] == 200  # others go on
    finally:
        for s in held:
            s.close()
    assert any(e["event"] == "refused" and "too many calls" in e["reason"] for e in events(toy))


@needs_sandbox
def test_over_http_a_refusal_is_the_services_line(http):
    service, port = http
    client = HttpClient(f"http://127.0.0.1:{port}", TOKENS["alice"])
    with pytest.raises(ToolError, match="is both a file and a folder") as e:
        client.call("submit_method", {"files": {"__init__.py": "", "a": "", "a/b.py": ""}})
    assert e.value.status == 400
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/budget", data=b"{"), timeout=5)


# ---- the vocabulary, line by line (the harness's templates: a change there must show here) --------------------
@pytest.mark.parametrize(
    "line, told",
    [
        (
            "method 'x' failed on task 't' seed 0; its own error: ValueError: SECRET (File \"/c/__init__.py\", line 3)",
            RAISED.format("ValueError"),
        ),
        (
            "method 'x' failed on task 't' seed 1; its own error: Leak_0110: SECRET",
            RAISED.format("an exception of its own class"),
        ),
        (
            "method 'x' failed on task 't' seed 0; its own error: loading the method: ImportError: SECRET",
            "the method's code failed to load in the sealed process",
        ),
        (
            "method 'x' did not finish on task 't' seed 0 within its time limit of 5 s (the setting's ...): stopped",
            "the method exceeded its time limit (the least of the campaign's method limit and your compute left)",
        ),
        (
            "method 'x' exceeded its memory limit of 8 GiB on task 't' seed 0: stopped",
            "the method exceeded its memory limit",
        ),
        (
            "method 'x' exceeded its limit on processes and threads of 4096 on task 't' seed 0: stopped",
            "the method exceeded a limit of its sandbox (processes and threads, /tmp, /dev/shm or file size)",
        ),
        (
            "method 'x' returned predictions of shape (3,); expected (200,): p(label=1) per test text",
            "the method returned predictions of the wrong shape (one p(label=1) per test text is expected)",
        ),
        (
            "method 'x' returned NaN or infinite predictions (3 of 200)",
            "the method returned predictions that are not numbers in [0, 1]",
        ),
        (
            "method 'x' tried to read /secret/path: denied by the sandbox (on task 't' seed 0)",
            "the sandbox denied the method a path or an address",
        ),
        (
            "method 'x': its sealed process died (exit code 37) on task 't' seed 0",
            "the method's sealed process ended without replying",
        ),
        (
            "method 'x' sent a reply the harness refuses on task 't' seed 0: SECRET",
            "the method's sealed process sent a reply the harness refuses",
        ),
        (
            "method 'x' sent a reply the harness refuses on task 't' seed 0: a description of itself that differs "
            "from the one its code gave the probe (fields name)",
            "the method's code describes itself differently in the sealed process than in the probe",
        ),
        (
            "method 'x' declares uses_weak_labels=False but read the weak labels",
            "the method read the weak labels though it declares uses_weak_labels=False",
        ),
        (
            "method 'other' failed on task 't' seed 0; its own error: ValueError: SECRET",
            "the harness failed on this job (the operator's log says why)",
        ),
        ("SECRET", "the harness failed on this job (the operator's log says why)"),
    ],
)
def test_every_failure_line_of_the_harness_maps_to_the_vocabulary(line, told):
    from w2sbench.serve.failures import VOCABULARY, job_failure

    assert job_failure(line, "x[k=1]") == told
    assert told in VOCABULARY or told.startswith("the method raised ")


def test_the_noisy_rule_blurs_the_threshold_and_keeps_its_budget_of_releases():
    """An agent one example below the threshold submits a flip: right, its score reaches the threshold; wrong,
    it stays one example below. The fixed Ladder tells the two apart every time; the noisy rule releases them
    at rates within a factor e^(epsilon/8) (Laplace noise of 8 m / epsilon on each comparison, m one
    example's move), and still releases a clear improvement at a multiple of the step above the best."""
    from w2sbench.serve import ladder

    rng = np.random.default_rng(0)
    move, step, eps, best = 0.0133, 0.027, 2.0, 0.3
    right, wrong = best + step, best + step - move
    assert ladder.fixed_step(right, best, step).new_best and not ladder.fixed_step(wrong, best, step).new_best

    def rate(score):
        return np.mean([ladder.noisy(score, best, step, move, eps, 0.0, rng).new_best for _ in range(40_000)])

    r, w = rate(right), rate(wrong)
    assert w < r <= w * np.exp(eps / 8) * 1.05
    rho = ladder.threshold_noise(move, eps, rng)
    decision = ladder.noisy(best + 0.4, best, step, move, eps, rho, rng)
    assert decision.new_best and decision.released >= best + step - 1e-9
    assert abs(decision.released / step - round(decision.released / step)) < 1e-6


@needs_sandbox
def test_what_a_dead_service_left_is_taken_over_only_by_the_one_that_runs_jobs(toy, monkeypatch):
    """A kill -9 during a probe left its reservation, which nothing would settle; a running job, which the
    finals (sharing a live service's state) must not queue again."""
    from w2sbench.serve.state import State

    path = serve_toy.campaign_yaml(toy, TOKENS)
    state = State(toy / "state")
    state.agent_row("alice")
    with state.transaction() as db:
        db.execute("UPDATE agents SET compute_reserved = 75 WHERE name = 'alice'")  # a probe's, cut short
        db.execute(
            "INSERT INTO jobs (id, seq, agent, status, method, description, hyperparameters, code_sha256, submitted,"
            " reserved_s) VALUES ('j1', 1, 'alice', 'running', 'plain', '{}', '{}', 'x', 0, 25)"
        )
    state.close()
    finals = Service(load_campaign(path), run_jobs=False)
    assert finals.state.query("SELECT status FROM jobs")[0]["status"] == "running"  # the live service's
    assert finals.call(TOKENS["alice"], "budget")["compute_seconds_reserved"] == 75
    monkeypatch.setattr(Service, "_work", lambda self: None)  # no worker picks the job up here
    monkeypatch.setattr(Service, "_warm_up", lambda self: None)
    service = Service(load_campaign(path))
    assert service.state.query("SELECT status FROM jobs")[0]["status"] == "queued"
    assert service.call(TOKENS["alice"], "budget")["compute_seconds_reserved"] == 25  # the job's, kept


@needs_sandbox
def test_the_noisy_rule_in_the_service_spends_its_budget_of_releases(toy):
    """Under noisy_ladder with one release, the first job is released and nothing after it, however much
    better (a method reading the label off the toy's text): the agent is told the best again."""
    service, client = start(toy, rule={"kind": "noisy_ladder", "step": 0.05, "releases": 1})
    cheat = method("return np.array([1.0 if 'great' in t else 0.0 for t in ctx.test_texts], dtype=np.float32)")
    try:
        assert client["alice"].call("budget")["releases_left"] == 1
        first = wait(client["alice"], submit(client["alice"], method(WEAK)))
        second = wait(client["alice"], submit(client["alice"], cheat))
        left = client["alice"].call("budget")["releases_left"]
    finally:
        service.stop()
    assert first["new_best"] and abs(first["released_score"] / 0.05 - round(first["released_score"] / 0.05)) < 1e-6
    assert not second["new_best"] and second["released_score"] == first["released_score"] and left == 0
    true = [e["true_score"] for e in events(toy) if e["event"] == "job_finished"]
    assert true[1] > true[0] + 0.5  # far better, and still not said
