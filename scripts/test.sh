#!/usr/bin/env bash
# Runs liner's test suites against ONE throwaway redis-server and ONE throwaway PostgreSQL.
#
#   scripts/test.sh            every suite: C/C++ (ctest), Python (test/python), interop,
#                              faults, hostile input, TypeScript (vitest), hardening, the
#                              benchmark's smoke run, then the mutation check
#   scripts/test.sh c          only ctest (unit tests and the C examples)
#   scripts/test.sh py         only the pytest suites (python, interop, fault, hostile, redis
#                              harness, python and redis harness again against Valkey, docs, and
#                              the Python wheel: built, installed in a fresh
#                              venv and tested there; its first run fetches the wheel tools from
#                              PyPI into build/wheel-tools)
#   scripts/test.sh ts         only vitest
#   scripts/test.sh hardening  a 20 s fuzz run, then ASan+UBSan and ThreadSanitizer
#                              (scripts/sanitize.sh all)
#   scripts/test.sh bench      the benchmark's smoke run (bench/run.sh --smoke): every program
#                              builds, speaks bench/PROTOCOL.md and delivers everything
#   scripts/test.sh mutation   the mutation check (test/mutation/mutate.py): curated bugs planted
#                              in a copy of the tree, each of which the fast tests must catch;
#                              a daily sample within LINER_MUTANTS_BUDGET seconds (default 240)
#
# Every selected suite runs even if an earlier one failed; the script ends with one line per suite
# (with its passed/skipped counts) and exits non-zero if any of them failed. A suite in which no
# test ran (all skipped, or none collected) FAILS, unless this machine declares that expected:
#   LINER_EXPECTED_SKIPS="interop fault"   suites allowed to run nothing here (say why in the CI
#                                          set-up that sets it)
# The suites find the server through LINER_TEST_REDIS_URL (test/conftest.py, the C examples and
# test/ts/support read it; the vitest files use databases 1..4 of that server, the other suites
# database 0), and the PostgreSQL server through LINER_TEST_POSTGRES_URL (the C++ tests make a
# database of their own per test there).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

which=${1:-all}
case "$which" in
  all|c|py|ts|hardening|bench|mutation) ;;
  *) echo "usage: $0 [all|c|py|ts|hardening|bench|mutation]" >&2; exit 2 ;;
esac
# rustup's cargo (the interop suite builds its liner_broker peer with it) when it is not on PATH.
[ -d "$HOME/.cargo/bin" ] && PATH=$PATH:$HOME/.cargo/bin

scripts/bootstrap.sh || { echo "liner: set-up failed, no test was run" >&2; exit 1; }

. scripts/lib/suites.sh
start_suites_servers

# record_counts NAME STATUS PASSED SKIPPED DETAIL: like record, but a suite that passed no test
# fails unless LINER_EXPECTED_SKIPS names it.
record_counts() {
  local name=$1 status=$2 passed=${3:-0} skipped=${4:-0} detail=$5
  if [ "$status" -eq 0 ] && [ "$passed" -eq 0 ]; then
    if [[ " ${LINER_EXPECTED_SKIPS:-} " == *" $name "* ]]; then
      summary_line "$name" "skipped (declared expected: LINER_EXPECTED_SKIPS)" "$detail"
      return
    fi
    echo "liner: suite $name ran no test ($skipped skipped); see the skip reasons above" >&2
    status=1
  fi
  record "$name" "$status" "$detail"
}

# count WORD LINE: the number before WORD in a runner's summary line ("12 passed, 3 skipped").
count() { grep -oE "[0-9]+ $1" <<<"$2" | tail -n 1 | grep -oE '^[0-9]+' || echo 0; }

