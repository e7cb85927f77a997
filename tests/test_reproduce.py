"""`w2sbench leaderboard reproduce`: a submission counts once the harness has rerun its method from the
submitted code, in the sandbox, and matched its numbers; the outcome is a record of its own
(leaderboard/records/), holding the rerun's correctness vectors. Here on tests/support/toy.py's small task (real
method stage and sandbox, synthetic features), with the method submitted under leaderboard/methods/. The
code's hash is checked before anything imports it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.toy import make_pipeline, toy_inputs  # noqa: I001

from w2sbench import load_method
from w2sbench.cache import ArtifactStore
from w2sbench.engine import inputs
from w2sbench.engine.executors import run_pipeline as run
from w2sbench.engine.pipeline import Pipeline
from w2sbench.engine.spec import RunOptions
from w2sbench.errors import ConfigError
from w2sbench.isolation import probe as probe_module
from w2sbench.isolation import sandbox
from w2sbench.leaderboard import records, submission
from w2sbench.leaderboard import reproduce as rep
from w2sbench.leaderboard.submission import make_submission, write_submission
from w2sbench.reports.results import build_results
from w2sbench.schema_io import validate
from w2sbench.settings import load_setting
from w2sbench.tasks import load_task

pytestmark = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="no sandbox here")

METHOD = '''
import numpy as np
from w2sbench.methods import LossMethod


class Sharpish(LossMethod):
    """Vanilla on weak labels pushed {push} of the way to 0/1."""

    name = "sharpish"
    description = "vanilla on sharpened weak labels (a test submission)"

    def targets(self, ctx):
        w = ctx.weak_unlabel
        return (1 - {push}) * w + {push} * (w >= 0.5), None
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A repository root in tmp_path: the toy task registered, its synthetic features in place of a model,
    and a method submitted under leaderboard/methods/sharpish/."""
    pipe, task = make_pipeline(tmp_path)  # writes toy.yaml/toy.jsonl and fixes the features
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", str(tmp_path))
    monkeypatch.setattr(inputs, "HARNESS_INPUTS", toy_inputs(tmp_path, pipe.inputs.feats))  # every Pipeline here
    monkeypatch.setattr(submission, "repo_root", lambda: tmp_path)  # code_entry names the code relative to it
    code = tmp_path / "leaderboard" / "methods" / "sharpish" / "__init__.py"
    code.parent.mkdir(parents=True)
    code.write_text(textwrap.dedent(METHOD).format(push=0.5))
    return tmp_path, code


def submit(root: Path, code: Path) -> Path:
    cls = load_method(f"{code}:Sharpish")
    store = ArtifactStore(root / "cache")
    setting = load_setting("tiny")
    record = run(Pipeline(setting, [load_task("toy")], RunOptions(n_boot=200), store), [cls])
    record.models = {role: {"id": setting.spec(role).model} for role in ("weak", "strong")}  # no model was resolved
    sub = make_submission(
        [("results.json", build_results(record))],
        "sharpish",
        cls,
        {"authors": ["Test"], "license": "MIT", "code": "leaderboard/methods/sharpish"},
    )
    path = root / "sharpish.json"
    write_submission(sub, path)
    return path


def reproduce(root: Path, path: Path) -> dict:
    record = rep.reproduce_submission(path, root / "cache", root=root)
    records.write_record(record, root / "leaderboard" / "records", path)
    return record


def test_a_submission_reproduces_from_its_code(toy):
    root, code = toy
    path = submit(root, code)
    doc = json.loads(path.read_text())
    assert (
        doc["method"]["source"]["path"] == "leaderboard/methods/sharpish"
        and doc["method"]["source"]["kind"] == "folder"
        and "reproduced" not in doc
    )
    assert records.find_record(root / "leaderboard" / "records", path) == (
        None,
        "not reproduced yet (w2sbench leaderboard reproduce)",
    )
    record = reproduce(root, path)
    assert record["ok"] and record["failures"] == []
    validate(record, "record", "record.json")
    task = record["settings"]["tiny"]["tasks"]["toy"]
    assert task["difference"] == 0.0 and task["agreement"] == 1.0  # deterministic: the same to the digit
    # the record holds the rerun's own vectors, equal here to the submitted ones
    assert task["correct"] == doc["results"][0]["tasks"]["toy"]["methods"]["sharpish"]["w2s"]["correct"]
    assert record["sandbox"]["network"] == "loopback only" and record["described"]["teacher_free"] is False
    assert record["submission"] == {"file": "sharpish.json", "sha256": records.submission_digest(doc)}
    found, why = records.find_record(root / "leaderboard" / "records", path)
    assert why is None and records.status(doc, found) is None

    # the submitter edits a number after reproduction: the record no longer vouches for the file
    doc["results"][0]["tasks"]["toy"]["methods"]["sharpish"]["w2s"]["accuracy"] += 0.05
    assert records.status(doc, found) == (
        "the submission changed after it was reproduced (or its record is of another file)"
    )


