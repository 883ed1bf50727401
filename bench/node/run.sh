#!/usr/bin/env bash
# npm run bench:node - builds liner if needed, installs zeromq into bench/node (once; it is not a
# dependency of liner), starts a throwaway redis-server and runs pair.mjs against it.
# Extra arguments go to pair.mjs (e.g. --cycles 10 --count 20000).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

scripts/bootstrap.sh >/dev/null
if [ ! -d bench/node/node_modules/zeromq ]; then
  echo "liner bench: installing zeromq into bench/node"
  npm install --prefix bench/node --no-audit --no-fund --loglevel=error
fi

. scripts/lib/redis.sh
trap stop_throwaway_redis EXIT
start_throwaway_redis
node bench/node/pair.mjs "$LINER_REDIS_URL" "$@"
