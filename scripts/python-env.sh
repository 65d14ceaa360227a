#!/usr/bin/env bash
# Creates (once) the Python virtualenv that runs examples/pricing-api and its tests,
# and prints the venv's python path as the last line on stdout. Everything else
# goes to stderr, so callers can do: PY=$(scripts/python-env.sh | tail -1)
#
# The venv lives at ${SELFHEAL_CACHE:-$HOME/.cache/selfheal}/venv. Packages are
# (re)installed only when the requirements file or the base interpreter changed
# (a stamp file records both), so a second run takes a few milliseconds.
#
# Environment:
#   SELFHEAL_CACHE         cache directory (default ~/.cache/selfheal)
#   SELFHEAL_BASE_PYTHON   base interpreter (default python3; must be >= 3.10). Not
#                          SELFHEAL_PYTHON: that names the venv python this script prints.
#   SELFHEAL_REQUIREMENTS  requirements file (default examples/pricing-api/requirements.txt)
#   SELFHEAL_VENV_METHOD   force one way of creating the venv, for testing the
#                          fallbacks: venv | without-pip | virtualenv
#
# Ways tried, in order, so that a bare machine with Python and pip works:
#   venv         python3 -m venv (needs ensurepip; Debian ships it in python3-venv)
#   without-pip  python3 -m venv --without-pip, then the base interpreter's pip
#                installs into it with `pip --python` (pip >= 22.3)
#   virtualenv   pip install --target <cache>/virtualenv-tool virtualenv, then
#                python3 -m virtualenv (brings its own pip; --target also sidesteps
#                Debian's "externally managed" refusal)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SELFHEAL_CACHE:-$HOME/.cache/selfheal}
venv=$cache/venv
req=${SELFHEAL_REQUIREMENTS:-$root/examples/pricing-api/requirements.txt}
base=${SELFHEAL_BASE_PYTHON:-python3}
stamp=$venv/.selfheal-stamp
vpy=$venv/bin/python

say() { echo "python-env: $*" >&2; }

[[ -f $req ]] || { say "no requirements file at $req"; exit 1; }

# The stamp names the requirements content and the interpreter the venv was built from.
base_id() {
  local exe
  exe=$(command -v "$base" 2>/dev/null) || { say "no $base on PATH"; exit 1; }
  # pyenv shims and symlinks resolve to the real interpreter; its mtime catches upgrades.
  "$exe" -c 'import os, sys; p = os.path.realpath(sys.executable); print(p, sys.version.split()[0], int(os.stat(p).st_mtime))'
}
want() { printf '%s\n%s\n' "$(sha256sum "$req" | cut -d' ' -f1)" "$(base_id)"; }

# Fast path: no lock, no pip, one small python start-up for base_id.
if [[ -x $vpy && -f $stamp ]] && [[ "$(cat "$stamp")" == "$(want)" ]]; then
  echo "$vpy"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/venv.lock"
if command -v flock >/dev/null; then
  flock 9
fi
want_now=$(want)
if [[ -x $vpy && -f $stamp && "$(cat "$stamp")" == "$want_now" ]]; then
  echo "$vpy"   # another process finished it while we waited for the lock
  exit 0
fi

"$base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { say "$base is older than Python 3.10"; exit 1; }

export PIP_ROOT_USER_ACTION=ignore  # we install into our own venv, never the system
pip_quiet=(--quiet --disable-pip-version-check --no-input)

# Rebuild from scratch when the interpreter changed or the venv is broken;
# otherwise an install over the existing venv is enough.
old_base=$(sed -n 2p "$stamp" 2>/dev/null || true)
if [[ ! -x $vpy ]] || ! "$vpy" -c '' 2>/dev/null || [[ $old_base != "$(sed -n 2p <<<"$want_now")" ]]; then
  rm -rf -- "$venv"
fi

create_venv() {
  local method=$1
  rm -rf -- "$venv"
  case $method in
    venv)
      "$base" -m venv "$venv" >&2 && "$vpy" -m pip --version >/dev/null 2>&1
      ;;
    without-pip)
      "$base" -m venv --without-pip "$venv" >&2 && "$base" -m pip --python "$vpy" --version >/dev/null 2>&1
      ;;
    virtualenv)
      local tool=$cache/virtualenv-tool
      if ! PYTHONPATH=$tool "$base" -c 'import virtualenv' 2>/dev/null; then
        "$base" -m pip install "${pip_quiet[@]}" --upgrade --target "$tool" virtualenv >&2
      fi
      PYTHONPATH=$tool "$base" -m virtualenv --quiet "$venv" >&2 && "$vpy" -m pip --version >/dev/null 2>&1
      ;;
  esac
}

pip_in_venv() {
  if "$vpy" -m pip --version >/dev/null 2>&1; then
    "$vpy" -m pip "$@"
  else
    "$base" -m pip --python "$vpy" "$@"
  fi
}

if [[ ! -x $vpy ]]; then
  methods=(venv without-pip virtualenv)
  [[ -n ${SELFHEAL_VENV_METHOD:-} ]] && methods=("$SELFHEAL_VENV_METHOD")
  made=""
  for m in "${methods[@]}"; do
    say "creating $venv ($m)"
    if create_venv "$m"; then made=$m; break; fi
    say "$m did not work"
  done
  [[ -n $made ]] || { rm -rf -- "$venv"; say "could not create a virtualenv with $base"; exit 1; }
fi

say "installing ${req#"$root"/}"
rm -f -- "$stamp"
pip_in_venv install "${pip_quiet[@]}" -r "$req" >&2
printf '%s\n' "$want_now" >"$stamp"
echo "$vpy"
