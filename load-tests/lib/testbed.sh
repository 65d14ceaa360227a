# Sourced by the load tests: a test bed of their own (Kafka + schema registry) on ports apart
# from the development (19092/18085) and CI (9092/8085) ones, the broker on C2 as
# deploy/README.md says for load tests. Started if it is not answering, and then stopped when
# the sourcing script exits; left alone if it was already up.
#
#   LOADTEST_KAFKA_PORT (29092), LOADTEST_REGISTRY_PORT (28085): where it listens.
export KAFKA_PORT="${LOADTEST_KAFKA_PORT:-29092}"
export KAFKA_CONTROLLER_PORT="${LOADTEST_KAFKA_CONTROLLER_PORT:-29093}"
export REGISTRY_PORT="${LOADTEST_REGISTRY_PORT:-28085}"
export REGISTRY_MANAGEMENT_PORT="${LOADTEST_REGISTRY_MANAGEMENT_PORT:-29085}"
export KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
_lt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOADTEST_STARTED_TESTBED=0
if ! "$_lt_root/deploy/testbed.sh" status >/dev/null 2>&1; then
  echo "starting a load-test test bed: Kafka on $KAFKA_PORT (C2), registry on $REGISTRY_PORT" >&2
  "$_lt_root/deploy/testbed.sh" up >&2
  LOADTEST_STARTED_TESTBED=1
fi
eval "$("$_lt_root/deploy/testbed.sh" env)"
# The caller's EXIT trap should call this last.
loadtest_testbed_down() {
  if [[ "$LOADTEST_STARTED_TESTBED" == 1 && -z "${LOADTEST_KEEP_TESTBED:-}" ]]; then
    "$_lt_root/deploy/testbed.sh" down >&2 || true
  fi
}
