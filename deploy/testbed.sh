#!/usr/bin/env bash
# deploy/testbed.sh {up|down|status|env|fetch}: the real test bed, a Kafka broker and a
# schema registry on 127.0.0.1, started and stopped together.
#
#   up      download what is missing (once), then start both, in parallel
#   down    stop both (idempotent)
#   status  report both; non-zero unless both are ready
#   env     print `export` lines for the services and tests: eval "$(deploy/testbed.sh env)"
#   fetch   download both into the cache without starting anything
#
# Ports and versions come from the variables documented in kafka.sh and registry.sh
# (KAFKA_PORT, REGISTRY_PORT, ...); the same values must be set for up, down and env.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
REGISTRY_PORT="${REGISTRY_PORT:-8085}"

do_fetch() {
  # One after the other: both use the same Maven local repository, which Maven does
  # not lock against concurrent writers.
  "$HERE/kafka.sh" fetch
  "$HERE/registry.sh" fetch
}

do_up() {
  local t0=$SECONDS kafka_pid registry_pid rc=0
  do_fetch >/dev/null
  # Two JVMs starting side by side finish sooner than one after the other.
  "$HERE/kafka.sh" start &
  kafka_pid=$!
  "$HERE/registry.sh" start &
  registry_pid=$!
  wait "$kafka_pid" || rc=1
  wait "$registry_pid" || rc=1
  if ((rc != 0)); then
    echo "testbed: error: not everything started; 'deploy/testbed.sh down' stops what did" >&2
    return 1
  fi
  echo "testbed up ($((SECONDS - t0))s): eval \"\$(deploy/testbed.sh env)\""
}

do_down() {
  local rc=0
  "$HERE/registry.sh" stop || rc=1
  "$HERE/kafka.sh" stop || rc=1
  return "$rc"
}

do_status() {
  local rc=0
  "$HERE/kafka.sh" status || rc=1
  "$HERE/registry.sh" status || rc=1
  return "$rc"
}

do_env() {
  echo "export SELFHEAL_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export SELFHEAL_SCHEMA_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
}

case "${1:-}" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  env) do_env ;;
  fetch) do_fetch ;;
  *)
    echo "usage: $0 {up|down|status|env|fetch}" >&2
    exit 2
    ;;
esac
