#!/usr/bin/env bash
# Regenerate the seed leaderboard from the harness, never by hand: run the built-in reference methods on
# the official `tiny` setting (default tasks, official sizes and seeds), make the official baselines from
# that run, write one submission per reference method, reproduce each (its method stage rerun in the
# sandbox), validate them all and build leaderboard.json and the site. Cached stages are reused, so a
# rerun costs only what changed and the reproductions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
W2S=("$PY" -m w2sbench.cli)
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
SETTING=${SETTING:-tiny}
METHODS=${METHODS:-$("${W2S[@]}" methods | awk '$2 == "built-in" {print $1}' | paste -sd, -)}
RESULTS=${RESULTS:-results/reference-$SETTING.json}

"${W2S[@]}" eval --setting "$SETTING" --method "$METHODS" --output "$RESULTS" --quiet
"${W2S[@]}" leaderboard baselines "$RESULTS"
for m in ${METHODS//,/ }; do
  "${W2S[@]}" leaderboard submission "$RESULTS" --method "$m" --output "leaderboard/submissions/$m.json"
done
"${W2S[@]}" leaderboard validate
for m in ${METHODS//,/ }; do
  "${W2S[@]}" leaderboard reproduce "leaderboard/submissions/$m.json"
done
"${W2S[@]}" leaderboard build --strict
