"""A method that is not built in is known to the harness by the description its code gives inside the sandbox:
checked field by field, turned into a stand-in, rebuilt elsewhere from the same data, never imported."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from w2sbench.isolation.described import (
    DescriptionRejected,
    check_description,
    described,
    load_unit_spec,
    stand_in,
    unit_spec,
)
from w2sbench.methods import load_method
from w2sbench.methods.identity import method_source, origin_of

GOOD = {
    "class": "Fixed",
    "name": "fixed",
    "version": 1,
    "description": "test",
    "uses_weak_labels": True,
    "kind": "run",
    "hyperparameters": [{"name": "flip", "type": "int", "default": -1}],
    "card": {
        "authors": ["a"],
        "code": None,
        "paper": None,
        "license": None,
        "contact": None,
        "recipe_notes": None,
        "non_default_recipe": None,
    },
}

CODE = """
import numpy as np
from w2sbench.methods import Method


class Fixed(Method):
    name = "fixed"
    description = "test"
    authors = ["a"]
    flip: int = -1

    def run(self, ctx):
        return np.full(len(ctx.test_texts), 0.5)
"""


def _with(path: str, value) -> dict:
    doc = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(
    "reply",
    [
        [],
        {"error": ["not", "text"]},
        _with("extra", 1),
        _with("kind", KeyError),
        _with("kind", "pickle"),
        _with("class", "a.b"),
        _with("name", "X Y"),
        _with("version", True),
        _with("description", "x" * 501),
        _with("hyperparameters.0", {"name": "k", "type": "object", "default": {"__reduce__": 1}}),
        _with("hyperparameters.0", {"name": "k", "type": "float", "default": [1, 2]}),
        _with("hyperparameters.0", {"name": "k", "type": "float", "default": float("nan")}),
        _with("hyperparameters.0", {"name": "k", "type": "int", "default": 1, "doc": "x"}),
        # names of the method API: `name` made a job run and be logged as another method, `config` broke the harness
        _with("hyperparameters.0.name", "name"),
        _with("hyperparameters.0.name", "config"),
        _with("hyperparameters.0.name", "run_name"),
        _with("hyperparameters.0.name", "loss"),
        _with("hyperparameters", [GOOD["hyperparameters"][0]] * 2),
        _with("card.authors", "me"),
        _with("card.non_default_recipe", "yes"),
        _with("card.license", "x" * 501),
        _with("card.extra", 1),
    ],
)
def test_what_the_probe_sends_back_is_checked_field_by_field(reply):
    assert check_description(copy.deepcopy(GOOD)) == GOOD  # the control passes
    with pytest.raises(DescriptionRejected):
        check_description(reply)


def test_a_unit_names_a_described_method_by_its_description_and_another_process_rebuilds_it(tmp_path):
    """What a Ray worker does with a method unit: it rebuilds the same stand-in from the unit's spec (checked
    again) and never imports the code; built-ins are named by their import, and nothing else is importable."""
    folder, marker = tmp_path / "code", tmp_path / "imported"
    folder.mkdir()
    (folder / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n" + CODE)
    origin = {"kind": "folder", "path": str(folder)}
    cls = stand_in(GOOD, origin)
    assert described(cls) == (GOOD, origin) and cls.authors == ["a"]
    spec = unit_spec(cls)
    assert spec.startswith("described:")
    worker = (
        "import json, sys\n"
        "from w2sbench.isolation.described import load_unit_spec\n"
        "from w2sbench.methods.identity import method_source, origin_of\n"
        "cls = load_unit_spec(sys.argv[1])\n"
        "print(json.dumps([cls(flip=3).run_name, origin_of(cls), method_source(cls).sha256]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", worker, spec], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, child_origin, sha = json.loads(proc.stdout)
    assert name == cls(flip=3).run_name == "fixed[flip=3]"
    assert child_origin == origin_of(cls) == origin  # the sealed process loads the code from there
    assert sha == method_source(cls).sha256
    assert not marker.exists()  # nothing imported the code, here or there
    tampered = json.loads(spec.removeprefix("described:"))
    tampered["description"]["hyperparameters"][0]["type"] = "object"
    with pytest.raises(DescriptionRejected, match="unsupported type"):
        load_unit_spec("described:" + json.dumps(tampered))
    tampered = json.loads(spec.removeprefix("described:"))
    tampered["origin"] = {"kind": "folder", "path": "relative/path"}
    with pytest.raises(DescriptionRejected, match="absolute path"):
        load_unit_spec("described:" + json.dumps(tampered))
    with pytest.raises(DescriptionRejected, match="spec"):
        load_unit_spec("described:[1]")
    assert unit_spec(load_method("logconf")) == "w2sbench.methods.builtin:LogConf"
    assert load_unit_spec("w2sbench.methods.builtin:LogConf") is load_method("logconf")
    with pytest.raises(DescriptionRejected, match="not a built-in"):
        load_unit_spec("subprocess:Popen")


def _code(tmp_path, top: str) -> dict:
    folder = tmp_path / "code"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(top + "\n" + CODE)
    return {"kind": "folder", "path": str(folder)}


def test_the_probe_has_its_own_time_and_memory_limits_and_reads_a_bounded_reply(tmp_path):
    """An import that sleeps, one that takes memory and one that prints 64 MiB: each ends in one line (or a
    description), within the probe's limits, and the harness keeps a bounded part of what it printed."""
    import time

    from w2sbench.isolation.probe import ProbeFailed
    from w2sbench.isolation.quotas import Quotas, enforcement
    from w2sbench.isolation.resolve import describe

    start = time.monotonic()
    with pytest.raises(ProbeFailed, match="took longer than 3 s") as exc:
        describe(_code(tmp_path / "slow", "import time\ntime.sleep(600)"), None, timeout_s=3)
    assert exc.value.limit == "time" and time.monotonic() - start < 30
    console: list[str] = []
    cls = describe(_code(tmp_path / "loud", "import sys\nsys.stdout.write('x' * (64 << 20))"), None, console=console)
    assert cls.name == "fixed" and 0 < len(console[0]) < 40_000 and "bytes left out" in console[0]
    quotas = Quotas(memory=512 << 20)
    if enforcement(quotas) is None:
        pytest.skip("no control group here: the memory limit is not enforced")
    with pytest.raises(ProbeFailed, match="exceeded its memory limit") as exc:
        describe(_code(tmp_path / "big", "x = bytearray(2 << 30)"), None, quotas=quotas)
    assert exc.value.limit == "memory"
