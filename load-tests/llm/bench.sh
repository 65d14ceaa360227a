#!/usr/bin/env bash
# Latency of representative diagnosis-sized calls against an OpenAI-compatible server
# (by default the local test model of deploy/llm.sh): N calls, each a ~1.5k-token prompt
# (system rules + stack trace + log lines + source, as the diagnoser sends) with at most
# 256 output tokens at temperature 0; prints median/p90 latency and tokens per call.
#
#   load-tests/llm/bench.sh [-n 10] [--max-tokens 256] [--url URL] [--model NAME] [--json-schema]
#
# URL and model default to SELFHEAL_TEST_LLM_URL / SELFHEAL_TEST_LLM_MODEL (eval
# "$(deploy/llm.sh env)"). Requests only go to the URL given; loops are bounded by -n.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/bench.py" "$@"
