#!/usr/bin/env bash
# selfheal-collector vs the OpenTelemetry Collector v0.165 (OTLP receiver, batch processor at
# 4,096 spans, contrib Kafka exporter), both doing OTLP/HTTP protobuf -> Kafka on the same
# broker under the same throttled telemetrygen load (built with a blocking span processor, see
# lib/otelcol.sh: the official one drops spans and exits 0); median of 3 runs; prints a table.
#
#   load-tests/collector/bench.sh [--spans N] [--runs R] [--rate SPANS_PER_S] [--workers W] [--child-spans C]
#
# Builds selfheal-collector (release, shared CARGO_TARGET_DIR), the Collector and telemetrygen
# (Go module proxy, cached under $SELFHEAL_CACHE/otelcol; see load-tests/lib/otelcol.sh), needs
# kcat (apt-get install kcat, installed here if missing) and a test bed of its own
# (load-tests/lib/testbed.sh: Kafka on 29092 with C2, registry on 28085; started if down and
# then stopped). A run whose topic does not hold exactly the spans sent is reported and not
# counted, and the script exits 1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFHEAL_CACHE/target}"
command -v kcat >/dev/null || apt-get install -y --no-install-recommends kcat >&2
(cd "$root" && cargo build --release -q -p selfheal-collector)
otelcol="$("$root/load-tests/lib/otelcol.sh" otelcol)"
telemetrygen="$("$root/load-tests/lib/otelcol.sh" telemetrygen)"
# shellcheck source=../lib/testbed.sh
source "$root/load-tests/lib/testbed.sh"
trap loadtest_testbed_down EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/bench.py" \
  --selfheal-bin "$CARGO_TARGET_DIR/release/selfheal-collector" --otelcol-bin "$otelcol" \
  --telemetrygen-bin "$telemetrygen" --brokers "$SELFHEAL_KAFKA_BROKERS" \
  --registry "$SELFHEAL_SCHEMA_REGISTRY_URL" --kafka-libs "$SELFHEAL_CACHE/kafka/4.4.0/libs" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
