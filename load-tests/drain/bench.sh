#!/usr/bin/env bash
# selfheal-drain vs drain3: throughput, grouping accuracy, peak memory.
# Builds the release binary, installs drain3 into
# ${SELFHEAL_CACHE:-$HOME/.cache/selfheal}/venv-bench, runs both on the same files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/bench.py" "$@"
