"""What a long run says (w2sbench/engine/progress.py): the plan's counts, the feature stage's time left from the
speed measured so far, and overall progress at most every PERIOD_S seconds; numbers against hand-computed
values."""

from __future__ import annotations

import logging

from w2sbench.engine import progress
from w2sbench.engine.progress import FeatureProgress, UnitProgress, duration, plan_line


def test_durations_read_as_a_person_would():
    assert [duration(s) for s in (12, 89.4, 90, 600, 5399, 5400, 9000)] == [
        "12 s",
        "89 s",
        "1.5 min",
        "10.0 min",
        "90.0 min",
        "1.5 h",
        "2.5 h",
    ]


def test_the_plan_counts_units_in_stage_order():
    kinds = ["score", "features", "method", "method", "weak", "ceiling", "features", "weak"]
    assert plan_line(kinds) == (
        "plan: 8 units (2 features, 2 weak, 1 ceiling, 2 method, 1 score); cached ones are read, not run"
    )


def test_time_left_comes_from_the_speed_measured_so_far(caplog):
    caplog.set_level(logging.INFO, logger="w2sbench")
    p = FeatureProgress("strong", "google/gemma-3-270m", "vllm", todo=[1000, 1000, 2500], cached=2)
    assert "4,500 texts to encode in 3 split(s) (2 cached)" in caplog.text
    # 1000 texts in 80 s: 12.5 texts/s; 3500 left -> 280 s = 4.7 min
    assert (
        p.split_done(1000, 80.0)
        == "strong features: 1,000/4,500 texts, 12.5 texts/s here; about 4.7 min left for this model"
    )
    # 2000 texts in 80 + 120 = 200 s: 10 texts/s; 2500 left -> 250 s = 4.2 min
    assert p.split_done(1000, 120.0).endswith("10.0 texts/s here; about 4.2 min left for this model")
    assert p.split_done(2500, 250.0) == "strong features: 4,500/4,500 texts, 10.0 texts/s here"


def test_nothing_to_encode_says_nothing(caplog):
    caplog.set_level(logging.INFO, logger="w2sbench")
    FeatureProgress("weak", "m", "hf", todo=[], cached=6)
    assert caplog.text == ""


def test_overall_progress_is_said_at_most_every_period():
    now = [0.0]
    p = UnitProgress(5, clock=lambda: now[0])
    said = []
    for t in (1.0, progress.PERIOD_S + 1, progress.PERIOD_S + 2, 100.0, 101.0):
        now[0] = t
        said.append(p.unit_done())
    assert said[0] is None and said[2] is None  # within a period of the last line
    assert said[1] == "progress: 2/5 units, 31 s elapsed"
    assert said[3] == "progress: 4/5 units, 1.7 min elapsed"
    assert said[4] == "progress: 5/5 units, 1.7 min elapsed"  # the last unit is always said
