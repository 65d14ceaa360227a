#!/bin/sh
# Starts orders-node, also from a git worktree (selfheal's local-process deployer runs each
# version from one): node_modules is not in git, so a worktree without it resolves the
# packages installed in the main checkout (NODE_PATH; main.js is CommonJS).
set -e
if [ ! -d node_modules ]; then
  common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  if [ -n "$common" ] && [ -d "${common%/.git}/node_modules" ]; then
    NODE_PATH="${common%/.git}/node_modules${NODE_PATH:+:$NODE_PATH}"
    export NODE_PATH
  fi
fi
exec node main.js "$@"
