#!/usr/bin/env bash
# Runs liner's tests under the sanitizers, against one throwaway redis-server.
#
#   scripts/sanitize.sh [asan|tsan|all]      default: all
#
# asan  build-asan/ (-DLINER_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on the
#       core, the C API, the C++ tests and the C examples): every ctest test with leak
#       detection on, then the Python integration tests (test/python, without the one-million-
#       message volume test) and the hostile-input tests (test/hostile: the Python bad-input
#       table, and garbage streams against a listener process that is sanitized too) with
#       libasan preloaded into python3 and LINER_LIB pointing at the sanitized library; child
#       processes inherit both. CPython leaks by design, so leak detection is off for that part.
#       SANITIZE_FAULT=1 adds the fault tests (test/fault, about 3 more minutes).
# tsan  build-tsan/ (ThreadSanitizer, flags passed on the cmake command line): every ctest test
#       (clients with their listener, sender, delivery, directory and store threads, callbacks
#       calling back into the library), then the same Python suites as asan with libtsan
#       preloaded into the real python3 binary (sys.executable: a wrapper script such as
#       pyenv's shim is a bash process, which libtsan cannot be preloaded into).
#
# Any sanitizer report aborts the process that made it (halt_on_error), so it shows up as a
# failed test. The script ends with one line per part and exits non-zero if any failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

which=${1:-all}
case "$which" in
  all|asan|tsan) ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
jobs=$(nproc 2>/dev/null || echo 2)

SUITE_NAME_WIDTH=12
. scripts/lib/suites.sh
start_suites_servers

# configure DIR ARGS...: configures DIR once (an existing tree keeps its options) and builds it.
configure_and_build() {
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINER_BUILD_BENCH=OFF "$@" >/dev/null || return 1
  fi
  cmake --build "$dir" -j "$jobs"
}

# run_ctest NAME DIR [ctest args...]: one ctest run; its "tests passed" line is the detail.
run_ctest() {
  local name=$1 dir=$2 log status; shift 2
  log=$(mktemp)
  # Not in parallel: the tests share one Redis and flush it.
  (cd "$dir" && ctest --output-on-failure --timeout 300 "$@") 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  record "$name" "$status" "$(grep -E 'tests passed' "$log" | tail -n 1)"
  rm -f "$log"
}

# run_python NAME RUNTIME BUILD REPORT_REGEX: the Python suites (without the one-million-message
# volume test) with RUNTIME (libasan.so, libtsan.so) preloaded into the real python3 binary
# (sys.executable: a wrapper script such as pyenv's shim is a bash process, which libtsan cannot
# be preloaded into) and LINER_LIB pointing at BUILD's library; child processes inherit both.
# A line matching REPORT_REGEX in the output fails the part even if pytest passed.
python=$(python3 -c 'import sys; print(sys.executable)')
suites=(test/python test/hostile)
[ "${SANITIZE_FAULT:-0}" = 1 ] && suites+=(test/fault)
run_python() {
  local name=$1 runtime=$2 build=$3 reports=$4 log status
  echo; echo "=== $name: $python -m pytest ${suites[*]}"
  log=$(mktemp)
  LD_PRELOAD=$(gcc -print-file-name="$runtime") LINER_LIB="$root/$build/libliner_broker.so" \
    "$python" -m pytest -q -p no:cacheprovider "${suites[@]}" \
    --ignore=test/python/test_million_messages.py 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  record "$name-python" "$status" "$(grep -E '[0-9]+ (passed|failed|error)' "$log" | tail -n 1)"
  if grep -qE "$reports" "$log"; then
    record "$name-reports" 1 "sanitizer reports in the Python run (see above)"
  fi
  rm -f "$log"
}

if [ "$which" != tsan ]; then
  echo; echo "=== asan: build-asan (ASan + UBSan)"
  if configure_and_build build-asan -DLINER_SANITIZE=ON; then
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
      run_ctest asan-ctest build-asan

    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
      run_python asan libasan.so build-asan 'ERROR: AddressSanitizer|runtime error:'
    unset UBSAN_OPTIONS
  else
    record asan-build 1
  fi
fi

if [ "$which" != asan ]; then
  echo; echo "=== tsan: build-tsan (ThreadSanitizer)"
  flags="-fsanitize=thread -fno-omit-frame-pointer"
  if configure_and_build build-tsan -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread; then
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4"
    run_ctest tsan-ctest build-tsan

    run_python tsan libtsan.so build-tsan 'WARNING: ThreadSanitizer'
    unset TSAN_OPTIONS
  else
    record tsan-build 1
  fi
fi

finish_suites
