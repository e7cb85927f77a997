"""The hub task suite (Burns et al. five + the EleutherAI/w2s list) and the row formatters.

Every hub task is loaded through the real loader and its real formatter from a few invented rows
written in that hub data set's own column layout (tests/fixtures/hub/<task>/<hub split>.jsonl|parquet):
the test swaps `source.type: hub` for a local source with the same split mapping. The expected texts
and labels below are written out by hand from the YAMLs' templates. Nothing here touches the network:
sockets refuse to connect for the whole module.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from w2sbench.errors import ConfigError, UnknownNameError
from w2sbench.tasks import Task, list_tasks, resolve_tasks
from w2sbench.tasks.formatters import (
    apply_formatter,
    choice_vs_distractor,
    formatter_names,
    row_rng,
    sciq,
)
from w2sbench.tasks.sources import PARQUET_EXPORT

REPO = Path(__file__).resolve().parent.parent
HUB_TASKS = REPO / "tasks" / "hub"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hub"
BURNS5 = {"sciq", "boolq", "cosmos_qa", "amazon_polarity", "anthropic_hh"}


pytestmark = pytest.mark.usefixtures("isolated_data", "no_network")


def hub_names() -> list[str]:
    return sorted(p.stem for p in HUB_TASKS.glob("*.yaml"))


def localize(name: str, tmp_path: Path, fixture_dir: Path | None = None) -> Task:
    """The hub task `name`, its source swapped for the local fixture files of the same hub splits."""
    config = yaml.safe_load((HUB_TASKS / f"{name}.yaml").read_text(encoding="utf-8"))
    source = config["source"]
    assert source["type"] == "hub"
    parts = {re.sub(r"\[.*?\]", "", p) for p in source["split"].values()}
    folder = fixture_dir or FIXTURES / name
    files = {p: str(next(folder.glob(f"{p}.*"))) for p in sorted(parts)}
    config["source"] = {"type": "local", "path": files, "split": source["split"]}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Task.from_file(path)


# ------------------------------------------------------------------------------------- expected rows, by hand

Options = set[tuple[str, int]]


def one(text: str, label: int) -> Options:
    return {(text, label)}


def either(render: Any, right: str, wrong: list[str]) -> Options:
    """Row shown with its right answer (label 1) or with one of its wrong answers (label 0)."""
    return {(render(right), 1)} | {(render(w), 0) for w in wrong}


def _hs(ctx: str, endings: list[str]) -> Any:
    return lambda a: f"Context: {ctx}\nContinuations:\n" + "\n".join(endings) + f"\nProposed continuation: {a}"


def _obqa(stem: str, texts: list[str]) -> Any:
    lettered = "\n".join(f"{k}) {t}" for k, t in zip("ABCD", texts))
    return lambda a: f"Q: {stem}\nChoices:\n{lettered}\nProposed answer: {a}"


def _cosmos(ctx: str, q: str) -> Any:
    return lambda a: f"Context: {ctx}\nQuestion: {q}\nAnswer: {a}"


def _hh(human: str, assistant: str) -> str:
    return f"Human: {human}\n\nAssistant: {assistant}"


def _util(better: str, worse: str) -> Options:
    return {(f"Scenario 1: {better}\nScenario 2: {worse}", 0), (f"Scenario 1: {worse}\nScenario 2: {better}", 1)}


# Each task: (rows that must appear, in any order: the allowed (text, label) pairs of each), and the
# texts of the rows its test split is drawn from.
EXPECTED: dict[str, list[Options]] = {
    "sciq": [
        either(
            lambda a: f"Q: What gas do plants absorb for photosynthesis? A: {a}",
            "carbon dioxide",
            ["oxygen", "nitrogen", "helium"],
        ),
        either(
            lambda a: f"Q: What is the powerhouse of the cell? A: {a}",
            "mitochondria",
            ["nucleus", "ribosome", "vacuole"],
        ),
        either(lambda a: f"Q: Which planet is closest to the sun? A: {a}", "mercury", ["venus", "earth", "mars"]),
        either(lambda a: f"Q: What unit measures electric current? A: {a}", "ampere", ["volt", "ohm", "watt"]),
        either(lambda a: f"Q: What is the chemical symbol of sodium? A: {a}", "Na", ["So", "Sd", "S"]),
        either(lambda a: f"Q: Which organ pumps blood? A: {a}", "heart", ["lung", "liver", "kidney"]),
        either(
            lambda a: f"Q: What force pulls objects toward earth? A: {a}",
            "gravity",
            ["friction", "magnetism", "tension"],
        ),
        either(
            lambda a: f"Q: Water boils at how many degrees celsius at sea level? A: {a}", "100", ["90", "80", "120"]
        ),
    ],
    "boolq": [
        one("Passage: The sky appears blue because of Rayleigh scattering.\nQuestion: is the sky blue", 1),
        one("Passage: Most fish breathe through gills, not lungs.\nQuestion: do fish have lungs", 0),
        one("Passage: Paris is the capital and largest city of France.\nQuestion: is paris the capital of france", 1),
        one("Passage: Penguins are flightless birds of the southern hemisphere.\nQuestion: can penguins fly", 0),
        one(
            "Passage: Ice floats because it is less dense than liquid water.\nQuestion: is ice less dense than water", 1
        ),
    ],
    "cosmos_qa": [
        either(
            _cosmos("I missed the bus this morning.", "Why was I late?"),
            "I missed the bus .",
            ["I overslept .", "It rained .", "None of the above choices ."],
        ),
        either(
            _cosmos("She smiled at the gift.", "How did she feel?"),
            "Happy .",
            ["Angry .", "Bored .", "None of the above choices ."],
        ),
        # the right answer is "None of the above choices .": Burns et al. always show a wrong one (label 0)
        {
            (_cosmos("The store was closed.", "What did we do next?")(a), 0)
            for a in ["We went in .", "We bought milk .", "We paid ."]
        },
        either(
            _cosmos("He studied all night.", "What happened after?"),
            "He was tired .",
            ["He slept well .", "He ran .", "None of the above choices ."],
        ),
        either(
            _cosmos("The dog barked loudly.", "Why did it bark?"),
            "A stranger came .",
            ["It was asleep .", "It ate .", "None of the above choices ."],
        ),
    ],
    "amazon_polarity": [
        one("Great kettle Boils fast and looks nice.", 1),
        one("Broke quickly Stopped working after a week.", 0),
        one("Love it Best purchase this year.", 1),
        one("Meh Cheap plastic, poor fit.", 0),
        one("Awful Arrived damaged.", 0),
        one("Works Does exactly what it says.", 1),
    ],
    "anthropic_hh": [
        {
            (_hh("How do I boil an egg?", "Place it in boiling water for about nine minutes."), 1),
            (_hh("How do I boil an egg?", "Eggs are overrated."), 0),
        },
        {(_hh("What is two plus two?", "Two plus two is four."), 1), (_hh("What is two plus two?", "Five."), 0)},
        {
            (_hh("Can you help me write a poem?", "Sure, what should it be about?"), 1),
            (_hh("Can you help me write a poem?", "No."), 0),
        },
        {
            (_hh("How tall is Everest?", "About 8,849 metres."), 1),
            (_hh("How tall is Everest?", "Very tall, I guess."), 0),
        },
        {
            (_hh("Is it safe to eat raw chicken?", "No, raw chicken can carry salmonella; cook it thoroughly."), 1),
            (_hh("Is it safe to eat raw chicken?", "Sure, go ahead."), 0),
        },
        {
            (_hh("Recommend a book.", "You might enjoy 'The Hobbit' by J.R.R. Tolkien."), 1),
            (_hh("Recommend a book.", "Books are boring."), 0),
        },
    ],
    "twitter_sentiment": [
        one("just got the job!!! so happy right now", 1),
        one("my phone died again, worst day ever", 0),
        one("sunny morning and fresh coffee :)", 1),
        one("stuck in traffic for two hours... ugh", 0),
        one("can't wait for the weekend with friends", 1),
        one("missed the last bus home, great.", 0),
    ],
    "sst2": [
        one("a gorgeous , witty film", 1),
        one("dull and lifeless", 0),
        one("the best thing this year", 1),
        one("a tedious mess", 0),
        one("it 's a charming and often affecting journey .", 1),
        one("unflinchingly bleak and desperate", 0),
    ],
    "cola": [
        one("The cat sat on the mat.", 1),
        one("Mat the on sat cat the.", 0),
        one("She has eaten.", 1),
        one("She have eated.", 0),
        one("John seems to be happy.", 1),
        one("John seems happy to being.", 0),
    ],
    "paws": [
        one("Sentence 1: The cat chased the dog.\nSentence 2: The dog chased the cat.", 0),
        one("Sentence 1: He left early in the morning.\nSentence 2: Early in the morning, he left.", 1),
        one("Sentence 1: Anna sold the car to Ben.\nSentence 2: Ben sold the car to Anna.", 0),
        one("Sentence 1: The river flows north.\nSentence 2: Northward flows the river.", 1),
        one("Sentence 1: Tom is older than Sue.\nSentence 2: Sue is older than Tom.", 0),
        one("Sentence 1: The meeting ended at noon.\nSentence 2: At noon the meeting ended.", 1),
    ],
    "hellaswag": [
        either(
            _hs(
                "A man cracks eggs into a bowl. He",
                e := ["whisks them with a fork.", "throws the bowl away.", "sings to the eggs.", "paints the bowl."],
            ),
            e[0],
            e[1:],
        ),
        either(
            _hs(
                "A woman ties her running shoes. She",
                e := ["eats the laces.", "starts jogging down the road.", "falls asleep.", "reads the shoe."],
            ),
            e[1],
            [e[0], e[2], e[3]],
        ),
        either(
            _hs(
                "A child opens a present. The child",
                e := ["sells the house.", "flies away.", "smiles at the toy inside.", "eats the paper."],
            ),
            e[2],
            [e[0], e[1], e[3]],
        ),
        either(
            _hs(
                "Someone fills a kettle. They",
                e := ["drink the kettle.", "bury it.", "fold it.", "put it on the stove."],
            ),
            e[3],
            e[:3],
        ),
        either(
            _hs(
                "A dog sees a ball. The dog",
                e := ["runs after the ball.", "writes a letter.", "drives a car.", "cooks dinner."],
            ),
            e[0],
            e[1:],
        ),
    ],
    "quail": [
        either(
            lambda a: (
                "Passage:\nMia lost her keys and searched the whole house.\n\n"
                f"Question: Why did Mia search the house?\nProposed answer: {a}"
            ),
            "She lost her keys",
            ["She was bored", "She was cleaning", "not enough information"],
        ),
        either(
            lambda a: (
                "Passage:\nThe train was late, so Sam took a taxi.\n\nQuestion: How did Sam travel?\n"
                f"Proposed answer: {a}"
            ),
            "By taxi",
            ["By train", "On foot", "not enough information"],
        ),
        either(
            lambda a: (
                f"Passage:\nRavi planted tomatoes in spring.\n\nQuestion: When did Ravi plant?\nProposed answer: {a}"
            ),
            "In spring",
            ["In winter", "In autumn", "not enough information"],
        ),
        either(
            lambda a: (
                f"Passage:\nLena baked bread for her neighbours.\n\nQuestion: Who got the bread?\nProposed answer: {a}"
            ),
            "Her neighbours",
            ["Her boss", "Her cat", "not enough information"],
        ),
    ],
    "social_i_qa": [
        either(
            lambda a: (
                "Context: Jordan helped a friend move house.\nQuestion: How would the friend feel?\n"
                f"Choices:\ngrateful\nangry\nsleepy\nProposed answer: {a}"
            ),
            "grateful",
            ["angry", "sleepy"],
        ),
        either(
            lambda a: (
                "Context: Casey forgot her mother's birthday.\nQuestion: What will Casey want to do next?\nChoices:\n"
                f"go swimming\napologize to her mother\nbuy a car\nProposed answer: {a}"
            ),
            "apologize to her mother",
            ["go swimming", "buy a car"],
        ),
        either(
            lambda a: (
                "Context: Alex won the race.\nQuestion: How would Alex feel?\nChoices:\nsad\nhungry\nproud\n"
                f"Proposed answer: {a}"
            ),
            "proud",
            ["sad", "hungry"],
        ),
        either(
            lambda a: (
                "Context: Riley dropped her ice cream.\nQuestion: How would Riley feel?\n"
                f"Choices:\ndisappointed\nvictorious\nrich\nProposed answer: {a}"
            ),
            "disappointed",
            ["victorious", "rich"],
        ),
    ],
    "openbookqa": [
        either(
            _obqa("A magnet will stick to", t := ["wood", "an iron nail", "glass", "plastic"]), t[1], [t[0], t[2], t[3]]
        ),
        either(_obqa("Plants need sunlight to", t := ["make food", "sleep", "walk", "sing"]), t[0], t[1:]),
        either(
            _obqa(
                "Ice melting is an example of",
                t := ["a chemical reaction", "condensation", "a phase change", "erosion"],
            ),
            t[2],
            [t[0], t[1], t[3]],
        ),
        either(_obqa("The moon reflects light from", t := ["the earth", "stars", "lamps", "the sun"]), t[3], t[:3]),
    ],
    "dream": [
        either(
            lambda a: (
                "M: Shall we take the bus?\nW: No, let's walk, it's sunny.\n\nQ: How will they travel?\n"
                f"Proposed answer: {a}"
            ),
            "On foot.",
            ["By bus.", "By car."],
        ),
        either(
            lambda a: (
                "W: Did you finish the report?\nM: Yes, I sent it at noon.\n\nQ: When was the report sent?\n"
                f"Proposed answer: {a}"
            ),
            "At noon.",
            ["In the morning.", "At midnight."],
        ),
        either(
            lambda a: (
                "M: I'd like tea, please.\nW: Milk or lemon?\nM: Lemon.\n\nQ: What will the man drink?\n"
                f"Proposed answer: {a}"
            ),
            "Tea with lemon.",
            ["Coffee.", "Juice."],
        ),
        either(
            lambda a: (
                "W: The shop closes at six.\nM: Then we must hurry.\n\nQ: When does the shop close?\n"
                f"Proposed answer: {a}"
            ),
            "At six.",
            ["At five.", "At seven."],
        ),
    ],
    "mc_taco": [
        one("He brushed his teeth.\nQuestion: How long did it take?\nCandidate answer: two minutes", 1),
        one("He brushed his teeth.\nQuestion: How long did it take?\nCandidate answer: three years", 0),
        one("She flew to Tokyo.\nQuestion: How long was the flight?\nCandidate answer: twelve hours", 1),
        one("She flew to Tokyo.\nQuestion: How long was the flight?\nCandidate answer: five seconds", 0),
        one("They ate dinner.\nQuestion: How long did dinner last?\nCandidate answer: an hour", 1),
        one("They ate dinner.\nQuestion: How long did dinner last?\nCandidate answer: a decade", 0),
    ],
    "anli_r2": [
        one("Premise: A man is playing a guitar on stage.\nHypothesis: A man is performing music.", 1),  # entailment
        one("Premise: A man is playing a guitar on stage.\nHypothesis: The man is a famous singer.", 0),  # neutral
        one("Premise: A man is playing a guitar on stage.\nHypothesis: The man is asleep at home.", 0),  # contradiction
        one("Premise: The shop opened in 1990.\nHypothesis: The shop has existed since 1990.", 1),
        one("Premise: Two dogs run across a field.\nHypothesis: Animals are outside.", 1),
        one("Premise: Two dogs run across a field.\nHypothesis: The dogs are sleeping.", 0),
    ],
    "piqa": [
        either(
            lambda a: f"Goal: Keep bread fresh\nSolution: {a}", "Store it in a sealed bag.", ["Leave it in the sun."]
        ),
        either(lambda a: f"Goal: Open a jar\nSolution: {a}", "Run the lid under hot water.", ["Freeze the lid."]),
        either(
            lambda a: f"Goal: Dry wet shoes\nSolution: {a}", "Stuff them with newspaper.", ["Fill them with water."]
        ),
        either(
            lambda a: f"Goal: Cool soup quickly\nSolution: {a}",
            "Put it in a wide shallow bowl.",
            ["Cover it with a blanket."],
        ),
    ],
    "ethics_deontology": [
        one("Scenario: Aren't you supposed to feed the dog?\nExcuse: No, because my brother fed it an hour ago.", 1),
        one("Scenario: Aren't you supposed to feed the dog?\nExcuse: No, because the dog is brown.", 0),
        one("Scenario: Could you drive me to work?\nExcuse: But my car is in the repair shop.", 1),
        one("Scenario: Can you water the plants?\nExcuse: But I watered them last year.", 0),
    ],
    "ethics_justice": [
        one("I deserve a raise because I took on extra duties this year.", 1),
        one("I deserve a raise because my hair is brown.", 0),
        one("I used to give my son a ride, but not anymore because he got his own car.", 1),
        one("I deserve the prize because I wore a hat.", 0),
    ],
    "ethics_virtue": [
        one("She returned the wallet she found. [SEP] honest", 1),
        one("She returned the wallet she found. [SEP] greedy", 0),
        one("He shouted at the waiter. [SEP] kind", 0),
        one("He shared his lunch with a hungry classmate. [SEP] generous", 1),
    ],
    "ethics_utilitarianism": [
        _util("I ate a delicious cake at the party.", "I ate a stale cake at the party."),
        _util("My flight arrived early.", "My flight was delayed five hours."),
        _util("I found ten dollars on the street.", "I lost ten dollars on the street."),
        _util("The sun came out during my picnic.", "It poured during my picnic."),
        _util("My friend called to say hello.", "My friend called to cancel our plans."),
    ],
}

# The texts each task's test split must come from (its hub test part), as (row index in EXPECTED).
TEST_ROWS: dict[str, list[int]] = {
    "sciq": [6, 7],
    "boolq": [3, 4],
    "cosmos_qa": [4],
    "amazon_polarity": [4, 5],
    "anthropic_hh": [4, 5],
    "sst2": [4, 5],
    "cola": [4, 5],
    "paws": [4, 5],
    "hellaswag": [4],
    "quail": [3],
    "social_i_qa": [3],
    "openbookqa": [3],
    "dream": [3],
    "mc_taco": [4, 5],
    "anli_r2": [4, 5],
    "piqa": [3],
    "ethics_deontology": [3],
    "ethics_justice": [3],
    "ethics_virtue": [3],
    "ethics_utilitarianism": [4],
    "twitter_sentiment": [4, 5],
}


# ------------------------------------------------------------------------------------- the suite as declared


def test_the_suite_is_complete_and_tagged() -> None:
    names = set(hub_names())
    assert names == set(EXPECTED), "every hub task needs a fixture and hand-written expectations"
    assert {t.name for t in resolve_tasks("burns5")} == BURNS5
    eleuther = {t.name for t in resolve_tasks("eleuther")}
    assert BURNS5 <= eleuther and len(eleuther - BURNS5) >= 8
    assert "default" not in {tag for n in names for tag in Task.from_file(HUB_TASKS / f"{n}.yaml").tags}


@pytest.mark.parametrize("name", hub_names())
def test_hub_yaml_declares_source_splits_balance_and_card(name: str) -> None:
    task = Task.from_file(HUB_TASKS / f"{name}.yaml")
    source = task.config["source"]
    assert source["type"] == "hub" and "/" in source["path"], "a full hub id, owner/name"
    assert set(source["split"]) == {"train_label", "train_unlabel", "test"}
    assert source["split"]["train_label"] == source["split"]["train_unlabel"] != source["split"]["test"]
    assert task.config["balance"] is True
    assert {"source", "citation", "license", "url"} <= set(task.card)
    assert "hub" in task.tags and ("eleuther" in task.tags)


def test_cli_lists_the_suite_with_tags() -> None:
    from w2sbench.cli import cli

    result = CliRunner().invoke(cli, ["tasks"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "burns5" in lines["sciq"] and "hub:allenai/sciq" in lines["sciq"]
    assert "eleuther" in lines["hellaswag"]
    assert "aar-indist" in lines["aar_chat"] and "aar-heldout" in lines["aar_code"]


# ------------------------------------------------------------------------------------- real loader on fixtures


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_rows_load_as_written_by_hand(name: str, tmp_path: Path) -> None:
    task = localize(name, tmp_path)
    got = [(e.text, e.label) for e in task.load_examples()]
    assert len(got) == len(EXPECTED[name]) == len(set(got))
    for options in EXPECTED[name]:
        hits = [g for g in got if g in options]
        assert len(hits) == 1, f"{name}: none of {sorted(options)[:2]}... in {got}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_test_split_comes_from_the_mapped_hub_split(name: str, tmp_path: Path) -> None:
    task = localize(name, tmp_path)
    examples = task.load_examples()
    test_options = set().union(*(EXPECTED[name][i] for i in TEST_ROWS[name]))
    n_test = sum(1 for e in examples if (e.text, e.label) in test_options)
    # balancing needs both labels in the tiny fixture parts; where they lack them, load without it
    task.config["balance"] = False
    splits = task.load_splits({"train_label": 1, "train_unlabel": 1, "test": 10_000})
    assert len(splits.test) == n_test, "a test part of its own is used whole, capped by the YAML size"
    assert all((e.text, e.label) in test_options for e in splits.test)
    assert not any((e.text, e.label) in test_options for e in splits.train_label + splits.train_unlabel)


@pytest.mark.parametrize("name", ["sciq", "hellaswag", "anthropic_hh", "ethics_utilitarianism", "piqa", "dream"])
def test_random_formatters_show_both_labels(name: str, tmp_path: Path) -> None:
    labels = [e.label for e in localize(name, tmp_path).load_examples()]
    assert 0 in labels and 1 in labels


def test_formatting_is_independent_of_row_order(tmp_path: Path) -> None:
    lines = (FIXTURES / "sciq" / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled = tmp_path / "fx"
    shuffled.mkdir()
    (shuffled / "train.jsonl").write_text("".join(reversed(lines)), encoding="utf-8")
    (shuffled / "test.jsonl").write_text(
        (FIXTURES / "sciq" / "test.jsonl").read_text(encoding="utf-8"), encoding="utf-8"
    )
    a = {(e.text, e.label) for e in localize("sciq", tmp_path).load_examples()}
    b = {(e.text, e.label) for e in localize("sciq", tmp_path, shuffled).load_examples()}
    assert a == b


def test_balanced_splits_from_mapped_parts(tmp_path: Path) -> None:
    task = localize("sst2", tmp_path)  # train 2 + 2, validation 1 + 1
    splits = task.load_splits({"train_label": 2, "train_unlabel": 2, "test": 872})
    assert sorted(e.label for e in splits.test) == [0, 1]
    assert sorted(e.label for e in splits.train_label) == [0, 1] == sorted(e.label for e in splits.train_unlabel)
    assert {e.text for e in splits.test} == {
        "it 's a charming and often affecting journey .",
        "unflinchingly bleak and desperate",
    }
    with pytest.raises(ConfigError, match="needs 6 rows") as info:
        task.load_splits({"train_label": 2, "train_unlabel": 4, "test": 2})
    assert info.value.field == "splits"


EXPORT_TASKS = sorted(
    n
    for n in hub_names()
    if yaml.safe_load((HUB_TASKS / f"{n}.yaml").read_text())["source"].get("revision") == PARQUET_EXPORT
)


def write_parquet_export(name: str, root: Path) -> Path:
    """The task's fixture rows laid out as the hub's parquet export: <config>/<split>/0000.parquet with no
    README. When the task names a configuration, a decoy configuration with the same columns sits beside it,
    as the other ETHICS configurations do in hendrycks/ethics's export."""
    import pandas as pd

    source = yaml.safe_load((HUB_TASKS / f"{name}.yaml").read_text())["source"]
    folders = [source.get("name") or "default"] + (["decoy"] if source.get("name") else [])
    for fixture in sorted((FIXTURES / name).iterdir()):
        frame = (
            pd.read_json(fixture, lines=True, dtype=False) if fixture.suffix == ".jsonl" else pd.read_parquet(fixture)
        )
        for folder in folders:
            out = root / folder / fixture.stem
            out.mkdir(parents=True, exist_ok=True)
            (frame.iloc[:1] if folder == "decoy" else frame).to_parquet(out / "0000.parquet")
    return root


