#!/usr/bin/env bash
# Builds (once) and prints the paths of the peers the load tests run beside selfheal:
# the OpenTelemetry Collector, built with the Collector Builder from the Go module proxy
# (OTLP receiver, batch processor, contrib Kafka exporter), and telemetrygen.
#
#   load-tests/lib/otelcol.sh otelcol        # prints the otelcol binary, building it if missing
#   load-tests/lib/otelcol.sh telemetrygen   # prints the telemetrygen binary, likewise
#
# Cached by version under $SELFHEAL_CACHE/otelcol/ (binaries, module and build caches), so a
# second run costs nothing. Needs `go` (>= 1.24) on the PATH and the Go module proxy.
set -euo pipefail
OTELCOL_VERSION="${OTELCOL_VERSION:-0.165.0}"
# telemetrygen v0.165.x and v0.164.0 are refused by the proxy; v0.161.0 works against the v0.165 Collector.
TELEMETRYGEN_VERSION="${TELEMETRYGEN_VERSION:-0.161.0}"
cache="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}/otelcol"
export GOPATH="$cache/gopath" GOMODCACHE="$cache/gopath/pkg/mod" GOCACHE="$cache/gocache" GOFLAGS=-modcacherw
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$cache"

otelcol() {
  local dir="$cache/otelcol-$OTELCOL_VERSION" bin
  bin="$dir/otelcol-selfheal-bench"
  if [[ ! -x "$bin" ]]; then
    (
      flock 9
      [[ -x "$bin" ]] && exit 0
      local builder="$cache/bin/builder-$OTELCOL_VERSION"
      if [[ ! -x "$builder" ]]; then
        GOBIN="$cache/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" >&2
        mv "$cache/bin/builder" "$builder"
      fi
      mkdir -p "$dir/src"
      cat > "$dir/manifest.yaml" <<YAML
dist:
  name: otelcol-selfheal-bench
  description: OpenTelemetry Collector for the selfheal load tests (OTLP -> batch -> Kafka)
  output_path: $dir/src
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$OTELCOL_VERSION
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor v$OTELCOL_VERSION
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter v$OTELCOL_VERSION
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter v$OTELCOL_VERSION
YAML
      echo "building the OpenTelemetry Collector v$OTELCOL_VERSION (once; ~2-5 min on 2 cores)" >&2
      "$builder" --config="$dir/manifest.yaml" >"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log" >&2; exit 1; }
      cp "$dir/src/otelcol-selfheal-bench" "$bin"
    ) 9>"$cache/.otelcol.lock"
  fi
  echo "$bin"
}

# The official telemetrygen's batch span processor drops spans when its queue is full (a slow
# or back-pressuring receiver) and the run still exits 0. The load tests use a copy built with
# `sdktrace.WithBlocking()`, so a slower receiver slows the generator instead of losing spans.
telemetrygen() {
  local bin="$cache/bin/telemetrygen-$TELEMETRYGEN_VERSION-blocking"
  if [[ ! -x "$bin" ]]; then
    (
      flock 9
      [[ -x "$bin" ]] && exit 0
      echo "building telemetrygen v$TELEMETRYGEN_VERSION with a blocking span processor (once)" >&2
      local mod="github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION"
      local src="$cache/telemetrygen-$TELEMETRYGEN_VERSION-blocking-src" dir
      dir="$(go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
      rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
      grep -q 'sdktrace.NewBatchSpanProcessor(exp, ' "$src/pkg/traces/traces.go" \
        || { echo "telemetrygen $TELEMETRYGEN_VERSION: the batch span processor line moved; patch by hand" >&2; exit 1; }
      sed -i 's/sdktrace.NewBatchSpanProcessor(exp, /sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithBlocking(), /' "$src/pkg/traces/traces.go"
      (cd "$src" && go build -o "$bin" .) >&2
    ) 9>"$cache/.telemetrygen.lock"
  fi
  echo "$bin"
}

case "${1:-}" in
  otelcol) otelcol ;;
  telemetrygen) telemetrygen ;;
  *) echo "usage: $0 otelcol|telemetrygen" >&2; exit 2 ;;
esac
