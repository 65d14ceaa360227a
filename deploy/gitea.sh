#!/usr/bin/env bash
# deploy/gitea.sh {build|up|down|status|env}: a real Gitea on 127.0.0.1 for the code-host tests
# (pushes over HTTPS-style token auth, pull requests, reviews, comments, commit statuses, merges).
#
#   build   build Gitea from the Go module proxy into the cache (once per version; ~3-10 min cold
#           on 2 cores, seconds afterwards); safe to run in the background beside a cargo build
#   up      build if needed, then start on a fresh sqlite database with two users:
#           the bot (admin, opens the PRs) and a reviewer (approves them), each with a token
#   down    stop it (idempotent)
#   status  exit 0 only when the API answers
#   env     print `export` lines for the tests: eval "$(deploy/gitea.sh env)"
#           (the tokens stay in files; only their paths are printed)
#
# There is no Debian package of Gitea and `go install` refuses the module's replace directives,
# so the module is downloaded with `go mod download`, copied out of the read-only module cache and
# built there (see /work/shared/testbed.md). The binary, the source copy (templates and options the
# server reads at run time) and Go's module and build caches live under $SELFHEAL_CACHE/gitea.
#
# Environment:
#   GITEA_PORT           HTTP port on 127.0.0.1 (default 3300; must be free)
#   GITEA_VERSION        module version (default 1.27.3)
#   GITEA_START_TIMEOUT  seconds to wait for the API (default 60)
#   SELFHEAL_CACHE       cache and run root (default ~/.cache/selfheal)
set -euo pipefail

SELFHEAL_COMPONENT=gitea
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GITEA_VERSION="${GITEA_VERSION:-1.27.3}"
GITEA_PORT="${GITEA_PORT:-3300}"
GITEA_START_TIMEOUT="${GITEA_START_TIMEOUT:-60}"
BOT_USER=selfheal-bot
REVIEWER_USER=reviewer

CACHE_DIR="$SELFHEAL_CACHE/gitea"
BUILD_DIR="$CACHE_DIR/$GITEA_VERSION"
SRC_DIR="$BUILD_DIR/src"
BIN="$BUILD_DIR/gitea"
RUN_DIR="$SELFHEAL_CACHE/run/gitea-$GITEA_PORT"
PID_FILE="$RUN_DIR/gitea.pid"
LOG_FILE="$RUN_DIR/gitea.log"
CONFIG_FILE="$RUN_DIR/app.ini"
# Appears on the server's command line (its config path); identifies our process.
MARKER="$CONFIG_FILE"

go_env() {
  export GOPATH="$CACHE_DIR/gopath" GOMODCACHE="$CACHE_DIR/gopath/pkg/mod" GOCACHE="$CACHE_DIR/gocache"
  export GOFLAGS=-modcacherw
}

# Builds the binary once per version, under a lock so concurrent first runs are safe.
do_build() {
  [[ -x "$BIN" && -f "$BUILD_DIR/.complete" ]] && return 0
  require_cmd go flock
  mkdir -p "$BUILD_DIR"
  exec 8>"$BUILD_DIR.lock"
  flock 8
  if [[ ! -f "$BUILD_DIR/.complete" ]]; then
    go_env
    local t0=$SECONDS dir
    log "building Gitea $GITEA_VERSION from the Go module proxy (first run only; log: $BUILD_DIR/build.log)"
    dir="$(go mod download -json "code.gitea.io/gitea@v$GITEA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$dir" && -d "$dir" ]] || die "go mod download gave no directory for code.gitea.io/gitea@v$GITEA_VERSION"
    rm -rf "$SRC_DIR" && cp -r "$dir" "$SRC_DIR" && chmod -R u+w "$SRC_DIR"
    # sqlite: the test bed needs no database server; -s -w: a smaller binary.
    if ! (cd "$SRC_DIR" && nice -n 19 go build -tags 'sqlite sqlite_unlock_notify' \
      -ldflags "-s -w -X \"main.Version=$GITEA_VERSION\"" -o "$BIN.tmp" .) >"$BUILD_DIR/build.log" 2>&1; then
      tail -n 30 "$BUILD_DIR/build.log" >&2
      die "go build of Gitea $GITEA_VERSION failed (full log: $BUILD_DIR/build.log)"
    fi
    mv "$BIN.tmp" "$BIN"
    touch "$BUILD_DIR/.complete"
    log "built Gitea $GITEA_VERSION in $((SECONDS - t0))s"
  fi
  flock -u 8
  exec 8>&-
}

