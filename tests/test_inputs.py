"""The inputs job's seam (w2sbench/engine/inputs.py): a Pipeline takes the RunInputs factory it is given,
else the harness's; nothing a run spec, a campaign file or a sweep file says can select one."""

from __future__ import annotations

from dataclasses import fields

import pytest

from w2sbench.cache import ArtifactStore
from w2sbench.engine import inputs
from w2sbench.engine.inputs import RunInputs, use_inputs
from w2sbench.engine.pipeline import Pipeline
from w2sbench.engine.spec import RunOptions, RunSpec
from w2sbench.errors import W2SError
from w2sbench.settings import load_setting


class Marked(RunInputs):
    made: list[RunInputs] = []

    def __init__(self, *args):
        super().__init__(*args)
        Marked.made.append(self)


def build(tmp_path, **kwargs) -> Pipeline:
    return Pipeline(load_setting("tiny"), [], RunOptions(), ArtifactStore(tmp_path), **kwargs)


def test_a_pipeline_takes_the_inputs_it_is_given_else_the_harness_default(tmp_path):
    Marked.made.clear()
    given = build(tmp_path, inputs=Marked)
    assert Marked.made == [given.inputs]
    # the stages read the same inputs, which record into the pipeline's own ledger and store
    assert given.stages.inputs is given.inputs
    assert given.inputs.ledger is given.ledger and given.inputs.store is given.store
    assert type(build(tmp_path).inputs) is RunInputs
    with use_inputs(Marked):  # a Pipeline built inside run(spec) (evaluate(), the service) takes this one
        assert type(build(tmp_path).inputs) is Marked
    assert type(build(tmp_path).inputs) is RunInputs and len(Marked.made) == 2
    assert inputs.harness_inputs() is RunInputs


def test_the_inputs_are_a_constructor_argument_no_run_description_reaches(tmp_path):
    """Keyword-only on Pipeline, and no knob of a run: a campaign or sweep file naming it is refused."""
    with pytest.raises(TypeError):
        Pipeline(load_setting("tiny"), [], RunOptions(), ArtifactStore(tmp_path), None, Marked)
    assert "inputs" not in {f.name for f in fields(RunSpec)} | {f.name for f in fields(RunOptions)}
    with pytest.raises(W2SError) as caught:
        RunSpec.build("campaign.yaml", {"methods": ["vanilla"], "tasks": ["toy"], "inputs": "x:Y"})
    assert "inputs" in str(caught.value) and "unknown knob" in str(caught.value)
