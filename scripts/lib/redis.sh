# Throwaway redis-server for the demo and the test run. Source this file, then:
#   start_throwaway_redis   # sets LINER_REDIS_PORT, LINER_REDIS_URL, LINER_REDIS_PID
#   stop_throwaway_redis    # idempotent; safe to call from an EXIT trap
#   start_throwaway_valkey  # the same with valkey-server: sets LINER_VALKEY_URL (and _PID, _DIR)
#   stop_throwaway_valkey
# Works under `set -euo pipefail`. The server listens on a free loopback port, keeps its files in a temporary directory and never
# persists: nothing outlives the run, and a developer's own Redis on 6379 is never touched.

free_loopback_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_throwaway_redis() {
  LINER_REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/liner-redis.XXXXXX")
  local attempt
  # The port is free when we ask but may be taken before redis binds it: retry with a new one.
  for attempt in 1 2 3; do
    LINER_REDIS_PORT=$(free_loopback_port)
    "${LINER_REDIS_SERVER:-redis-server}" --port "$LINER_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$LINER_REDIS_DIR" --logfile "$LINER_REDIS_DIR/redis.log" >/dev/null 2>&1 &
    LINER_REDIS_PID=$!
    local tries
    for tries in $(seq 100); do
      if [ "$(redis-cli -h 127.0.0.1 -p "$LINER_REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
        LINER_REDIS_URL="redis://127.0.0.1:$LINER_REDIS_PORT/0"
        return 0
      fi
      kill -0 "$LINER_REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$LINER_REDIS_PID" 2>/dev/null || true
    wait "$LINER_REDIS_PID" 2>/dev/null || true
    LINER_REDIS_PID=
  done
  echo "liner: could not start ${LINER_REDIS_SERVER:-redis-server} (log: $LINER_REDIS_DIR/redis.log)" >&2
  return 1
}

stop_throwaway_redis() {
  if [ -n "${LINER_REDIS_PID:-}" ]; then
    kill "$LINER_REDIS_PID" 2>/dev/null || true
    wait "$LINER_REDIS_PID" 2>/dev/null || true
    LINER_REDIS_PID=
  fi
  if [ -n "${LINER_REDIS_DIR:-}" ]; then
    rm -rf "$LINER_REDIS_DIR"
    LINER_REDIS_DIR=
  fi
  return 0
}

# Valkey (the Linux Foundation's fork of Redis) beside the run's Redis, without disturbing it.
start_throwaway_valkey() {
  local url=${LINER_REDIS_URL:-} port=${LINER_REDIS_PORT:-} pid=${LINER_REDIS_PID:-} dir=${LINER_REDIS_DIR:-} status=0
  LINER_REDIS_SERVER=valkey-server start_throwaway_redis || status=$?
  LINER_VALKEY_URL=${LINER_REDIS_URL:-} LINER_VALKEY_PID=${LINER_REDIS_PID:-} LINER_VALKEY_DIR=${LINER_REDIS_DIR:-}
  LINER_REDIS_URL=$url LINER_REDIS_PORT=$port LINER_REDIS_PID=$pid LINER_REDIS_DIR=$dir
  return $status
}

stop_throwaway_valkey() {
  local pid=${LINER_REDIS_PID:-} dir=${LINER_REDIS_DIR:-}
  LINER_REDIS_PID=${LINER_VALKEY_PID:-} LINER_REDIS_DIR=${LINER_VALKEY_DIR:-}
  stop_throwaway_redis
  LINER_VALKEY_PID= LINER_VALKEY_DIR=
  LINER_REDIS_PID=$pid LINER_REDIS_DIR=$dir
  return 0
}
