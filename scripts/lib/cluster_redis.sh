# Throwaway Redis Cluster of 3 primaries (no replicas), for the benchmark's "Redis Cluster"
# rows. Source this file (after scripts/lib/redis.sh, for free_loopback_port), then:
#   start_throwaway_cluster   # sets LINER_CLUSTER_REDIS_URL (redis+cluster://…)
#   stop_throwaway_cluster    # idempotent; safe to call from an EXIT trap
# Ports and cluster-bus ports are free loopback ports; files live in a temporary directory.
# (test/fault/cluster_kit.py is the tests' own, with replicas and fail-overs.)

start_throwaway_cluster() {
  LINER_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/liner-cluster.XXXXXX")
  LINER_CLUSTER_PIDS=()
  local nodes=() port bus i tries
  for i in 1 2 3; do
    port=$(free_loopback_port)
    bus=$(free_loopback_port)
    mkdir -p "$LINER_CLUSTER_DIR/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-port "$bus" \
      --cluster-config-file "$LINER_CLUSTER_DIR/$port/nodes.conf" --save '' --appendonly no \
      --dir "$LINER_CLUSTER_DIR/$port" --logfile "$LINER_CLUSTER_DIR/$port/redis.log" >/dev/null 2>&1 &
    LINER_CLUSTER_PIDS+=($!)
    nodes+=("127.0.0.1:$port")
    for tries in $(seq 100); do
      [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
      sleep 0.05
    done
  done
  if ! redis-cli --cluster create "${nodes[@]}" --cluster-yes >"$LINER_CLUSTER_DIR/create.log" 2>&1; then
    echo "liner: redis-cli --cluster create failed (log: $LINER_CLUSTER_DIR/create.log)" >&2
    return 1
  fi
  for tries in $(seq 200); do
    local ok=0 node
    for node in "${nodes[@]}"; do
      redis-cli -p "${node##*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
    done
    if [ "$ok" -eq 3 ]; then
      LINER_CLUSTER_REDIS_URL="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
      return 0
    fi
    sleep 0.05
  done
  echo "liner: the throwaway cluster did not reach cluster_state:ok" >&2
  return 1
}

stop_throwaway_cluster() {
  local pid
  for pid in "${LINER_CLUSTER_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  LINER_CLUSTER_PIDS=()
  if [ -n "${LINER_CLUSTER_DIR:-}" ]; then
    rm -rf "$LINER_CLUSTER_DIR"
    LINER_CLUSTER_DIR=
  fi
  return 0
}
