"""The release rule: what an agent is told about a new method's score (Blum and Hardt 2015, "The Ladder").

An agent that sees exact scores can overfit the examples behind them: n+1 queries recover n labels one flip
at a time, and keeping lucky random submissions inflates the score by about sqrt(k/n) (the boosting attack).
The Ladder releases a new score only when it beats the best score released so far by a margin, rounded to
the step; otherwise it repeats the best released score. A one-example flip moves a score by 1/n, far below
the step, so it is never seen; a lucky draw must clear the step to be seen at all.

    fixed step (ladder):   release round(s / step) * step   if s >= best + step, else best
    paired (paired_ladder): release round(s / step) * step  if the paired one-sided test says the new
                            method beats the best released one (mean per-example difference above one
                            standard error, and at least half a step), else best

Scores here are pooled PGR on the validation part; `step` is in PGR units. The guarantee against one-flip
probing needs a step above twice what one example moves the score (1/(n x gap)); the engine raises the
campaign's step to that where it is smaller (engine.effective_step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decision:
    released: float  # what the agent is told
    new_best: bool  # True when this submission became the agent's best released one


def _round(score: float, step: float) -> float:
    return round(round(score / step) * step, 10)


def fixed_step(score: float, best: float | None, step: float) -> Decision:
    if best is None or score >= best + step:
        return Decision(_round(score, step), True)
    return Decision(best, False)


def paired(
    score: float, best: float | None, step: float, diff: np.ndarray | None, weights: np.ndarray | None, gap: float
) -> Decision:
    """diff: per-example (new - best) correctness, averaged over seeds; weights: each example's share of the
    pooled accuracy (summing to 1); gap: the pooled ceiling-weak gap that turns accuracy into PGR."""
    if best is None or diff is None:
        return Decision(_round(score, step), True)
    mean = float(np.sum(weights * diff))
    # the weighted mean's standard error, examples independent
    se = float(np.sqrt(np.sum(weights**2 * (diff - mean) ** 2)))
    if mean > se and mean / gap >= step / 2 and score > best:
        return Decision(max(_round(score, step), best), True)
    return Decision(best, False)
