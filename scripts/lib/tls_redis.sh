# Throwaway redis-server that speaks only TLS, for the benchmark's "Redis over TLS" rows. Source
# this file (after scripts/lib/redis.sh, for free_loopback_port), then:
#   start_throwaway_tls_redis   # sets LINER_TLS_REDIS_URL (rediss://…?ca=…), LINER_TLS_REDIS_PID
#   stop_throwaway_tls_redis    # idempotent; safe to call from an EXIT trap
# A CA and a server certificate (for 127.0.0.1) are made with openssl in a temporary directory
# that the server's files share; nothing outlives the run.

start_throwaway_tls_redis() {
  LINER_TLS_REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/liner-tls-redis.XXXXXX")
  local d=$LINER_TLS_REDIS_DIR port tries
  (
    cd "$d" &&
      openssl req -x509 -new -nodes -newkey rsa:2048 -days 2 -keyout ca.key -out ca.pem -subj "/CN=liner bench CA" &&
      openssl req -new -nodes -newkey rsa:2048 -keyout server.key -out server.csr -subj "/CN=localhost" &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out server.pem -extfile server.ext
  ) >/dev/null 2>&1 || { echo "liner: openssl could not make the test certificates" >&2; return 1; }
  port=$(free_loopback_port)
  redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" \
    --tls-cert-file "$d/server.pem" --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.pem" \
    --tls-auth-clients no --logfile "$d/redis.log" >/dev/null 2>&1 &
  LINER_TLS_REDIS_PID=$!
  for tries in $(seq 100); do
    if [ "$(redis-cli --tls --cacert "$d/ca.pem" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
      LINER_TLS_REDIS_URL="rediss://127.0.0.1:$port/0?ca=$d/ca.pem"
      return 0
    fi
    kill -0 "$LINER_TLS_REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "liner: could not start redis-server with TLS (log: $d/redis.log)" >&2
  return 1
}

stop_throwaway_tls_redis() {
  if [ -n "${LINER_TLS_REDIS_PID:-}" ]; then
    kill "$LINER_TLS_REDIS_PID" 2>/dev/null || true
    wait "$LINER_TLS_REDIS_PID" 2>/dev/null || true
    LINER_TLS_REDIS_PID=
  fi
  if [ -n "${LINER_TLS_REDIS_DIR:-}" ]; then
    rm -rf "$LINER_TLS_REDIS_DIR"
    LINER_TLS_REDIS_DIR=
  fi
  return 0
}
