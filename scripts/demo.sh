#!/usr/bin/env bash
# The two-minute tour: sets up and builds liner if needed, starts a throwaway redis-server on a
# free loopback port (temporary directory, no persistence), runs examples/c/demo.c against it and
# stops the server again. Exits with the demo's status.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/bootstrap.sh

. scripts/lib/redis.sh
trap stop_throwaway_redis EXIT
start_throwaway_redis
echo "liner demo: throwaway redis-server on $LINER_REDIS_URL"
echo

# The demo bounds its own waits (well under 20 s); the timeout only guards against a hang.
timeout 60 build/examples/c/demo "$LINER_REDIS_URL"
