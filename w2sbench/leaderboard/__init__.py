"""The leaderboard: submissions (one method's results on official settings) are checked against the
official cached baselines, aggregated into leaderboard.json and rendered as a static site."""

from __future__ import annotations

from pathlib import Path

from ..paths import repo_root

# Absolute tolerances. Accuracy: half a point on a mean accuracy, so a rerun whose float noise flips an
# example or two still matches the official baselines while a different weak model or split does not.
# PGR: the recomputed value must match what the file says up to float rounding.
ACCURACY_TOL = 0.005
PGR_TOL = 1e-6
# The official settings the seed leaderboard's reference submissions cover (leaderboard/make_seed.sh): a
# reference submission without results on one of them is out of date.
SEED_SETTINGS = ("tiny", "tiny-smollm2")


def default_dir() -> Path:
    """leaderboard/ of the checkout being worked in (the current folder's, else the package's)."""
    here = Path.cwd() / "leaderboard"
    return here if here.is_dir() else repo_root() / "leaderboard"


def code_root_of(submissions_dir: Path) -> Path:
    """The folder holding leaderboard/ (whose methods/ holds the submitted code) for a submissions folder."""
    return Path(submissions_dir).absolute().parent.parent
