#!/usr/bin/env bash
# The main branch's trusted build of the published leaderboard: what the workflow's `reproduce` job runs
# (.github/workflows/leaderboard.yml; docs/leaderboard.md), with read-only permissions and no secrets; the
# `deploy` job then only publishes OUT. It trusts the harness and nothing a pull request can write:
#   - records of reproduction: those the last published site holds (PUBLISHED/records, written by this script
#     on an earlier run) for a submission's current digest under this harness, and the ones it makes now
#     (`leaderboard reproduce --missing`); never the repository's leaderboard/records/;
#   - the official baselines: recomputed here from the reference run's weak and ceiling stages (never the
#     repository's baselines.json);
#   - the recipe runs (the reference methods under each declared strong-recipe change): the published ones
#     that still match this setting version, harness and method code, and the missing ones run here; never
#     the repository's leaderboard/recipes/.
# The artifact cache (W2SBENCH_CACHE, kept between runs by actions/cache) makes a rerun cost only what changed.
# Usage: bash leaderboard/publish.sh PUBLISHED OUT
#   PUBLISHED: a folder with the last published records/ and recipes/ (either may be missing: first run)
#   OUT: the site to deploy: index.html, methods/, leaderboard.json, baselines.json, records/, recipes/ and
#        records.tar.gz, recipes.tar.gz (what the next run downloads as its PUBLISHED)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bash leaderboard/publish.sh PUBLISHED OUT" >&2; exit 2; }
PUBLISHED=$(realpath -m -- "$1")
OUT=$(realpath -m -- "$2")
PY=${PYTHON:-.venv/bin/python}
W2S=("$PY" -m w2sbench.cli)
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
WORK=$(mktemp -d)
mkdir -p "$WORK/records" "$WORK/recipes" "$OUT"
for part in records recipes; do
  if [ -d "$PUBLISHED/$part" ]; then cp -R -- "$PUBLISHED/$part/." "$WORK/$part/"; fi
done
SETTINGS=${SETTINGS:-$("$PY" -c 'from w2sbench.leaderboard import SEED_SETTINGS; print(*SEED_SETTINGS)')}
RECIPE_METHODS=${RECIPE_METHODS:-bootstrap,confident_only,entropy,logconf,product,vanilla,vanilla_hard,window}

# 1. The official baselines, from this machine's weak and ceiling stages (majority trains nothing).
REFERENCES=()
for s in $SETTINGS; do
  "${W2S[@]}" eval --setting "$s" --method majority --output "$WORK/reference-$s.json" --quiet
  REFERENCES+=("$WORK/reference-$s.json")
done
"${W2S[@]}" leaderboard baselines "${REFERENCES[@]}" --output "$WORK/baselines.json"

# 2. Every submission without a record for its current digest under this harness, reproduced; one that does
# not reproduce stays pending on the board (its record says why), and publishing goes on.
"${W2S[@]}" leaderboard reproduce --missing --records "$WORK/records" \
  || echo "publish: some submissions did not reproduce (above); they are pending on the board" >&2

# 3. The recipe runs: a published one counts while it is a run of this setting version, harness and built-in
# code; a missing or stale one is run here.
current() {  # exit status 0 when the run at $1 is current for setting $2 and change $3 (knob=factor)
  "$PY" - "$1" "$2" "$3" <<'EOF'
import json
import sys

from w2sbench.methods.identity import harness_source, source_of
from w2sbench.settings import load_setting

path, setting, change = sys.argv[1:]
knob, _, factor = change.partition("=")
try:
    with open(path) as f:
        doc = json.load(f)
    ok = (
        doc["setting"]["hash"] == load_setting(setting).perturbed(knob, float(factor)).hash
        and (doc.get("harness") or {}).get("sha256") == harness_source()["sha256"]
        and all(m["code"]["sha256"] == source_of({"kind": "builtin"}).sha256 for m in doc["methods"].values())
    )
except (OSError, ValueError, KeyError, TypeError):
    ok = False
sys.exit(0 if ok else 1)
EOF
}
for s in $SETTINGS; do
  for change in $("$PY" -c "from w2sbench.settings import load_setting
print(*[f'{k}={f:g}' for k, v in load_setting('$s').recipe_perturbations.items() for f in v])"); do
    out="$WORK/recipes/$s/$change.json"
    if ! current "$out" "$s" "$change"; then
      mkdir -p "$WORK/recipes/$s"
      "${W2S[@]}" eval --setting "$s" --perturb-recipe "$change" --method "$RECIPE_METHODS" --output "$out" --quiet
    fi
  done
done

# 4. The board, every figure from the records and runs above; then what the next run downloads.
"${W2S[@]}" leaderboard build --baselines "$WORK/baselines.json" --records "$WORK/records" \
  --recipes-dir "$WORK/recipes" --output "$OUT/leaderboard.json" --site "$OUT"
cp -- "$WORK/baselines.json" "$OUT/baselines.json"
rm -rf -- "$OUT/records" "$OUT/recipes"
cp -R -- "$WORK/records" "$OUT/records"
cp -R -- "$WORK/recipes" "$OUT/recipes"
tar -czf "$OUT/records.tar.gz" -C "$WORK" records
tar -czf "$OUT/recipes.tar.gz" -C "$WORK" recipes
echo "publish: $OUT" >&2
