#!/usr/bin/env bash
# Leak check: valgrind --leak-check=full over 1,000 create / run / send / close cycles of the C
# API (test/fault/leak_cycles.c, two clients per cycle, 10 threads side by side), against a
# throwaway redis-server. Fails on any definite leak, any memcheck error, or any failed call.
#
#   scripts/leakcheck.sh [cycles]      default 1000
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cycles=${1:-1000}

command -v valgrind >/dev/null 2>&1 || { echo "liner: valgrind missing (apt-get install valgrind)" >&2; exit 1; }
[ -f build/libliner_broker.so ] || scripts/build.sh || exit 1
out="$root/build/leakcheck"
mkdir -p "$out"
gcc -std=c11 -O1 -g -Wall -Wextra -Werror -I"$root/include" test/fault/leak_cycles.c \
  -L"$root/build" -lliner_broker -pthread -Wl,-rpath,"$root/build" -o "$out/leak_cycles" || exit 1

. scripts/lib/redis.sh
trap stop_throwaway_redis EXIT
start_throwaway_redis || exit 1

echo "liner: valgrind --leak-check=full over $cycles create/run/send/close cycles"
log="$out/valgrind.log"
started=$(date +%s)
valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite \
  --error-exitcode=99 --log-file="$log" \
  "$out/leak_cycles" "$LINER_REDIS_URL" "$cycles" 10
status=$?
elapsed=$(( $(date +%s) - started ))
grep -E "definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY|All heap blocks" "$log" | sed 's/^==[0-9]*== */  /'
definite=$(grep -E "definitely lost:" "$log" | sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' | tr -d ,)
[ -n "$definite" ] || { grep -q "All heap blocks were freed" "$log" && definite=0; }
echo
if [ "$status" -eq 0 ] && [ "${definite:-1}" = 0 ]; then
  echo "leakcheck: passed ($cycles cycles in ${elapsed}s, 0 bytes definitely lost)"
  exit 0
fi
echo "leakcheck: FAILED (exit $status, ${definite:-?} bytes definitely lost; details in $log)"
exit 1
