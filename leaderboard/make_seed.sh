#!/usr/bin/env bash
# Regenerate the seed leaderboard from the harness, never by hand: run the built-in reference methods on
# each official seed setting (`tiny` and `tiny-smollm2`: w2sbench.leaderboard.SEED_SETTINGS; default tasks,
# official sizes and seeds), make the official baselines from those runs, write one submission per
# reference method holding its results on every seed setting, reproduce each (its method stage rerun in the
# sandbox, on every setting) into its record of reproduction (leaderboard/records/NAME.json: the rerun's own
# correctness vectors, from which the board computes every figure; a submission never holds one), rerun the
# methods that train under the recipe changes each setting declares (leaderboard/recipes/), validate them all
# and build leaderboard.json and the site from the records (the recipe runs become entries of their own).
# Cached stages are reused, so a rerun costs only what changed and the reproductions. Only the reference
# methods whose submission no longer matches this code are rerun (`leaderboard outdated`: the method's own
# code or the harness changed, a seed setting it has no results on, or no ok record for the submission's
# current contents under this harness; a built-in's identity is the methods package, so editing the site,
# the CLI or a docstring reruns nothing); METHODS=a,b forces a list. The published site is built apart, by
# leaderboard/publish.sh on the main branch, which trusts none of these files (docs/leaderboard.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
W2S=("$PY" -m w2sbench.cli)
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
SETTINGS=${SETTINGS:-$("$PY" -c 'from w2sbench.leaderboard import SEED_SETTINGS; print(*SEED_SETTINGS)')}
# The built-in methods that train the strong model (majority and strong_zeroshot train nothing, so a recipe
# cannot move them): rerun under each recipe change the setting declares, into leaderboard/recipes/, where
# `leaderboard build` reads their order against the reference one (a run of other code than an entry's is
# left out there). recipes all: rerun every one (cached stages make unchanged ones cheap); recipes missing:
# only those not there yet.
RECIPE_METHODS=${RECIPE_METHODS:-bootstrap,confident_only,entropy,logconf,product,vanilla,vanilla_hard,window}
recipes() {
  for s in $SETTINGS; do
    for change in $("$PY" -c "from w2sbench.settings import load_setting
print(*[f'{k}={f:g}' for k, v in load_setting('$s').recipe_perturbations.items() for f in v])"); do
      out="leaderboard/recipes/$s/$change.json"
      if [ "$1" = all ] || [ ! -f "$out" ]; then
        mkdir -p "leaderboard/recipes/$s"
        "${W2S[@]}" eval --setting "$s" --perturb-recipe "$change" --method "$RECIPE_METHODS" --output "$out" --quiet
      fi
    done
  done
}
if [ -z "${METHODS:-}" ]; then
  stale=" $("${W2S[@]}" leaderboard outdated | paste -sd' ' -) "
  for m in $("${W2S[@]}" methods | awk '$2 == "built-in" {print $1}'); do
    if [[ "$stale" == *" $m "* || ! -f "leaderboard/submissions/$m.json" ]]; then METHODS=${METHODS:+$METHODS,}$m; fi
  done
fi
if [ -z "${METHODS:-}" ]; then
  echo "make_seed: every reference submission matches this code; rebuilding (and any missing recipe run)" >&2
  recipes missing
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
  "${W2S[@]}" leaderboard reproduce --records leaderboard/records "leaderboard/submissions/$m.json"
done
recipes all
"${W2S[@]}" leaderboard build --strict
