#!/usr/bin/env bash
# Builds inventory-java offline and serves it under the OpenTelemetry Java agent.
#
#   ./run.sh            # PORT (default 8091), SERVICE_VERSION, OTEL_* from the environment
#
# Needs what ./prepare-offline.sh resolved: the Maven local repository ($SELFHEAL_M2,
# default $SELFHEAL_CACHE/m2) and the agent jar ($OTEL_JAVAAGENT_JAR, default: the one in
# that repository). The rollout's local-process deployer runs this script in a worktree of
# each version it deploys.
set -euo pipefail
cd "$(dirname "$0")"

SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
SELFHEAL_M2="${SELFHEAL_M2:-$SELFHEAL_CACHE/m2}"
AGENT_VERSION="2.31.1"
OTEL_JAVAAGENT_JAR="${OTEL_JAVAAGENT_JAR:-$SELFHEAL_M2/io/opentelemetry/javaagent/opentelemetry-javaagent/$AGENT_VERSION/opentelemetry-javaagent-$AGENT_VERSION.jar}"
if [[ ! -f "$OTEL_JAVAAGENT_JAR" ]]; then
  echo "run.sh: the OpenTelemetry Java agent is missing ($OTEL_JAVAAGENT_JAR): run ./prepare-offline.sh first" >&2
  exit 1
fi

# Offline: a deploy never downloads anything; the build is the one the tests ran.
mvn -o -q -B -Dmaven.repo.local="$SELFHEAL_M2" -DskipTests package \
  dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -DincludeScope=runtime

version="${SERVICE_VERSION:-$(git rev-parse --short HEAD 2>/dev/null || echo dev)}"
export SERVICE_VERSION="$version"
export OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-inventory-java}"
export OTEL_RESOURCE_ATTRIBUTES="service.version=$version${OTEL_RESOURCE_ATTRIBUTES:+,$OTEL_RESOURCE_ATTRIBUTES}"
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318}"
export OTEL_EXPORTER_OTLP_PROTOCOL="${OTEL_EXPORTER_OTLP_PROTOCOL:-http/protobuf}"
export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-otlp}"
export OTEL_LOGS_EXPORTER="${OTEL_LOGS_EXPORTER:-otlp}"
# Traces and logs are what selfheal reads; metrics would only be stored.
export OTEL_METRICS_EXPORTER="${OTEL_METRICS_EXPORTER:-none}"
# Failures reach the collector within a second instead of the agent's default 5 s.
export OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-500}"
export OTEL_BLRP_SCHEDULE_DELAY="${OTEL_BLRP_SCHEDULE_DELAY:-500}"

exec java ${INVENTORY_JAVA_OPTS:--Xmx256m -XX:+UseSerialGC} \
  -javaagent:"$OTEL_JAVAAGENT_JAR" \
  -cp "target/inventory-java.jar:$(cat target/classpath.txt)" \
  com.example.inventory.App
