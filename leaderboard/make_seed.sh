#!/usr/bin/env bash
# Regenerate the seed leaderboard from the harness, never by hand: run the built-in reference methods on
# each official seed setting (`tiny` and `tiny-smollm2`: w2sbench.leaderboard.SEED_SETTINGS; default tasks,
# official sizes and seeds), make the official baselines from those runs, write one submission per
# reference method holding its results on every seed setting, reproduce each (its method stage rerun in the
# sandbox, on every setting), validate them all and build leaderboard.json and the site. Cached stages are
# reused, so a rerun costs only what changed and the reproductions. Only the reference methods whose
# submission no longer matches this code are rerun (`leaderboard outdated`: the method's own code or the
# harness changed, a seed setting it has no results on, or no current reproduction; a built-in's identity is
# the methods package, so editing the site, the CLI or a docstring reruns nothing); METHODS=a,b forces a list.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
W2S=("$PY" -m w2sbench.cli)
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
SETTINGS=${SETTINGS:-$("$PY" -c 'from w2sbench.leaderboard import SEED_SETTINGS; print(*SEED_SETTINGS)')}
if [ -z "${METHODS:-}" ]; then
  stale=" $("${W2S[@]}" leaderboard outdated | paste -sd' ' -) "
  for m in $("${W2S[@]}" methods | awk '$2 == "built-in" {print $1}'); do
    if [[ "$stale" == *" $m "* || ! -f "leaderboard/submissions/$m.json" ]]; then METHODS=${METHODS:+$METHODS,}$m; fi
  done
fi
if [ -z "${METHODS:-}" ]; then
  echo "make_seed: every reference submission matches this code; rebuilding only" >&2
  "${W2S[@]}" leaderboard validate
  "${W2S[@]}" leaderboard build --strict
  exit 0
fi
echo "make_seed: rerunning $METHODS" >&2

RESULTS=()
for s in $SETTINGS; do
  RESULTS+=("results/reference-$s.json")
  "${W2S[@]}" eval --setting "$s" --method "$METHODS" --output "results/reference-$s.json" --quiet
done
"${W2S[@]}" leaderboard baselines "${RESULTS[@]}"
for m in ${METHODS//,/ }; do
  "${W2S[@]}" leaderboard submission "${RESULTS[@]}" --method "$m" --output "leaderboard/submissions/$m.json"
done
"${W2S[@]}" leaderboard validate
for m in ${METHODS//,/ }; do
  "${W2S[@]}" leaderboard reproduce "leaderboard/submissions/$m.json"
done
"${W2S[@]}" leaderboard build --strict
