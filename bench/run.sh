#!/usr/bin/env bash
# npm run bench [-- --runs 5 | --smoke | --only pair/1024]
# Sets everything up (scripts/bootstrap.sh: system packages incl. libzmq3-dev, the C library and
# the C++ benchmark programs, the addon and dist/), builds the liner_broker 1.3.1 program with
# cargo, installs zeromq.js into bench/node (its own package: never a dependency of liner), starts
# a throwaway redis-server and PostgreSQL server and runs bench/run.py, which prints the table and
# writes bench/RESULTS.md. Arguments go to bench/run.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/bootstrap.sh >/dev/null
if ! command -v cargo >/dev/null 2>&1; then
  echo "liner bench: cargo (Rust) is needed to build the liner_broker 1.3.1 baseline; install it with rustup" >&2
  exit 1
fi
echo "liner bench: building the liner_broker 1.3.1 program (cargo, first time takes a few minutes)"
CARGO_TARGET_DIR="$root/build/bench-rust" cargo build --quiet --release --locked \
  --manifest-path bench/rust/Cargo.toml
if [ ! -d bench/node/node_modules/zeromq ]; then
  echo "liner bench: installing zeromq.js into bench/node"
  npm ci --prefix bench/node --no-audit --no-fund --loglevel=error
fi

. scripts/lib/redis.sh
. scripts/lib/postgres.sh
. scripts/lib/tls_redis.sh
. scripts/lib/cluster_redis.sh
trap 'stop_throwaway_postgres; stop_throwaway_cluster; stop_throwaway_tls_redis; stop_throwaway_redis' EXIT
start_throwaway_redis
# The "Redis over TLS" rows: a second server that speaks only TLS.
start_throwaway_tls_redis && export LINER_TLS_REDIS_URL ||
  echo "liner bench: no Redis with TLS: its rows are left out" >&2
# The "Redis Cluster" rows: 3 primaries.
start_throwaway_cluster && export LINER_CLUSTER_REDIS_URL ||
  echo "liner bench: no Redis Cluster: its rows are left out" >&2
# The PostgreSQL rows need a server (bootstrap installs one); each run makes a database there.
start_throwaway_postgres || echo "liner bench: no PostgreSQL server: its rows are left out" >&2
LINER_REDIS_URL=$LINER_REDIS_URL python3 bench/run.py "$@"
