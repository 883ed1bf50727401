#!/usr/bin/env bash
# Runs liner's test suites against ONE throwaway redis-server.
#
#   scripts/test.sh            every suite: C/C++ (ctest), Python (test/python), interop,
#                              faults, hostile input, TypeScript (vitest), then hardening
#   scripts/test.sh c          only ctest (unit tests and the C examples)
#   scripts/test.sh py         only the pytest suites (python, interop, fault, hostile, redis
#                              harness, docs)
#   scripts/test.sh ts         only vitest
#   scripts/test.sh hardening  a 20 s fuzz run, then ASan+UBSan (scripts/sanitize.sh asan)
#   scripts/test.sh bench      the benchmark's smoke run (bench/run.sh --smoke): every program
#                              builds, speaks bench/PROTOCOL.md and delivers everything
#
# Every selected suite runs even if an earlier one failed; the script ends with one line per suite
# and exits non-zero if any of them failed. The suites find the server through
# LINER_TEST_REDIS_URL (test/conftest.py, the C examples and test/ts/support read it; the vitest
# files use databases 1..4 of that server, the other suites database 0).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

which=${1:-all}
case "$which" in
  all|c|py|ts|hardening|bench) ;;
  *) echo "usage: $0 [all|c|py|ts|hardening|bench]" >&2; exit 2 ;;
esac

scripts/bootstrap.sh || { echo "liner: set-up failed, no test was run" >&2; exit 1; }

. scripts/lib/redis.sh
trap stop_throwaway_redis EXIT
start_throwaway_redis || exit 1
export LINER_TEST_REDIS_URL=$LINER_REDIS_URL
echo "liner: redis-server on $LINER_TEST_REDIS_URL"

summary=()
failed=0

# record NAME STATUS DETAIL: remembers one suite's outcome for the final report.
record() {
  local verdict=passed
  [ "$2" -eq 0 ] || { verdict="FAILED (exit $2)"; failed=1; }
  summary+=("$(printf '%-9s %s  %s' "$1" "$verdict" "$3")")
}

# run_pytest NAME DIR: one pytest run; its last line ("N passed in Xs") becomes the suite detail.
run_pytest() {
  local name=$1 dir=$2 log status
  echo; echo "=== $name: python3 -m pytest -q $dir"
  if [ ! -d "$dir" ]; then
    summary+=("$(printf '%-9s %s' "$name" "skipped ($dir does not exist)")")
    return
  fi
  log=$(mktemp)
  python3 -m pytest -q "$dir" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # Exit 5 = nothing collected: not a failure, but said plainly in the summary.
  if [ "$status" -eq 5 ]; then
    summary+=("$(printf '%-9s %s' "$name" "no tests collected in $dir")")
  else
    record "$name" "$status" "$(grep -E '[0-9]+ (passed|failed|error)' "$log" | tail -n 1)"
  fi
  rm -f "$log"
}

if [ "$which" = all ] || [ "$which" = c ]; then
  echo; echo "=== ctest: unit tests and C examples (build/)"
  log=$(mktemp)
  (cd build && ctest --output-on-failure --timeout 300) 2>&1 | tee "$log"
  record ctest "${PIPESTATUS[0]}" "$(grep -E 'tests passed' "$log" | tail -n 1)"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = py ]; then
  run_pytest python test/python
  run_pytest interop test/interop
  run_pytest fault test/fault
  run_pytest hostile test/hostile
  run_pytest redis test/redis
  run_pytest docs test/docs
fi

if [ "$which" = all ] || [ "$which" = hardening ]; then
  # A bounded fuzz run over the committed corpus, then the C and Python suites under ASan+UBSan.
  echo; echo "=== fuzz: scripts/fuzz.sh 20"
  log=$(mktemp)
  scripts/fuzz.sh 20 2>&1 | tee "$log"
  record fuzz "${PIPESTATUS[0]}" "$(grep -E 'stat::number_of_executed_units' "$log" | sed 's/.*: */runs: /')"
  echo; echo "=== sanitize: scripts/sanitize.sh asan"
  scripts/sanitize.sh asan 2>&1 | tee "$log"
  record asan "${PIPESTATUS[0]}" "$(grep -E '^asan' "$log" | tr '\n' ' ')"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = ts ]; then
  echo; echo "=== vitest: TypeScript API, C ABI through koffi, packaging (test/ts)"
  log=$(mktemp)
  # The test files against the public typings first (vitest does not type-check; the examples
  # are compiled by test/ts/examples.test.ts).
  node_modules/.bin/tsc -p tsconfig.test.json 2>&1 | tee "$log"
  typecheck=${PIPESTATUS[0]}
  node_modules/.bin/vitest run 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  # vitest's own summary: "Test Files  23 passed (23)" and "Tests  90 passed (90)".
  detail=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +Tests +[0-9]' | tail -n 1 | sed 's/^ *//')
  if [ "$typecheck" -ne 0 ]; then
    status=$typecheck
    detail="tsc -p tsconfig.test.json failed; $detail"
  fi
  record ts "$status" "$detail"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = bench ]; then
  echo; echo "=== bench: bench/run.sh --smoke (one short run of every workload; no figures)"
  log=$(mktemp)
  bench/run.sh --smoke 2>&1 | tee "$log"
  record bench "${PIPESTATUS[0]}" "$(grep -E '^bench smoke:' "$log" | tail -n 1 | sed 's/^bench smoke: //')"
  rm -f "$log"
fi

echo
echo "=== summary"
for line in "${summary[@]}"; do echo "$line"; done
exit "$failed"
