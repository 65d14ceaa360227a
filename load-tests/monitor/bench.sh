#!/usr/bin/env bash
# selfheal-monitor vs a no-op librdkafka consumer (kcat) reading the same pre-filled
# telemetry.raw topic; median of 3 runs; prints a Markdown table.
#
#   load-tests/monitor/bench.sh [--records N] [--runs R] [--prefix P]
#
# Builds selfheal-monitor and selfheal-collector (release, shared CARGO_TARGET_DIR) and
# telemetrygen (load-tests/lib/otelcol.sh), installs kcat if missing, and uses the load-test
# test bed (load-tests/lib/testbed.sh). The topic P+telemetry.raw (default lt-monitor-) is
# filled once through the real collector; a topic already holding N records is reused
# (LOADTEST_KEEP_TESTBED=1 keeps the broker up between invocations).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFHEAL_CACHE/target}"
command -v kcat >/dev/null || apt-get install -y --no-install-recommends kcat >&2
(cd "$root" && cargo build --release -q -p selfheal-monitor -p selfheal-collector)
telemetrygen="$("$root/load-tests/lib/otelcol.sh" telemetrygen)"
# shellcheck source=../lib/testbed.sh
source "$root/load-tests/lib/testbed.sh"
trap loadtest_testbed_down EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/bench.py" --monitor-bin "$CARGO_TARGET_DIR/release/selfheal-monitor" \
  --collector-bin "$CARGO_TARGET_DIR/release/selfheal-collector" --telemetrygen-bin "$telemetrygen" \
  --brokers "$SELFHEAL_KAFKA_BROKERS" --registry "$SELFHEAL_SCHEMA_REGISTRY_URL" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
