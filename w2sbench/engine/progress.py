"""What a long evaluation says while it runs: its plan before the work, then the time left.

Why: a cold default evaluation takes 9 minutes on a CPU with AVX-512 and 36 with AVX2 only, most of it the
strong model's features; the terminal used to show only the engines' own per-batch bars, with no plan
and no overall time left. Now (on stderr, through the `w2sbench` logger; `--quiet` silences it, and the
engines' bars show only with `--verbose`):

- before any work, the plan: units per kind, and per model the texts it must encode (and how many splits
  are already cached);
- after each feature split, its measured speed on this machine and the time left for that model's
  features (texts left / texts per second so far: the only long stage of a cold run on a CPU);
- every PERIOD_S seconds at most, one line of overall progress: units done of all, elapsed time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger("w2sbench")

PERIOD_S = 30.0


def duration(seconds: float) -> str:
    """'45 s', '3.2 min', '1.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plan_line(kinds: list[str]) -> str:
    """The units of an evaluation by kind, in stage order."""
    counts = Counter(kinds)
    order = ["features", "weak", "ceiling", "method", "score"]
    parts = [f"{counts[k]} {k}" for k in order if counts[k]] + [f"{n} {k}" for k, n in counts.items() if k not in order]
    return f"plan: {sum(counts.values())} units ({', '.join(parts)}); cached ones are read, not run"


class FeatureProgress:
    """One model's feature stage: the texts it must encode, and the time left as splits finish."""

    def __init__(self, role: str, model: str, backend: str, todo: list[int], cached: int):
        self.role, self.model, self.backend = role, model, backend
        self.total, self.done, self.seconds = sum(todo), 0, 0.0
        if todo:
            log.info(
                f"{role} model {model} on {backend}: {self.total:,} texts to encode in {len(todo)} split(s)"
                + (f" ({cached} cached)" if cached else "")
                + "; time left is measured after the first split"
            )

    def split_done(self, n_texts: int, seconds: float) -> str:
        """Record a computed split; returns (and logs) the line with its speed and the model's time left."""
        self.done += n_texts
        self.seconds += seconds
        rate = self.done / self.seconds if self.seconds > 0 else float("inf")
        left = self.total - self.done
        line = f"{self.role} features: {self.done:,}/{self.total:,} texts, {rate:.1f} texts/s here" + (
            f"; about {duration(left / rate)} left for this model" if left and rate > 0 else ""
        )
        log.info(line)
        return line


class UnitProgress:
    """Overall progress over an evaluation's units, said at most every PERIOD_S seconds."""

    def __init__(self, total: int, clock=time.monotonic):
        self.total, self.done, self.clock = total, 0, clock
        self.started = self.last = clock()

    def unit_done(self) -> str | None:
        self.done += 1
        now = self.clock()
        if now - self.last < PERIOD_S and self.done < self.total:
            return None
        self.last = now
        line = f"progress: {self.done}/{self.total} units, {duration(now - self.started)} elapsed"
        log.info(line)
        return line
