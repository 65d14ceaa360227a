#!/usr/bin/env bash
# Every fuzz target, on the stable toolchain, as CI runs them (scripts/test.sh calls this):
# its seed corpus replayed once, then a bounded coverage-guided random run.
#
#   fuzz/run.sh                      # every target, SELFHEAL_FUZZ_SECONDS each (default 120)
#   fuzz/run.sh stacktrace_parse     # one target
#
#   SELFHEAL_FUZZ_SECONDS  length of each target's random run (0: replay the seeds only)
#   SELFHEAL_FUZZ_SEED     libFuzzer's seed (default: a new one each run, printed as "Seed:")
#
# Seeds live in fuzz/seeds/<target>/ (committed; fuzz/corpus/ is cargo-fuzz's own, ignored,
# for long local runs); a dictionary in fuzz/dicts/<target>.dict is used when there is one.
# stacktrace_parse's seeds are the trace strings of services/stacktrace/tests/*.rs (every
# runtime and wrapper they cover) and three JVM traces of services/stacktrace/eval/cases.
# The random run grows a corpus in a temporary directory and leaves the seeds untouched.
#
# cargo-fuzz is installed once into $SELFHEAL_CACHE/tools/cargo-fuzz-<version>. It asks rustc
# for `-Z` flags; with `--sanitizer none` the only ones left are accepted by the stable compiler
# under RUSTC_BOOTSTRAP=1 (libFuzzer itself is C++, built by libfuzzer-sys with the system
# compiler). The instrumented build gets its own target directory so that its RUSTFLAGS never
# invalidate the workspace's.
#
# On a crash the input is printed as base64 (CI keeps logs, not files), with the command that
# reproduces it.
set -euo pipefail
cd "$(dirname "$0")"

command -v c++ >/dev/null 2>&1 || { echo "fuzz/run.sh needs a C++ compiler (g++) to build libFuzzer" >&2; exit 1; }
CACHE="${SELFHEAL_CACHE:-$HOME/.cache/selfheal}"
VERSION=0.13.2
SECONDS_EACH="${SELFHEAL_FUZZ_SECONDS:-120}"
tools="$CACHE/tools/cargo-fuzz-$VERSION"
say() { printf '[fuzz] %s\n' "$*"; }

if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  say "installing cargo-fuzz $VERSION into $tools (first run only)"
  # Built in a temporary directory, not in the workspace's CARGO_TARGET_DIR.
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$VERSION" --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
target_dir="$CACHE/fuzz-target"

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz targets" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for target in "${targets[@]}"; do
  seeds="seeds/$target"
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "fuzz target $target has no seeds in fuzz/$seeds" >&2
    exit 1
  fi
  # An input that takes a minute (about 10,000 times the usual) is a hang: a failure.
  flags=(-artifact_prefix="$work/$target-" -timeout=60 -print_final_stats=1)
  [ -f "dicts/$target.dict" ] && flags+=(-dict="dicts/$target.dict")
  [ -n "${SELFHEAL_FUZZ_SEED:-}" ] && flags+=(-seed="$SELFHEAL_FUZZ_SEED")
  # libFuzzer prints a line per new input (thousands): the log keeps its seed and final figures,
  # and everything from the last 200 lines on a failure.
  run() {
    local log="$work/$target.log"
    if cargo fuzz run --sanitizer none --target-dir "$target_dir" "$target" "$@" >"$log" 2>&1; then
      grep -E '^(INFO: Seed|INFO: +[0-9]+ files found|#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::)' "$log" | sed 's/^/  /' || true
    else
      tail -n 200 "$log" >&2
      for crash in "$work/$target-"*; do
        [ -e "$crash" ] || continue
        echo "fuzz target $target failed on this input (base64; decode it into a file and run" >&2
        echo "  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $target <file>  in fuzz/):" >&2
        base64 "$crash" >&2
      done
      exit 1
    fi
  }
  # libFuzzer writes what it finds into the first corpus directory: a temporary one.
  mkdir -p "$work/corpus-$target"
  say "$target: replaying $(ls "$seeds" | wc -l) seeds"
  run "$work/corpus-$target" "$seeds" -- "${flags[@]}" -runs=0
  if [ "$SECONDS_EACH" -gt 0 ]; then
    say "$target: random run of ${SECONDS_EACH}s"
    run "$work/corpus-$target" "$seeds" -- "${flags[@]}" -max_total_time="$SECONDS_EACH"
  fi
done
say "all targets passed"
