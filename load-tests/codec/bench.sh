#!/usr/bin/env bash
# The codec benchmark: encode and decode of every contract record, ns
# per record, for the selfheal codec, serde_json and the naive apache-avro Value path, in
# one process on this machine. Prints a Markdown table.
#
#   load-tests/codec/bench.sh [--seconds S]     (S: time budget per cell, default 0.5)
#
# Builds the release example `codec-bench` of selfheal-events (honours CARGO_TARGET_DIR).
# Needs a schema registry speaking the Confluent API only to register the schemas once:
# SELFHEAL_SCHEMA_REGISTRY_URL, or the test bed's (deploy/testbed.sh env, REGISTRY_PORT).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFHEAL_CACHE/target}"
if [[ -z "${SELFHEAL_SCHEMA_REGISTRY_URL:-}" ]]; then
  eval "$("$root/deploy/testbed.sh" env)"
fi
if ! curl -fsS -o /dev/null "$SELFHEAL_SCHEMA_REGISTRY_URL/subjects"; then
  echo "no schema registry at $SELFHEAL_SCHEMA_REGISTRY_URL: start one with deploy/testbed.sh up (or set SELFHEAL_SCHEMA_REGISTRY_URL)" >&2
  exit 1
fi
(cd "$root" && cargo build --release -q -p selfheal-events --example codec-bench)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(rustc --version)"
exec "$CARGO_TARGET_DIR/release/examples/codec-bench" "$@"
