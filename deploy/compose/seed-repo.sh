#!/usr/bin/env bash
# Makes DEST a git repository holding a copy of SRC (one commit on branch main), unless DEST
# already is a git repository: the `repos` service of docker-compose.yml runs it at every
# `up`, and the fixes selfheal committed and promoted there must survive that.
#
#   seed-repo.sh SRC DEST
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SRC DEST" >&2
  exit 2
fi
src=$1
dest=$2
say() { echo "seed-repo: $*" >&2; }

if [[ -d $dest/.git ]]; then
  say "$dest is a git repository already ($(git -C "$dest" rev-parse --short HEAD)); leaving it as it is"
  exit 0
fi
[[ -d $src ]] || { say "no directory $src"; exit 1; }
if [[ -e $dest ]] && [[ -n $(ls -A "$dest") ]]; then
  say "$dest exists, is not empty and is not a git repository; refusing to touch it"
  exit 1
fi

mkdir -p "$dest"
# A copy without caches: they would be committed, and the regression tests would see them.
tar -C "$src" --exclude=__pycache__ --exclude=.pytest_cache --exclude='*.pyc' --exclude=.venv -cf - . \
  | tar -C "$dest" -xf -
git -C "$dest" init -q -b main
git -C "$dest" add -A
git -C "$dest" -c user.name=selfheal -c user.email=selfheal@localhost commit -q -m "$(basename "$dest"): initial import"
say "$dest: $(git -C "$dest" rev-parse --short HEAD) on main, from $src"
