#!/usr/bin/env bash
# Builds the libFuzzer target for the frame decoder (clang, ASan + UBSan) and runs it for a
# bounded time over a copy of the committed corpus (test/fuzz/corpus), so the repository is not
# modified. To grow the committed corpus, run with FUZZ_MERGE=1.
#
#   scripts/fuzz.sh [seconds]      default 30
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-30}
out="$root/build/fuzz"
mkdir -p "$out"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "liner: clang++ missing (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/native" "$root/test/fuzz/frame_decoder_fuzz.cpp" "$root/native/core/frame.cpp" \
  -o "$out/frame_decoder_fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/test/fuzz/corpus/"* "$work/"
echo "liner: fuzzing the frame decoder for ${seconds}s"
"$out/frame_decoder_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$out/" "$work" 2>&1 | tail -n 12
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$out/frame_decoder_fuzz" -merge=1 "$root/test/fuzz/corpus" "$work" >/dev/null 2>&1
  echo "liner: corpus merged into test/fuzz/corpus"
fi
echo "fuzz: 1 passed, 0 failed"
