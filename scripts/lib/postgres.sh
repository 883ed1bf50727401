# Throwaway PostgreSQL server for the test run. Source this file, then:
#   start_throwaway_postgres   # sets LINER_POSTGRES_PORT, LINER_POSTGRES_DIR; exports
#                              # LINER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   stop_throwaway_postgres    # idempotent; safe to call from an EXIT trap
# Works under `set -euo pipefail`. The cluster lives in a temporary directory (fsync off: nothing
# needs to survive), listens on a free loopback port with trust authentication there and its
# socket in that directory: a developer's own PostgreSQL on 5432 is never touched.
# initdb refuses to run as root: as root, the server runs as user postgres (Debian's package
# makes it) or else nobody, which own the directory.

. "$(dirname "${BASH_SOURCE[0]}")/redis.sh"  # free_loopback_port

postgres_bin_dir() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  # Debian keeps them out of PATH, one directory per major version: the newest.
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
  echo "$dir"
}

# as_postgres_user CMD...: runs CMD as the user that owns the cluster.
as_postgres_user() {
  if [ -n "${LINER_POSTGRES_USER:-}" ]; then
    runuser -u "$LINER_POSTGRES_USER" -- "$@"
  else
    "$@"
  fi
}

start_throwaway_postgres() {
  local bin
  bin=$(postgres_bin_dir) || {
    echo "liner: PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)" >&2
    return 1
  }
  LINER_POSTGRES_USER=
  if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then LINER_POSTGRES_USER=postgres; else LINER_POSTGRES_USER=nobody; fi
  fi
  LINER_POSTGRES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/liner-postgres.XXXXXX")
  [ -z "$LINER_POSTGRES_USER" ] || chown "$LINER_POSTGRES_USER" "$LINER_POSTGRES_DIR"
  if ! as_postgres_user "$bin/initdb" -D "$LINER_POSTGRES_DIR/data" -U postgres -A trust --no-sync \
    >"$LINER_POSTGRES_DIR/initdb.log" 2>&1; then
    echo "liner: initdb failed (log: $LINER_POSTGRES_DIR/initdb.log)" >&2
    return 1
  fi
  local attempt
  # The port is free when we ask but may be taken before the server binds it: retry with a new one.
  for attempt in 1 2 3; do
    LINER_POSTGRES_PORT=$(free_loopback_port)
    if as_postgres_user "$bin/pg_ctl" -D "$LINER_POSTGRES_DIR/data" -l "$LINER_POSTGRES_DIR/server.log" -w -t 30 \
      -o "-p $LINER_POSTGRES_PORT -c listen_addresses=127.0.0.1 -k $LINER_POSTGRES_DIR -c fsync=off -c max_connections=200" \
      start >/dev/null 2>&1; then
      LINER_POSTGRES_BIN=$bin
      export LINER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$LINER_POSTGRES_PORT/postgres"
      return 0
    fi
  done
  echo "liner: could not start PostgreSQL (log: $LINER_POSTGRES_DIR/server.log)" >&2
  return 1
}

stop_throwaway_postgres() {
  if [ -n "${LINER_POSTGRES_BIN:-}" ] && [ -n "${LINER_POSTGRES_DIR:-}" ]; then
    as_postgres_user "$LINER_POSTGRES_BIN/pg_ctl" -D "$LINER_POSTGRES_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    LINER_POSTGRES_BIN=
  fi
  if [ -n "${LINER_POSTGRES_DIR:-}" ]; then
    rm -rf "$LINER_POSTGRES_DIR"
    LINER_POSTGRES_DIR=
  fi
  return 0
}
