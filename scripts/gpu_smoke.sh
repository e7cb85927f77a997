#!/usr/bin/env bash
# The project's GPU smoke: the CUDA paths the CPU tests never run, in one call of under 8 minutes (docs/gpu.md).
#
#   bash scripts/gpu_smoke.sh prep    where PyPI is reachable: the wheels a GPU image may lack into .whl/ (git-ignored,
#                                     about 45 MB; carry it to the GPU machine beside the tree)
#   bash scripts/gpu_smoke.sh         on the GPU machine, from the project root: every step, figures under $OUT
#   bash scripts/gpu_smoke.sh cpu     the CPU mode: every step that needs no CUDA (tests/test_gpu_smoke.py runs it)
#
# Steps, each under `timeout`, never fatal, and all within SMOKE_BUDGET_S (450 s): deps (offline install of .whl/),
# env, core, vllm (CUDA vLLM only), eval-lora, eval-frozen, mfu, report. SMOKE_SKIP="vllm mfu" skips some. Every
# figure goes to a file under $OUT (default ./smoke-out): smoke.log, summary.txt, env.json, core.json, vllm.json,
# eval-lora.json, eval-frozen.json, mfu.jsonl, report.json. No model hub: random-weight Qwen shapes built here.
set -uo pipefail
[ -f w2sbench/__init__.py ] || { echo "gpu_smoke.sh: run it from the w2sbench project root" >&2; exit 2; }
# What the GPU machine's image lacks: bitsandbytes (aar-qwen's 8-bit AdamW), and what w2sbench imports beyond torch,
# transformers and peft (jsonschema and its parts, platformdirs, datasets and its parts).
WHEELS="bitsandbytes==0.50.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 jsonschema==4.26.0
 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 platformdirs==4.14.9"
MODE=${1:-gpu}
if [ "$MODE" = prep ]; then  # the GPU image runs Python 3.12 and reaches no registry: the wheels travel
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 -d .whl $WHEELS \
    && du -sh .whl
  exit
fi
case "$MODE" in gpu) CPU="" ;; cpu) CPU=--cpu ;; *) echo "gpu_smoke.sh: give prep, cpu or nothing" >&2; exit 2 ;; esac
PY=${PYTHON:-python3}
T=${SMOKE_T:-/tmp/w2s-smoke}
OUT=${OUT:-$PWD/smoke-out}
rm -rf "$T" && mkdir -p "$T" "$OUT" && : >"$OUT/summary.txt"
exec > >(tee -a "$OUT/smoke.log") 2>&1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 \
  W2SBENCH_CACHE=$T/cache SMOKE_T=$T SMOKE_OUT=$OUT
DEADLINE=$((SECONDS + ${SMOKE_BUDGET_S:-450}))
step() {  # step NAME BUDGET_S CMD...: at most BUDGET_S seconds, never past the deadline; rc and seconds to summary.txt
  local name=$1 budget=$2 left=$((DEADLINE - SECONDS)) t0=$SECONDS rc
  shift 2
  case " ${SMOKE_SKIP:-} " in *" $name "*) echo "$name: skipped (SMOKE_SKIP)" | tee -a "$OUT/summary.txt"; return;; esac
  [ "$left" -lt 20 ] && { echo "$name: skipped (time box spent)" | tee -a "$OUT/summary.txt"; return; }
  [ "$budget" -gt "$left" ] && budget=$left
  echo "===== $name (at most ${budget}s)"
  timeout -k 10 "$budget" "$@"
  rc=$?
  printf '%-12s rc=%-3s %4ss%s\n' "$name" "$rc" $((SECONDS - t0)) "$([ $rc = 124 ] && echo ' TIMED OUT')" \
    | tee -a "$OUT/summary.txt"
}
echo "w2sbench GPU smoke, mode $MODE, $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"
if [ -z "$CPU" ] && ls .whl/*.whl >/dev/null 2>&1; then  # the GPU image's Python 3.12; a CPU run has its venv
  step deps 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$T/site" .whl/*.whl
fi
export PYTHONPATH="$T/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -z "$CPU" ] && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader \
  | tee "$OUT/nvidia-smi.txt"
step env 60 "$PY" scripts/gpu_smoke.py env $CPU
step core 200 "$PY" scripts/gpu_smoke.py core $CPU
"$PY" scripts/gpu_smoke.py models $CPU && "$PY" scripts/gpu_smoke.py settings $CPU \
  || echo "settings: the smoke's settings could not be written; the evaluations will fail" | tee -a "$OUT/summary.txt"
HAS_VLLM=$("$PY" -c "import vllm, torch; assert torch.cuda.is_available()" >/dev/null 2>&1 && echo 1 || echo 0)
if [ "$HAS_VLLM" = 1 ]; then
  step vllm 170 "$PY" scripts/gpu_smoke.py vllm
else
  echo "vllm: skipped (no CUDA vLLM here: its GPU path stays untested)" | tee -a "$OUT/summary.txt"
fi
BACKEND=$([ "$HAS_VLLM" = 1 ] && echo vllm || echo hf)
SEAL=$("$PY" -c "from w2sbench.isolation import sandbox as s; raise SystemExit(s.unavailable_reason() is not None)" \
  >/dev/null 2>&1 || echo --unsealed)
ALLOW=$([ -n "$CPU" ] && echo --allow-cpu)  # the LoRA setting declares device: cuda, as aar-qwen does
ev() {
  local name=$1 setting=$2
  step "$name" 150 "$PY" -m w2sbench eval --setting "$T/$setting.yaml" --tasks aar_chat_mini --limit 48,64,64 \
    --method vanilla --baseline-seeds 1 --seeds 1 --n-boot 200 --backend "$BACKEND" $SEAL $ALLOW -o "$OUT/$name.json"
}
ev eval-lora smoke-lora
ev eval-frozen smoke-frozen
if [ -n "$CPU" ]; then
  step mfu 120 sh -c "\"$PY\" benchmarks/gpu_training.py --smoke >\"$OUT/mfu.jsonl\"; rc=\$?; cat \"$OUT/mfu.jsonl\"; exit \$rc"
else
  step mfu 120 sh -c "\"$PY\" benchmarks/gpu_training.py --batches 8 --steps 3 --warmup 1 --heads label_tokens \
    --time-budget 70 >\"$OUT/mfu.jsonl\"; rc=\$?; cat \"$OUT/mfu.jsonl\"; exit \$rc"
fi
"$PY" scripts/gpu_smoke.py report $CPU || echo "report: failed" | tee -a "$OUT/summary.txt"
echo "===== summary (rc 124: timed out)"
cat "$OUT/summary.txt"