@pytest.mark.parametrize("name", EXPORT_TASKS)
def test_parquet_export_layout_reads_the_named_configuration(name: str, tmp_path: Path) -> None:
    """The hub source as declared (name, revision, split mapping) over a local copy of the export's layout:
    the same examples as the plain fixture files, none from a neighbouring configuration."""
    assert {"ethics_deontology", "hellaswag", "cosmos_qa"} <= set(EXPORT_TASKS)
    config = yaml.safe_load((HUB_TASKS / f"{name}.yaml").read_text(encoding="utf-8"))
    config["source"]["path"] = str(write_parquet_export(name, tmp_path / "export"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    got = sorted((e.text, e.label) for e in Task.from_file(path).load_examples())
    (tmp_path / "plain").mkdir()
    want = sorted((e.text, e.label) for e in localize(name, tmp_path / "plain").load_examples())
    assert got == want


def test_hub_source_offline_is_a_clear_error() -> None:
    task = Task.from_file(HUB_TASKS / "sciq.yaml")
    with pytest.raises(ConfigError) as info:
        task.load_examples()
    assert info.value.field == "source" and "allenai/sciq" in str(info.value)


# ------------------------------------------------------------------------------------- formatters


def test_row_rng_is_seeded_by_row_name_and_seed() -> None:
    row = {"q": "x", "n": 1}
    assert row_rng(row, "sciq").random() == row_rng(dict(reversed(list(row.items()))), "sciq").random()
    draws = {
        row_rng(row, "sciq").random(),
        row_rng(row, "sciq", 1).random(),
        row_rng(row, "other").random(),
        row_rng({"q": "y", "n": 1}, "sciq").random(),
    }
    assert len(draws) == 4


def test_sciq_is_half_right_and_never_mislabels() -> None:
    rows = [
        {
            "question": f"q{i}",
            "correct_answer": f"right{i}",
            "distractor1": "w1",
            "distractor2": "w2",
            "distractor3": "w3",
            "support": "",
        }
        for i in range(2000)
    ]
    out = apply_formatter(rows, "sciq")
    share = sum(r["hard_label"] for r in out) / len(out)
    assert 0.46 < share < 0.54
    for r in out:
        assert (r["answer"] == r["correct_answer"]) == bool(r["hard_label"])
    assert {r["answer"] for r in out if not r["hard_label"]} == {"w1", "w2", "w3"}
    assert sciq(rows[0], random.Random(0), {}) == sciq(rows[0], random.Random(0), {})


def test_choice_vs_distractor_answer_types_and_drops() -> None:
    rng = random.Random(0)
    base = {"opts": ["a", "b", "c"]}
    for answer, kind, extra in [
        (1, "index", {}),
        ("2", "index", {"index_base": 1}),
        ("b", "text", {}),
        ("B", "letter", {}),
    ]:
        for _ in range(20):
            out = choice_vs_distractor(
                {**base, "ans": answer}, rng, {"choices": "opts", "answer": "ans", "answer_type": kind, **extra}
            )
            assert out is not None and (out["answer"] == "b") == bool(out["hard_label"])
    # a hidden test label ("" or -1) drops the row
    assert choice_vs_distractor({**base, "ans": ""}, rng, {"choices": "opts", "answer": "ans"}) is None
    assert choice_vs_distractor({**base, "ans": -1}, rng, {"choices": "opts", "answer": "ans"}) is None
    # a wrong answer identical to the right one is never shown as wrong
    for _ in range(30):
        out = choice_vs_distractor(
            {"opts": ["same", "same", "other"], "ans": 0}, rng, {"choices": "opts", "answer": "ans"}
        )
        assert out is not None and (out["hard_label"] == 1 or out["answer"] == "other")
    forced = choice_vs_distractor(
        {"opts": ["x", "None of the above"], "ans": 1},
        rng,
        {"choices": "opts", "answer": "ans", "false_if_answer_contains": "None of the above"},
    )
    assert forced == {
        "answer": "x",
        "hard_label": 0,
        "choices_text": "x\nNone of the above",
        "choices_lettered": "A) x\nB) None of the above",
    }


def test_formatter_errors_name_the_field(tmp_path: Path) -> None:
    config = yaml.safe_load((HUB_TASKS / "piqa.yaml").read_text(encoding="utf-8"))
    config["formatter"] = "no_such_formatter"
    path = tmp_path / "piqa.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Task.from_file(path)
    assert info.value.field == "formatter" and "choice_vs_distractor" in str(info.value)
    with pytest.raises(ConfigError) as info:
        apply_formatter([{"goal": "g"}], {"name": "choice_vs_distractor", "options": {"answer": "label"}}, path)
    assert info.value.field == "formatter.options.choices"
    with pytest.raises(ConfigError, match="needs column 'sol1'"):
        apply_formatter(
            [{"goal": "g", "label": 0}],
            {"name": "choice_vs_distractor", "options": {"choices": ["sol1", "sol2"], "answer": "label"}},
            path,
        )
    with pytest.raises(UnknownNameError):
        apply_formatter([{}], "nope")
    assert {"sciq", "choice_vs_distractor", "chosen_or_rejected", "pairwise_random_order"} <= set(formatter_names())


def test_list_tasks_finds_the_subfolders() -> None:
    found = list_tasks()
    assert found["sciq"] == HUB_TASKS / "sciq.yaml"
    assert found["aar_chat"] == REPO / "tasks" / "aar" / "aar_chat.yaml"
