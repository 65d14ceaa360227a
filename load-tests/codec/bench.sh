#!/usr/bin/env bash
# The codec benchmark: encode and decode of every contract record, ns and heap allocations per
# record, for the selfheal codec, serde_json and the naive apache-avro Value path, in one
# process on this machine. Prints a Markdown table.
#
#   load-tests/codec/bench.sh [--seconds S]     (S: time budget per cell, default 0.5)
#
# Builds load-tests/codec/bench-crate (release, outside the workspace because it installs a
# counting global allocator) into the shared CARGO_TARGET_DIR. Needs a schema registry only to
# register the schemas while warming up: SELFHEAL_SCHEMA_REGISTRY_URL if set, else the
# load-test test bed (load-tests/lib/testbed.sh: started on 28085 if down, stopped after).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFHEAL_CACHE/target}"
if [[ -z "${SELFHEAL_SCHEMA_REGISTRY_URL:-}" ]]; then
  # shellcheck source=../lib/testbed.sh
  source "$root/load-tests/lib/testbed.sh"
  trap loadtest_testbed_down EXIT
fi
crate="$here/bench-crate"
# Same dependency versions as the workspace, so its release builds are reused.
[[ -f "$crate/Cargo.lock" ]] || cp "$root/Cargo.lock" "$crate/Cargo.lock"
cargo build --release -q --manifest-path "$crate/Cargo.toml"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(rustc --version); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$CARGO_TARGET_DIR/release/selfheal-codec-bench" --registry "$SELFHEAL_SCHEMA_REGISTRY_URL" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
