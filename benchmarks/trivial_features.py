"""Does a trivial feature predict a task's label? Fits, per task, classifiers that see no meaning:

- length: logistic regression on the text's characters, words and their logs;
- few words: logistic regression on the presence of K words (default 10) chosen on the training rows as
  those whose presence differs most between the labels (a keyword or a position marker such as "Step 4");
- both together.

Trained on the task's train_label + train_unlabel rows, scored on its test rows (the splits the harness
uses, so the same balancing and grouping). A task whose test accuracy under any of these is well above 50%
carries a shortcut that a weak model can learn without reading the text. No model, no engine: seconds.

    python benchmarks/trivial_features.py [--tasks v2] [--words 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from w2sbench.tasks import resolve_tasks

_WORD = re.compile(r"[a-z0-9]+(?::)?")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def length_features(texts: list[str]) -> np.ndarray:
    chars = np.array([len(t) for t in texts], dtype=float)
    n_words = np.array([len(t.split()) for t in texts], dtype=float)
    return np.stack([chars, n_words, np.log1p(chars), np.log1p(n_words)], axis=1)


def pick_words(texts: list[str], labels: np.ndarray, k: int) -> list[str]:
    """The k words whose document frequency differs most between the two labels (at least 1% of rows)."""
    sets = [words(t) for t in texts]
    counts: dict[str, list[int]] = {}
    for s, y in zip(sets, labels):
        for w in s:
            counts.setdefault(w, [0, 0])[int(y)] += 1
    n = [max(1, int((labels == c).sum())) for c in (0, 1)]
    floor = max(2, len(texts) // 100)
    scored = [(abs(c[1] / n[1] - c[0] / n[0]), w) for w, c in counts.items() if c[0] + c[1] >= floor]
    return [w for _, w in sorted(scored, reverse=True)[:k]]


def word_features(texts: list[str], vocab: list[str]) -> np.ndarray:
    return np.array([[float(w in words(t)) for w in vocab] for t in texts])


def accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
    return float((model.predict(scaler.transform(test_x)) == test_y).mean())


def measure(task, k: int) -> dict:
    splits = task.load_splits()
    train = splits.train_label + splits.train_unlabel
    texts, y = [e.text for e in train], np.array([e.label for e in train])
    test_texts, test_y = [e.text for e in splits.test], np.array([e.label for e in splits.test])
    vocab = pick_words(texts, y, k)
    len_tr, len_te = length_features(texts), length_features(test_texts)
    w_tr, w_te = word_features(texts, vocab), word_features(test_texts, vocab)
    return {
        "task": task.name,
        "n_train": len(train),
        "n_test": len(test_y),
        "test_positive_rate": float(test_y.mean()),
        "length": accuracy(len_tr, y, len_te, test_y),
        "words": accuracy(w_tr, y, w_te, test_y),
        "both": accuracy(np.hstack([len_tr, w_tr]), y, np.hstack([len_te, w_te]), test_y),
        "vocab": vocab,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="default", help="task names, suites or tags (default: the default suite)")
    parser.add_argument("--words", type=int, default=10, help="how many words the bag-of-words classifier sees")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [measure(task, args.words) for task in resolve_tasks(args.tasks)]
    print(f"{'task':24s} {'train':>6s} {'test':>5s} {'length':>7s} {'words':>6s} {'both':>6s}  words chosen")
    for r in rows:
        print(
            f"{r['task']:24s} {r['n_train']:6d} {r['n_test']:5d} {100 * r['length']:6.1f}% {100 * r['words']:5.1f}% "
            f"{100 * r['both']:5.1f}%  {' '.join(r['vocab'][:6])}"
        )
    print(f"test accuracy of logistic regression on length only, on {args.words} words' presence, and on both")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
