# What the suite runners (scripts/test.sh, scripts/sanitize.sh) share: a throwaway Redis and a
# throwaway PostgreSQL for the whole run and one summary line per suite. Source it from the
# repository root, then:
#   start_suites_servers          # redis-server and PostgreSQL, stopped on exit; exports
#                                 # LINER_TEST_REDIS_URL and LINER_TEST_POSTGRES_URL
#   record NAME STATUS [DETAIL]   # remembers one suite's outcome (STATUS non-zero: failed)
#   finish_suites                 # prints the summary and exits non-zero if any suite failed
# SUITE_NAME_WIDTH (default 9) is the width of the name column.

. scripts/lib/redis.sh
. scripts/lib/postgres.sh

summary=()
failed=0

start_suites_servers() {
  trap 'stop_throwaway_valkey; stop_throwaway_redis; stop_throwaway_postgres' EXIT
  start_throwaway_redis || exit 1
  export LINER_TEST_REDIS_URL=$LINER_REDIS_URL
  echo "liner: redis-server on $LINER_TEST_REDIS_URL"
  # The PostgreSQL store's tests (C++ and any other suite) read LINER_TEST_POSTGRES_URL.
  start_throwaway_postgres || exit 1
  echo "liner: PostgreSQL on $LINER_TEST_POSTGRES_URL"
}

# summary_line NAME VERDICT DETAIL: one aligned line of the final report.
summary_line() {
  summary+=("$(printf "%-${SUITE_NAME_WIDTH:-9}s %s  %s" "$1" "$2" "$3")")
}

record() {
  local verdict=passed
  [ "$2" -eq 0 ] || { verdict="FAILED (exit $2)"; failed=1; }
  summary_line "$1" "$verdict" "${3:-}"
}

finish_suites() {
  echo
  echo "=== summary"
  local line
  for line in "${summary[@]}"; do echo "$line"; done
  exit "$failed"
}
