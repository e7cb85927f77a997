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

"Never seen" holds only for a flip from the last released vector. An agent that stands one example below
the release threshold (best + step) learns from every answer whether its flip was right: released or not,
one label per query, and about three per release when its guesses are the weak labels (measured:
benchmarks/serve_attacks.py --only threshold, RESULTS.md section 11). The Ladder meters this by releases,
not by queries. `noisy` blurs the threshold (the sparse vector technique, on which Thresholdout is built;
Dwork et al. 2015):

    noisy (noisy_ladder):  T = best + step + rho,  rho ~ Laplace(4 m / epsilon), drawn again after each release
                           release iff score + nu >= T,  nu ~ Laplace(8 m / epsilon), fresh per query
                           released value: round(score + xi) to the step, xi ~ Laplace(2 m / epsilon), and
                           at least best + step; at most `releases` releases per agent, then the best again

with m what one validation example moves the score. Everything the agent is told between two releases,
that release included, is then epsilon-differentially private in each validation label (epsilon/2 for
the comparisons, epsilon/2 for the value), so an agent's whole campaign is at most releases x epsilon. At
the threshold, a right and a wrong flip are released at rates within a factor e^(epsilon/8): at the
default epsilon 2 one answer never moves the best guess of a label off the weak label's, and five answers
per label read 0.011 labels beyond that guess per release, against 1.0 for the fixed and paired Ladders
(measured; the honest loop's released order agrees with its final order as well: RESULTS.md section 11).
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


def threshold_noise(move: float, epsilon: float, rng: np.random.Generator) -> float:
    """The noisy rule's threshold offset rho, drawn at the start and after each release."""
    return float(rng.laplace(0.0, 4 * move / epsilon))


def noisy(
    score: float,
    best: float | None,
    step: float,
    move: float,
    epsilon: float,
    rho: float,
    rng: np.random.Generator,
) -> Decision:
    """The sparse vector technique's answer (module docstring). move: what one validation example moves the
    score; rho: the current threshold offset (threshold_noise); rng: the service's, unseeded."""
    if best is None:
        return Decision(_round(score + float(rng.laplace(0.0, 2 * move / epsilon)), step), True)
    if score + float(rng.laplace(0.0, 8 * move / epsilon)) >= best + step + rho:
        value = _round(score + float(rng.laplace(0.0, 2 * move / epsilon)), step)
        return Decision(max(value, _round(best + step, step)), True)
    return Decision(best, False)
