"""The pipeline beyond the frozen default: the LoRA regime end to end on the real packaged MiniLM (weak,
ceiling and a sealed method fine-tune; the weak labels go through the inference backend; a rerun is all
cache hits), and a chat model reading the task prompt through its chat template."""

import numpy as np

from w2sbench.cache import ArtifactStore
from w2sbench.engine.executors import run_pipeline as run_evaluation
from w2sbench.engine.pipeline import Pipeline
from w2sbench.engine.spec import RunOptions
from w2sbench.methods import load_method
from w2sbench.reports.results import build_results
from w2sbench.schema_io import validate
from w2sbench.settings import load_setting
from w2sbench.tasks import load_task

SETTING = "tests/fixtures/settings/lora-minilm.yaml"
SIZES = {"train_label": 16, "train_unlabel": 24, "test": 16}


def run(store):
    pipeline = Pipeline(
        load_setting(SETTING), [load_task("rotten_tomatoes")], RunOptions(backend="hf", limit=SIZES, n_boot=200), store
    )
    record = run_evaluation(pipeline, [load_method("vanilla")])
    return pipeline, record.tasks, build_results(record)


def test_lora_regime_end_to_end(tmp_path):
    store = ArtifactStore(root=tmp_path)
    pipeline, runs, doc = run(store)
    validate(doc, "results", "lora run")
    assert doc["setting"]["config"]["regime"] == "lora"
    assert doc["cache"]["misses"] == {"weak": 1, "ceiling": 1, "method": 1}  # no feature stages
    assert doc["backend"]["used"] == {"labels:weak": "hf"}  # the weak labels went through the backend
    task = runs[0]
    for probs in (task.weak_test, task.ceiling_test, task.methods["vanilla"].test_probs):
        assert probs.shape == (1, 16) and np.all((probs >= 0) & (probs <= 1))
    assert task.methods["vanilla"].compute[0]["train_example_epochs"] == 24
    again = run(ArtifactStore(root=tmp_path))[2]
    assert again["cache"]["misses"] == {} and again["tasks"] == doc["tasks"]


def test_fine_tuned_weak_model_served_by_the_inference_backend(tmp_path):
    """The LoRA student's labels computed in-process and through the default backend (vLLM where
    installed: adapter merged, the engine pools the hidden states, the trained head reads them) agree."""
    from w2sbench.inference.served import served_predictions
    from w2sbench.model_folders import resolve_model
    from w2sbench.training import FineTuneTrainer

    task = load_task("rotten_tomatoes")
    splits = task.load_splits(SIZES)
    inputs = {name: [e.text for e in getattr(splits, name)] for name in ("train_label", "train_unlabel", "test")}
    setting = load_setting(SETTING)
    trainer = FineTuneTrainer(str(resolve_model(setting.weak.model)), inputs, setting.recipes["weak"], "mean", 48)
    student = trainer.fit("train_label", np.array([e.label for e in splits.train_label], np.float32), seed=0)
    inprocess = {split: student.predict(split) for split in ("train_unlabel", "test")}
    served, backend = served_predictions(student, ("train_unlabel", "test"), "auto", tmp_path)  # releases it
    for split in ("train_unlabel", "test"):
        np.testing.assert_allclose(served[split], inprocess[split], atol=1e-3)
    import importlib.util

    assert backend == ("vllm" if importlib.util.find_spec("vllm") else "hf")


def test_chat_model_reads_the_prompt_through_its_chat_template():
    from w2sbench.engine.pipeline import Pipeline as P

    task = load_task("rotten_tomatoes")
    pipeline = P(
        load_setting("tests/fixtures/settings/chat-smollm2.yaml"), [task], RunOptions(backend="hf", limit=SIZES)
    )
    text = pipeline.splits(task).test[0].text
    weak = pipeline.inputs.model_inputs("weak", task, "test")[0]
    strong = pipeline.inputs.model_inputs("strong", task, "test")[0]
    assert strong == task.prompt(text)
    # SmolLM2's template: the prompt as the user turn, then the assistant's turn opened for the answer
    assert f"<|im_start|>user\n{task.prompt(text)}<|im_end|>\n" in weak
    assert weak.endswith("<|im_start|>assistant\n")


def test_label_token_weak_model_served_by_the_inference_backend(tmp_path):
    """The label_tokens readout (aar-twin's weak model: SmolLM2 through its chat template): the LoRA student's
    labels in-process and through the default backend (vLLM where installed: adapter merged, one next-token
    step, the label words' renormalised probabilities, as the AAR sandbox serves weak labels) agree."""
    from w2sbench.inference.served import served_predictions

    setting = load_setting("aar-twin")
    task = load_task("aar_chat_mini")
    pipeline = Pipeline(
        setting, [task], RunOptions(backend="hf", limit={"train_label": 8, "train_unlabel": 8, "test": 8})
    )
    trainer = pipeline.trainer("weak", task)
    assert trainer.recipe.head == "label_tokens" and trainer.label_words == ("A", "B")
    assert trainer.inputs["test"][0].endswith("<|im_start|>assistant\n")  # the chat template's answer turn
    splits = pipeline.splits(task)
    student = trainer.fit("train_label", np.array([e.label for e in splits.train_label], np.float32), seed=0)
    assert student.readout == "label_tokens" and student.head is None
    inprocess = {split: student.predict(split) for split in ("train_unlabel", "test")}
    served, backend = served_predictions(student, ("train_unlabel", "test"), "auto", tmp_path)  # releases it
    for split in ("train_unlabel", "test"):
        np.testing.assert_allclose(served[split], inprocess[split], atol=1e-3)
    import importlib.util

    assert backend == ("vllm" if importlib.util.find_spec("vllm") else "hf")
