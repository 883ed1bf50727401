#!/usr/bin/env bash
# The two-minute tour: sets up and builds liner if needed, then runs the TypeScript demo
# (examples/ts/demo.ts: one-to-one, one-to-many, producer-consumer, offline delivery and a
# messages-per-second figure) with a temporary SQLite file as the store: no server to run.
#   npm run demo                 the SQLite file, removed afterwards
#   npm run demo -- --redis      a throwaway redis-server on a free loopback port instead
# Exits with the demo's status. The C demo is still there: build/examples/c/demo [redis_url].
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/bootstrap.sh
node_modules/.bin/tsc -p tsconfig.examples.json  # examples/ts -> build/examples/ts

if [ "${1:-}" = --redis ]; then
  . scripts/lib/redis.sh
  trap stop_throwaway_redis EXIT
  start_throwaway_redis
  store=$LINER_REDIS_URL
  echo "liner demo: throwaway redis-server on $store"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  store=sqlite:$dir/mesh.db
  echo "liner demo: a temporary SQLite file, $dir/mesh.db"
fi
echo

# The demo bounds its own waits (well under 20 s); the timeout only guards against a hang.
timeout 60 node build/examples/ts/demo.js "$store"