def test_inflated_numbers_do_not_reproduce(toy):
    root, code = toy
    path = submit(root, code)
    doc = json.loads(path.read_text())
    row = doc["results"][0]["tasks"]["toy"]["methods"]["sharpish"]["w2s"]
    row["accuracy"] = min(1.0, row["accuracy"] + 0.05)
    path.write_text(json.dumps(doc))
    record = reproduce(root, path)
    assert not record["ok"]
    assert record["failures"] == [
        f"tiny/toy: w2s accuracy {100 * (row['accuracy'] - 0.05):.1f}% reproduced vs "
        f"{100 * row['accuracy']:.1f}% submitted (5.0 points > 1.0)"
    ]
    found, _ = records.find_record(root / "leaderboard" / "records", path)
    assert records.status(doc, found).startswith("did not reproduce: tiny/toy")


MARKER_CODE = """
try:  # the code's top level leaves a mark on the host wherever it is imported outside the sandbox
    open({marker!r}, "w").write("imported")
except OSError:
    pass
"""


@pytest.fixture
def probe_unsealed(monkeypatch):
    """Every probe of this test runs in a plain child process, so that code imported by it would leave its
    mark on the host: whether the harness ever asks to import it shows."""
    from w2sbench.isolation import resolve

    calls = []
    real = resolve.probe

    def spy(origin, class_name, code_sha256, sealed=True, **kwargs):
        calls.append(origin)
        return real(origin, class_name, code_sha256, sealed=False, **kwargs)

    monkeypatch.setattr(resolve, "probe", spy)
    return calls


def test_the_code_hash_is_checked_before_anything_imports_it(toy, probe_unsealed):
    """Issue 28: `reproduce` imported a submitted entry before checking its hash. Code edited after the
    submission (its top level now writes a marker) is refused by its hash, and the marker is never written;
    with the code that was submitted, the same path does import it (in the sandbox; here unsealed, to see it)."""
    root, code = toy
    marker = root / "marker"
    code.write_text(textwrap.dedent(METHOD).format(push=0.5) + MARKER_CODE.format(marker=str(marker)))
    path = submit(root, code)
    marker.unlink(missing_ok=True)
    probe_unsealed.clear()
    code.write_text(code.read_text() + "# edited after the submission\n")
    with pytest.raises(ConfigError, match=r"method.source.sha256.*reproduce with the code that produced it"):
        rep.reproduce_submission(path, root / "cache", root=root)
    assert not marker.exists() and probe_unsealed == []
    code.write_text(code.read_text().replace("# edited after the submission\n", ""))
    probe_module._memo.clear()  # submit() described this very code: ask again
    record = rep.reproduce_submission(path, root / "cache", root=root)
    assert record["ok"] and marker.read_text() == "imported" and len(probe_unsealed) == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"path": "tests/elsewhere"}, "method.source.path"),
        ({"path": "leaderboard/methods/../methods/sharpish"}, "method.source.path"),
        ({"entry": "leaderboard/methods/other/__init__.py:Sharpish"}, "method.source.entry"),
        ({"kind": "package", "package": "numpy", "entry": "sharpish"}, "method.source.package"),
    ],
)
def test_code_that_is_not_its_own_folder_is_refused_before_anything_runs(toy, probe_unsealed, change, field):
    root, code = toy
    path = submit(root, code)
    probe_unsealed.clear()
    doc = json.loads(path.read_text())
    doc["method"]["source"].update(change)
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        rep.reproduce_submission(path, root / "cache", root=root)
    assert probe_unsealed == []


