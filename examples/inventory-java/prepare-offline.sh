#!/usr/bin/env bash
# Prepares inventory-java for a network-less sandbox and for ./run.sh:
# - fetches the OpenTelemetry Java agent (io.opentelemetry.javaagent:opentelemetry-javaagent)
#   from Maven Central into the Maven local repository $SELFHEAL_M2 (default $SELFHEAL_CACHE/m2,
#   the one deploy/testbed.sh uses too);
# - resolves every dependency and plugin of the build, test and package phases into it (by
#   running them once online in a throw-away copy: surefire picks its JUnit provider at run
#   time, which `dependency:go-offline` misses);
# - proves `mvn -o test` passes in another throw-away copy.
#
#   eval "$(examples/inventory-java/prepare-offline.sh)"   # exports SELFHEAL_M2, OTEL_JAVAAGENT_JAR
#
# Progress goes to stderr; the last two lines on stdout are the `export` lines. A second run
# with the same pom.xml only checks that the files are there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

SELFHEAL_CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
SELFHEAL_M2="${SELFHEAL_M2:-$SELFHEAL_CACHE/m2}"
AGENT_VERSION="2.31.1"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
agent="$SELFHEAL_M2/io/opentelemetry/javaagent/opentelemetry-javaagent/$AGENT_VERSION/opentelemetry-javaagent-$AGENT_VERSION.jar"
say() { echo "prepare-offline: $*" >&2; }

command -v mvn >/dev/null || { say "mvn is missing (Debian package maven)"; exit 1; }
command -v javac >/dev/null || { say "javac is missing: a JDK 17 or newer is needed (Debian: default-jdk-headless)"; exit 1; }
mkdir -p "$SELFHEAL_M2"
log="$(mktemp -t inventory-java-prepare.XXXXXX.log)"
mvn_logged() {
  if ! mvn -B -ntp -Dmaven.repo.local="$SELFHEAL_M2" "$@" >>"$log" 2>&1; then
    tail -n 60 "$log" >&2
    say "maven failed: mvn $* (full log: $log)"
    exit 1
  fi
}

if [[ ! -f "$agent" ]]; then
  say "fetching the OpenTelemetry Java agent $AGENT_VERSION from Maven Central"
  mvn_logged "$DEPENDENCY_PLUGIN:get" -Dtransitive=false \
    -Dartifact="io.opentelemetry.javaagent:opentelemetry-javaagent:$AGENT_VERSION"
  [[ -f "$agent" ]] || { say "the agent resolved but $agent is missing (log: $log)"; exit 1; }
fi

stamp="$SELFHEAL_M2/.inventory-java-$(sha256sum "$here/pom.xml" | cut -c1-16).prepared"
if [[ ! -f "$stamp" ]]; then
  work="$(mktemp -d -t inventory-java-prepare.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  # Only the build's inputs: a copy without target/ cannot reuse an earlier build.
  mkdir -p "$work/online" "$work/offline"
  for copy in online offline; do
    cp -r "$here/pom.xml" "$here/src" "$work/$copy/"
  done
  say "resolving the build's dependencies and plugins into $SELFHEAL_M2 (first run only)"
  mvn_logged -f "$work/online/pom.xml" package \
    dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -DincludeScope=runtime
  say "checking the suite offline"
  mvn_logged -o -f "$work/offline/pom.xml" -q test
  touch "$stamp"
fi
rm -f "$log"
echo "export SELFHEAL_M2=$(printf '%q' "$SELFHEAL_M2")"
echo "export OTEL_JAVAAGENT_JAR=$(printf '%q' "$agent")"
