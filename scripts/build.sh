#!/usr/bin/env bash
# Configures (first time only) and builds liner into build/: libliner_broker.so, the C examples
# in build/examples/c and the C++ tests. Ninja rebuilds only what changed, so a second call is fast.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# An existing build tree keeps its generator and options; cmake --build re-configures it by itself
# when a CMakeLists.txt changed.
if [ ! -f "$root/build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$root/build"
