#!/usr/bin/env bash
# The two-minute tour: sets up and builds liner if needed, starts a throwaway redis-server on a
# free loopback port (temporary directory, no persistence), runs the TypeScript demo
# (examples/ts/demo.ts: one-to-one, one-to-many, producer-consumer, offline delivery and a
# messages-per-second figure) against it and stops the server again. Exits with the demo's
# status. The C demo is still there: build/examples/c/demo [redis_url].
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/bootstrap.sh
node_modules/.bin/tsc -p tsconfig.examples.json  # examples/ts -> build/examples/ts

. scripts/lib/redis.sh
trap stop_throwaway_redis EXIT
start_throwaway_redis
echo "liner demo: throwaway redis-server on $LINER_REDIS_URL"
echo

# The demo bounds its own waits (well under 20 s); the timeout only guards against a hang.
timeout 60 node build/examples/ts/demo.js "$LINER_REDIS_URL"
