#!/usr/bin/env bash
# The selfheal demo, from a fresh clone: a Python service starts failing with
# ZeroDivisionError, and selfheal detects, diagnoses, patches, tests, canaries,
# promotes, verifies and remembers the fix, all on this machine in about a minute.
#
#   scripts/demo.sh            # the demo (flags are passed on: --json, --keep, --timeout-secs N, ...)
#   scripts/demo.sh --help     # every flag
#
# Needs: a Rust toolchain (cargo), Python >= 3.10, and these Debian packages, which
# this script installs with apt-get when it runs as root and they are missing:
#   libclang-dev (RocksDB's bindgen), bubblewrap (the test sandbox), git,
#   python3-venv (when `python3 -m venv` does not work).
# The first build compiles librdkafka and RocksDB: expect tens of minutes once on a
# 2-core machine; later runs start in seconds. The build is cargo's dev profile, the one
# scripts/test.sh builds (dependencies optimised, see [profile.dev] in Cargo.toml), so the
# demo and the test suite share one build instead of compiling everything twice.
#
# Environment:
#   CARGO_TARGET_DIR   build directory (default ~/.cache/selfheal/target)
#   SELFHEAL_PYTHON    a Python with pricing-api's packages (default: scripts/python-env.sh makes a venv)
#   SELFHEAL_DEMO_DIR  where runs and the learning store are kept (default .selfheal/demo)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { echo "demo.sh: $*" >&2; }

# System packages: check first, install only what is missing, only as root.
missing=()
for pkg in libclang-dev bubblewrap git; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# python3-venv only matters while the venv does not exist yet, and only when venv really fails.
venv_py=${SELFHEAL_CACHE:-$HOME/.cache/selfheal}/venv/bin/python
if [[ -z ${SELFHEAL_PYTHON:-} && ! -x $venv_py ]] && command -v python3 >/dev/null; then
  probe=$(mktemp -d)
  if ! python3 -m venv "$probe/v" >/dev/null 2>&1; then
    dpkg -s python3-venv >/dev/null 2>&1 || missing+=(python3-venv)
  fi
  rm -rf -- "$probe"
fi
if ((${#missing[@]})); then
  if ! command -v dpkg >/dev/null; then
    say "not a Debian-like system; make sure these are installed: ${missing[*]}"
  elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    say "missing packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
  fi
fi

command -v cargo >/dev/null || { say "cargo not found: install Rust from https://rustup.rs"; exit 1; }
command -v python3 >/dev/null || { say "python3 not found"; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/selfheal/target}
bin=$CARGO_TARGET_DIR/debug/selfheal
quiet=(--quiet)
if [[ ! -x $bin ]]; then
  say "building selfheal (the first build compiles librdkafka and RocksDB: tens of minutes on 2 cores; later ones seconds)"
  quiet=() # cargo's progress, for the long first build
fi
cargo build "${quiet[@]}" -p selfheal --bin selfheal >&2

if [[ -z ${SELFHEAL_PYTHON:-} ]]; then
  say "preparing the Python environment of pricing-api (once)"
  SELFHEAL_PYTHON=$(bash scripts/python-env.sh | tail -1)
fi
export SELFHEAL_PYTHON

exec "$bin" demo "$@"
