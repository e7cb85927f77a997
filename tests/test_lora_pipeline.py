"""The LoRA regime through the whole pipeline: weak, ceiling and a method fine-tune the real packaged
MiniLM (sealed method process included), the results validate, and a rerun is all cache hits."""

import numpy as np

from w2sbench.cache import ArtifactStore
from w2sbench.methods import load_method
from w2sbench.pipeline import Pipeline, RunOptions
from w2sbench.results import build_results
from w2sbench.settings import load_setting
from w2sbench.tasks import load_task
from w2sbench.validation import validate

SETTING = "tests/fixtures/settings/lora-minilm.yaml"
SIZES = {"train_label": 16, "train_unlabel": 24, "test": 16}


def run(store):
    pipeline = Pipeline(load_setting(SETTING), [load_task("rotten_tomatoes")],
                        RunOptions(backend="hf", sizes=SIZES, n_boot=200, progress=False), store)
    runs = pipeline.run([load_method("vanilla")])
    return pipeline, runs, build_results(pipeline, runs)


def test_lora_regime_end_to_end(tmp_path):
    store = ArtifactStore(root=tmp_path)
    pipeline, runs, doc = run(store)
    validate(doc, "results", "lora run")
    assert doc["setting"]["config"]["regime"] == "lora"
    assert doc["cache"]["misses"] == {"weak": 1, "ceiling": 1, "method": 1}  # no feature stages
    task = runs[0]
    for probs in (task.weak_test, task.ceiling_test, task.methods["vanilla"].test_probs):
        assert probs.shape == (1, 16) and np.all((probs >= 0) & (probs <= 1))
    assert task.methods["vanilla"].compute[0]["train_example_epochs"] == 24
    again = run(ArtifactStore(root=tmp_path))[2]
    assert again["cache"]["misses"] == {} and again["tasks"] == doc["tasks"]
