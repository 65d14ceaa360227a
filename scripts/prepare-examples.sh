#!/usr/bin/env bash
# Prepares the Go and Node.js example services (examples/inventory-go, examples/orders-node)
# so that their tests and builds run offline afterwards, as selfheal's network-less sandbox
# runs them:
#   - Go: every module of inventory-go's go.sum in the module cache $SELFHEAL_CACHE/go/mod,
#     then an offline build of the packages and their tests (GOFLAGS=-mod=mod GOPROXY=off),
#     which also fills the build cache;
#   - Node: `npm ci` in examples/orders-node (node_modules from package-lock.json, npm's
#     download cache under $SELFHEAL_CACHE/npm), skipped while the lock file is unchanged;
#   - the repairer's Node fixtures with a lock file (Jest, Vitest): `npm ci` under
#     $SELFHEAL_CACHE/node-fixtures/<fixture>.
# Prints the environment that offline use needs as `export NAME=value` lines on stdout (the
# last lines), everything else on stderr:   eval "$(scripts/prepare-examples.sh)"
#
# Environment: SELFHEAL_CACHE (default ~/.cache/selfheal). Needs `go` (the version in
# go.mod or newer) and `node`/`npm` (20.6 or newer) on PATH.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SELFHEAL_CACHE:-$HOME/.cache/selfheal}
say() { echo "prepare-examples: $*" >&2; }

command -v go >/dev/null 2>&1 || { say "go is not on PATH (needed by examples/inventory-go)"; exit 1; }
command -v node >/dev/null 2>&1 || { say "node is not on PATH (needed by examples/orders-node)"; exit 1; }
command -v npm >/dev/null 2>&1 || { say "npm is not on PATH (needed by examples/orders-node)"; exit 1; }

# --- Go -----------------------------------------------------------------------------------
export GOMODCACHE=$cache/go/mod
# The build cache the repairer's Go preparation hard-links into each sandbox copy.
export GOCACHE=$cache/go/build
mkdir -p "$GOMODCACHE" "$GOCACHE"
(
  cd "$root/examples/inventory-go"
  # Online once: every module the build and its tests need (a no-op when all are cached).
  GOFLAGS=-mod=mod go mod download -x 2>&1 | grep -c '^# get' | sed 's/^/prepare-examples: go modules fetched: /' >&2 || true
  # Offline from here on, as in the sandbox: proves the cache is complete.
  GOFLAGS=-mod=mod GOPROXY=off go build ./... >&2
  GOFLAGS=-mod=mod GOPROXY=off go test -count=1 -run '^$' ./... >/dev/null
)
say "go: module cache $GOMODCACHE complete for inventory-go (offline build passed)"

# --- Node ----------------------------------------------------------------------------------
app=$root/examples/orders-node
stamp=$app/node_modules/.selfheal-lock-sha256
want=$(sha256sum "$app/package-lock.json" | cut -d' ' -f1)-$(node --version)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  say "node: node_modules of orders-node up to date"
else
  say "node: npm ci in examples/orders-node"
  (cd "$app" && npm ci --no-audit --no-fund --cache "$cache/npm" >&2)
  echo "$want" >"$stamp"
fi
# Offline check: the SDK loads with the network unused.
(cd "$app" && node -e "require('@opentelemetry/sdk-node'); require('@opentelemetry/exporter-trace-otlp-http')")

# --- Node fixtures of the repairer's Jest and Vitest tests ---------------------------------------
# services/repairer/src/languages/node/fixtures/<name> with a package-lock.json: `npm ci` of its
# package.json and lock under $SELFHEAL_CACHE/node-fixtures/<name> (outside the checkout, so the
# fixtures stay source only), skipped while the lock file and Node are unchanged. The repairer's
# tests link that node_modules into their copies of the fixture.
for lock in "$root"/services/repairer/src/languages/node/fixtures/*/package-lock.json; do
  [[ -f $lock ]] || continue
  name=$(basename "$(dirname "$lock")")
  dest=$cache/node-fixtures/$name
  want=$(sha256sum "$lock" | cut -d' ' -f1)-$(node --version)
  if [[ -f $dest/node_modules/.selfheal-lock-sha256 && "$(cat "$dest/node_modules/.selfheal-lock-sha256")" == "$want" ]]; then
    say "node: node_modules of the $name fixture up to date"
    continue
  fi
  say "node: npm ci for the $name fixture in $dest"
  mkdir -p "$dest"
  cp "$(dirname "$lock")/package.json" "$lock" "$dest/"
  # No package script runs (esbuild's install check is one): the binaries come as packages.
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --cache "$cache/npm" >&2)
  echo "$want" >"$dest/node_modules/.selfheal-lock-sha256"
done

echo "export GOMODCACHE=$GOMODCACHE"
echo "export GOCACHE=$GOCACHE"
echo "export SELFHEAL_GOMODCACHE=$GOMODCACHE"
echo "export SELFHEAL_NODE_MODULES=$app/node_modules"