write_config() {
  local internal_token jwt_secret lfs_secret
  internal_token="$("$BIN" generate secret INTERNAL_TOKEN)"
  jwt_secret="$("$BIN" generate secret JWT_SECRET)"
  lfs_secret="$("$BIN" generate secret LFS_JWT_SECRET)"
  # RUN_USER must be the user we run as; as root Gitea 1.27 also wants the explicit opt-in below.
  cat >"$CONFIG_FILE" <<EOF
APP_NAME = selfheal test bed
RUN_USER = $(id -un)
RUN_MODE = prod
WORK_PATH = $RUN_DIR
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = $GITEA_PORT
ROOT_URL = http://127.0.0.1:$GITEA_PORT/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
OFFLINE_MODE = true
LFS_START_SERVER = false
STATIC_ROOT_PATH = $SRC_DIR
APP_DATA_PATH = $RUN_DIR/data

[database]
DB_TYPE = sqlite3
PATH = $RUN_DIR/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = $RUN_DIR/repositories

[security]
INSTALL_LOCK = true
INTERNAL_TOKEN = $internal_token
PASSWORD_HASH_ALGO = pbkdf2

[oauth2]
JWT_SECRET = $jwt_secret

[server.lfs]
JWT_SECRET = $lfs_secret

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[webhook]
ALLOWED_HOST_LIST = loopback

[mailer]
ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = $RUN_DIR/log

[cron]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false
EOF
}

api_ready() {
  command -v curl >/dev/null 2>&1 || return 1
  curl -fsS --max-time 2 "http://127.0.0.1:$GITEA_PORT/api/v1/version" >/dev/null 2>&1
}

gitea_cli() {
  "$BIN" --config "$CONFIG_FILE" --work-path "$RUN_DIR" "$@"
}

# Creates a user and writes a token with every scope into RUN_DIR/<user>.token (mode 600).
create_user() {
  local user="$1" admin="$2" token
  gitea_cli admin user create --username "$user" --email "$user@selfheal.test" \
    --password "selfheal-$user-pw" --must-change-password=false $admin >>"$RUN_DIR/setup.log" 2>&1 \
    || { tail -n 20 "$RUN_DIR/setup.log" >&2; die "could not create the user $user"; }
  token="$(gitea_cli admin user generate-access-token --username "$user" --token-name selfheal-test \
    --scopes all --raw 2>>"$RUN_DIR/setup.log")" || die "could not create a token for $user"
  (umask 077 && printf '%s' "$token" >"$RUN_DIR/$user.token")
}

do_up() {
  local t0=$SECONDS pid
  do_build
  require_cmd curl git
  if pid="$(live_pid "$PID_FILE" "$MARKER")" && api_ready; then
    log "already running on 127.0.0.1:$GITEA_PORT (pid $pid)"
    return 0
  fi
  require_port_free "$GITEA_PORT" "Gitea"
  # Every start is empty: tests create repositories with random names, stale state only hurts.
  rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR/data" "$RUN_DIR/log"
  write_config
  gitea_cli migrate >"$RUN_DIR/setup.log" 2>&1 || { tail -n 20 "$RUN_DIR/setup.log" >&2; die "gitea migrate failed"; }
  create_user "$BOT_USER" --admin
  create_user "$REVIEWER_USER" ""
  # setsid: the server outlives this script and is not hit by the caller's terminal signals.
  setsid "$BIN" web --config "$CONFIG_FILE" --work-path "$RUN_DIR" >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local waited=0
  until api_ready; do
    if ! pid_alive "$(<"$PID_FILE")"; then
      show_log_tail "$LOG_FILE"
      die "Gitea exited during start"
    fi
    if ((waited >= GITEA_START_TIMEOUT * 10)); then
      show_log_tail "$LOG_FILE"
      die "Gitea did not answer within ${GITEA_START_TIMEOUT}s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  log "Gitea $GITEA_VERSION up on http://127.0.0.1:$GITEA_PORT/ ($((SECONDS - t0))s): eval \"\$(deploy/gitea.sh env)\""
}

do_down() {
  local pid
  if pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    terminate_pid "$pid" 30 || die "could not stop pid $pid"
    log "stopped (pid $pid)"
  fi
  rm -f "$PID_FILE"
}

do_status() {
  local pid
  if ! pid="$(live_pid "$PID_FILE" "$MARKER")"; then
    log "not running on 127.0.0.1:$GITEA_PORT"
    return 3
  fi
  if api_ready; then
    log "ready on http://127.0.0.1:$GITEA_PORT/ (pid $pid)"
    return 0
  fi
  log "pid $pid running but the API does not answer"
  return 1
}

do_env() {
  echo "export SELFHEAL_GITEA_URL=http://127.0.0.1:$GITEA_PORT"
  echo "export SELFHEAL_GITEA_BOT_USER=$BOT_USER"
  echo "export SELFHEAL_GITEA_BOT_TOKEN_FILE=$RUN_DIR/$BOT_USER.token"
  echo "export SELFHEAL_GITEA_REVIEWER_USER=$REVIEWER_USER"
  echo "export SELFHEAL_GITEA_REVIEWER_TOKEN_FILE=$RUN_DIR/$REVIEWER_USER.token"
}

case "${1:-}" in
  build) do_build ;;
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  env) do_env ;;
  *)
    echo "usage: $0 {build|up|down|status|env}" >&2
    exit 2
    ;;
esac
