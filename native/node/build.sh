#!/usr/bin/env bash
# Builds the Node addon (binding.gyp) with prebuildify into prebuilds/<platform>-<arch>/liner.node:
# the binary the npm package ships and the one src/native.ts loads (through node-gyp-build).
#
#   native/node/build.sh                builds only when binding.gyp, native/ or the version changed
#   native/node/build.sh --force        builds anyway
#   native/node/build.sh --arch arm64   cross-builds prebuilds/linux-arm64/liner.node (same rules)
#
# Cross builds use the Debian cross toolchain <triple>-gcc/g++ (g++-aarch64-linux-gnu for arm64)
# and that architecture's OpenSSL (scripts/cross_openssl.sh): the addon needs nothing but libc
# (its third-party code is compiled in), and Node-API headers are the same for every
# architecture, so the running node's headers serve. Each architecture has its
# own staging directory and signature, so building one never invalidates the other.
#
# node-gyp always works in ./build, which is CMake's directory in this repository (and the
# `node-gyp rebuild` that prebuildify runs deletes it first). So it runs in build/addon/, whose
# binding.gyp only includes ours. Headers come from the running node's installation (Debian:
# /usr/include/node): node-gyp is never allowed to download them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$root/node_modules/.bin

force=
host_arch=$(node -p process.arch)
arch=$host_arch
while [ $# -gt 0 ]; do
  case $1 in
    --force) force=1 ;;
    --arch) arch=${2:?--arch needs a value (x64, arm64)}; shift ;;
    --arch=*) arch=${1#--arch=} ;;
    *) echo "liner: unknown argument $1 (usage: build.sh [--force] [--arch x64|arm64])" >&2; exit 2 ;;
  esac
  shift
done

# The host's build keeps build/addon (where it always was); another architecture gets its own.
stage=$root/build/addon
prebuildify_env=()
if [ "$arch" != "$host_arch" ]; then
  if [ "$(uname -s)" != Linux ]; then
    echo "liner: cross-building the addon is only supported on Linux" >&2
    exit 1
  fi
  case $arch in
    arm64) triple=aarch64-linux-gnu ;;
    x64) triple=x86_64-linux-gnu ;;
    *) echo "liner: no cross toolchain known for --arch $arch (known: x64, arm64)" >&2; exit 1 ;;
  esac
  if ! command -v "$triple-g++" >/dev/null 2>&1; then
    echo "liner: $triple-g++ is missing (Debian: apt-get install g++-$triple)" >&2
    exit 1
  fi
  stage=$root/build/addon-$arch
  # OpenSSL of that architecture, unpacked from Debian's package (scripts/cross_openssl.sh says
  # why it is not installed); its headers come before the host's.
  openssl=$("$root/scripts/cross_openssl.sh" "$arch")
  openssl_flags="-isystem $openssl/usr/include/$triple -isystem $openssl/usr/include"
  # node-gyp's make generator reads CC/CXX/LINK/AR and CFLAGS/CXXFLAGS/LDFLAGS for target code;
  # the host strip cannot strip a foreign ELF, so prebuildify is given the cross one.
  prebuildify_env=(CC="$triple-gcc" CXX="$triple-g++" LINK="$triple-g++" AR="$triple-ar"
    CFLAGS="$openssl_flags" CXXFLAGS="$openssl_flags" LDFLAGS="-L$openssl/usr/lib/$triple"
    PREBUILD_STRIP_BIN="$triple-strip")
fi

if [ ! -x "$bin/prebuildify" ]; then
  echo "liner: prebuildify is missing; run 'npm ci' first" >&2
  exit 1
fi

nodedir=$(node -p "require('path').resolve(process.execPath, '..', '..')")
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "liner: no Node headers in $nodedir/include/node (Debian: apt-get install libnode-dev)" >&2
  exit 1
fi
export npm_config_nodedir=$nodedir

"$root/native/third_party/sqlite/fetch.sh"

target=$root/prebuilds/$(node -p process.platform)-$arch/liner.node
signature=$(cd "$root" && {
  cat binding.gyp native/core/* native/node/*
  find native/third_party -type f -name '*.[ch]' | sort | xargs cat
  node -p 'require("./package.json").version + " " + require("node-addon-api/package.json").version'
} | cksum)
if [ -z "$force" ] && [ -f "$target" ] && [ "$(cat "$stage/signature" 2>/dev/null)" = "$signature" ]; then
  exit 0
fi

mkdir -p "$stage"
echo "{ 'variables': { 'liner_root': '../..' }, 'includes': [ '../../binding.gyp' ] }" >"$stage/binding.gyp"
echo '{ "name": "liner", "private": true }' >"$stage/package.json"  # prebuildify names the binary after it
rm -f "$stage/signature"
echo "liner: building the Node addon for $arch (node-gyp, headers from $nodedir)"
(cd "$stage" && env "${prebuildify_env[@]}" JOBS=max npm_config_loglevel=warn "$bin/prebuildify" --napi \
  --strip --arch "$arch" --target "$(node -p process.versions.node)" --out "$root")
[ -f "$target" ] || { echo "liner: prebuildify did not produce $target" >&2; exit 1; }
echo "$signature" >"$stage/signature"
echo "liner: built ${target#"$root"/}"