# run_pytest NAME DIR: one pytest run; its last line ("N passed, M skipped in Xs") becomes the
# suite detail. -rs lists every skipped test with its reason.
run_pytest() {
  local name=$1 dir=$2 log status line
  echo; echo "=== $name: python3 -m pytest -q -rs $dir"
  log=$(mktemp)
  if [ -d "$dir" ]; then
    python3 -m pytest -q -rs "$dir" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
  else
    echo "liner: $dir does not exist" | tee "$log"
    status=0
  fi
  line=$(grep -E '[0-9]+ (passed|failed|error|skipped)|no tests ran' "$log" | tail -n 1)
  [ "$status" -eq 5 ] && status=0  # nothing collected: counted as no test run just below
  record_counts "$name" "$status" "$(count passed "$line")" "$(count skipped "$line")" "${line:-no tests collected}"
  rm -f "$log"
}

if [ "$which" = all ] || [ "$which" = c ]; then
  echo; echo "=== ctest: unit tests and C examples (build/)"
  log=$(mktemp)
  (cd build && ctest --output-on-failure --timeout 300) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  line=$(grep -E 'tests passed' "$log" | tail -n 1)
  total=$(grep -oE 'out of [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  skipped=$(grep -cE '\*\*\*Skipped|Not Run' "$log")
  record_counts ctest "$status" "$((total - skipped))" "$skipped" "$line, $skipped skipped"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = py ]; then
  run_pytest python test/python
  run_pytest interop test/interop
  run_pytest fault test/fault
  run_pytest multihost test/netns
  run_pytest hostile test/hostile
  run_pytest redis test/redis
  # The Redis suites once more against Valkey, on a server of its own.
  if start_throwaway_valkey; then
    echo "liner: valkey-server on $LINER_VALKEY_URL"
    LINER_TEST_REDIS_URL=$LINER_VALKEY_URL run_pytest valkey-py test/python
    LINER_TEST_REDIS_URL=$LINER_VALKEY_URL run_pytest valkey-rd test/redis
    stop_throwaway_valkey
  else
    record valkey 1 "no valkey-server: scripts/bootstrap.sh installs it"
  fi
  run_pytest docs test/docs
  run_pytest package test/package
fi

if [ "$which" = all ] || [ "$which" = hardening ]; then
  # A bounded fuzz run over the committed corpus, then the C and Python suites under ASan+UBSan.
  echo; echo "=== fuzz: scripts/fuzz.sh 20"
  log=$(mktemp)
  scripts/fuzz.sh 20 2>&1 | tee "$log"
  record fuzz "${PIPESTATUS[0]}" "$(grep -E 'stat::number_of_executed_units' "$log" | sed 's/.*: */runs: /')"
  echo; echo "=== sanitize: scripts/sanitize.sh all (ASan+UBSan, then ThreadSanitizer)"
  scripts/sanitize.sh all 2>&1 | tee "$log"
  record sanitize "${PIPESTATUS[0]}" "$(grep -E '^(asan|tsan)' "$log" | tr -s ' ' | tr '\n' ';')"
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
  record_counts ts "$status" "$(count passed "$detail")" "$(count skipped "$detail")" "$detail"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = bench ]; then
  echo; echo "=== bench: bench/run.sh --smoke (one short run of every workload; no figures)"
  log=$(mktemp)
  bench/run.sh --smoke 2>&1 | tee "$log"
  record bench "${PIPESTATUS[0]}" "$(grep -E '^bench smoke:' "$log" | tail -n 1 | sed 's/^bench smoke: //')"
  rm -f "$log"
fi

if [ "$which" = all ] || [ "$which" = mutation ]; then
  echo; echo "=== mutation: python3 test/mutation/mutate.py (budget ${LINER_MUTANTS_BUDGET:-240} s)"
  log=$(mktemp)
  python3 test/mutation/mutate.py 2>&1 | tee "$log"
  record mutation "${PIPESTATUS[0]}" "$(grep -E '^mutation: [0-9]+ of' "$log" | tail -n 1 | sed 's/^mutation: //')"
  rm -f "$log"
fi

finish_suites
