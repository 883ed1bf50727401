#!/usr/bin/env bash
# Builds the Node addon (binding.gyp) with prebuildify into prebuilds/<platform>-<arch>/liner.node:
# the binary the npm package ships and the one src/native.ts loads (through node-gyp-build).
#
#   native/node/build.sh           builds only when binding.gyp, native/ or the version changed
#   native/node/build.sh --force   builds anyway
#
# node-gyp always works in ./build, which is CMake's directory in this repository (and the
# `node-gyp rebuild` that prebuildify runs deletes it first). So it runs in build/addon/, whose
# binding.gyp only includes ours. Headers come from the running node's installation (Debian:
# /usr/include/node): node-gyp is never allowed to download them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
stage=$root/build/addon
bin=$root/node_modules/.bin

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

target=$root/prebuilds/$(node -p 'process.platform + "-" + process.arch')/liner.node
signature=$(cd "$root" && {
  cat binding.gyp native/core/* native/node/*
  find native/third_party -type f -name '*.[ch]' | sort | xargs cat
  node -p 'require("./package.json").version + " " + require("node-addon-api/package.json").version'
} | cksum)
if [ "${1:-}" != --force ] && [ -f "$target" ] && [ "$(cat "$stage/signature" 2>/dev/null)" = "$signature" ]; then
  exit 0
fi

mkdir -p "$stage"
echo "{ 'variables': { 'liner_root': '../..' }, 'includes': [ '../../binding.gyp' ] }" >"$stage/binding.gyp"
echo '{ "name": "liner", "private": true }' >"$stage/package.json"  # prebuildify names the binary after it
rm -f "$stage/signature"
echo "liner: building the Node addon (node-gyp, headers from $nodedir)"
(cd "$stage" && JOBS=max npm_config_loglevel=warn "$bin/prebuildify" --napi --strip \
  --target "$(node -p process.versions.node)" --out "$root")
[ -f "$target" ] || { echo "liner: prebuildify did not produce $target" >&2; exit 1; }
echo "$signature" >"$stage/signature"
echo "liner: built ${target#"$root"/}"