def test_a_symlinked_entry_file_is_refused_before_anything_runs(toy, probe_unsealed):
    root, code = toy
    path = submit(root, code)
    probe_unsealed.clear()
    real = root / "hidden" / "__init__.py"
    real.parent.mkdir()
    real.write_text(code.read_text())
    code.unlink()
    code.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        rep.reproduce_submission(path, root / "cache", root=root)
    assert probe_unsealed == []


CONFIGURABLE = '''
import numpy as np
from w2sbench.methods import LossMethod


class Sharpish(LossMethod):
    """Vanilla on weak labels pushed `push` of the way to 0/1."""

    name = "sharpish"
    description = "vanilla on sharpened weak labels (a test submission)"
    push: float = 0.5

    def targets(self, ctx):
        w = ctx.weak_unlabel
        return (1 - self.push) * w + self.push * (w >= 0.5), None
'''


def test_a_configured_method_is_submitted_and_reproduced_with_its_hyperparameters(toy):
    """The submission of `sharpish[push=0.9]` records its config; reproducing it reruns that config, not the
    defaults (push 0.5 and push 0.9 predict differently on the toy task)."""
    root, code = toy
    code.write_text(CONFIGURABLE)
    cls = load_method(f"{code}:Sharpish")
    setting = load_setting("tiny")
    results, probs = {}, {}
    for push in (0.5, 0.9):
        record = run(
            Pipeline(setting, [load_task("toy")], RunOptions(n_boot=200), ArtifactStore(root / "cache")),
            [cls(push=push)],
        )
        record.models = {role: {"id": setting.spec(role).model} for role in ("weak", "strong")}
        results[push] = build_results(record)
        probs[push] = next(iter(record.tasks[0].methods.values())).test_probs
    name = "sharpish[push=0.9]"
    assert list(results[0.9]["methods"]) == [name] and results[0.9]["methods"][name]["config"] == {"push": 0.9}
    # the process trained with push 0.9, not the default (the toy head barely moves: small, but not equal)
    assert not np.array_equal(probs[0.5], probs[0.9])
    sub = make_submission(
        [("results.json", results[0.9])], name, cls, {"authors": ["Test"], "license": "MIT", "code": "x"}
    )
    path = root / "configured.json"
    write_submission(sub, path)
    assert sub["method"]["name"] == name
    record = rep.reproduce_submission(path, root / "cache", root=root)
    assert record["ok"] and record["settings"]["tiny"]["tasks"]["toy"]["difference"] == 0.0
    assert record["settings"]["tiny"]["config"] == {"push": 0.9}
    # the recorded config is what reruns: edited to the defaults, the numbers no longer match
    doc = json.loads(path.read_text())
    doc["results"][0]["methods"][name]["config"] = {"push": 0.5}
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"config': this config runs the method as 'sharpish', not 'sharpish\[push"):
        rep.reproduce_submission(path, root / "cache", root=root)


def test_correctness_vectors_edited_apart_from_the_predictions_do_not_reproduce(toy):
    """A vector reordered so that its count (the accuracy validation checks) is unchanged still differs from
    the rerun's predictions: the entry does not count."""
    import numpy as np

    from w2sbench.scoring import decode_correct, encode_correct

    root, code = toy
    path = submit(root, code)
    doc = json.loads(path.read_text())
    row = doc["results"][0]["tasks"]["toy"]["methods"]["sharpish"]["w2s"]
    n = doc["results"][0]["tasks"]["toy"]["n"]["test"]
    bits = decode_correct(row["correct"], n)
    row["correct"] = encode_correct(bits[:, ::-1])  # the same counts, other examples
    path.write_text(json.dumps(doc))
    outcome = rep.reproduce_submission(path, root / "cache", root=root)
    assert not outcome["ok"]
    task = outcome["settings"]["tiny"]["tasks"]["toy"]
    assert task["difference"] == 0.0 and task["agreement"] == pytest.approx(float(np.mean(bits[:, ::-1] == bits)))
    assert task["correct"] == encode_correct(bits)  # the record keeps the rerun's vectors, not the submitted ones
    assert outcome["failures"] == [
        f"tiny/toy: the submitted per-example correctness matches the rerun's on {100 * task['agreement']:.1f}% "
        f"of test predictions (< 98%)"
    ]
