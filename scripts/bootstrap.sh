#!/usr/bin/env bash
# Idempotent set-up on Debian: installs the system packages liner needs (only those missing),
# pytest (only if it is missing) and the npm dev dependencies (only if node_modules is missing or
# older than package-lock.json), then builds the C library, the Node addon (x64, and arm64 with a
# cross compiler) and the TypeScript. When everything is already there it costs a few dpkg
# look-ups, a no-op ninja run, a checksum of the addon's sources per architecture and a tsc run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "liner: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

apt_updated=
apt_install() {
  [ $# -gt 0 ] || return 0
  echo "liner: installing $*"
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
# make: node-gyp's generator for the Node addon.
# clang + libclang-rt-14-dev: the fuzz target and sanitizer runs; iproute2: ss, used by the
# dead-address fault test and the multi-host test bed; nftables: packet loss in that test bed;
# libzmq3-dev: the libzmq baseline of bench/; postgresql: the server the PostgreSQL store's tests
# start (scripts/lib/postgres.sh), and libpq5, which that store loads at run time.
# g++-aarch64-linux-gnu + qemu-user: cross-build the linux-arm64 addon and test it under emulation;
# libssl-dev (and libssl-dev:arm64 for that cross build): OpenSSL, linked statically, for Redis
# over TLS (named with its architecture, as dpkg wants once arm64 is a foreign architecture);
# redis-sentinel: the Sentinel fail-over tests.
for pkg in redis-server redis-sentinel "libssl-dev:$(dpkg --print-architecture)" libgtest-dev cmake ninja-build g++ pkg-config make \
  clang libclang-rt-14-dev iproute2 nftables libzmq3-dev postgresql \
  g++-aarch64-linux-gnu qemu-user; do
  installed "$pkg" || missing+=("$pkg")
done
# The arm64 build's OpenSSL is unpacked from Debian's libssl-dev:arm64, never installed
# (scripts/cross_openssl.sh says why): apt needs the arm64 package lists to download it.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  as_root dpkg --add-architecture arm64
  as_root apt-get update -qq
  apt_updated=1
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# cargo: the interop suite builds a liner_broker 1.3.1 peer (test/interop/peer) with it. rustup's
# when the machine has one; else Debian's cargo-web (1.96): the peer's locked crates need
# rustc >= 1.88, which Debian's plain cargo package (1.63) is not.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  missing+=(cargo-web)
fi
# valkey-server: the Redis suites run once more against Valkey. Debian 12 has it in
# bookworm-backports only (later releases in main).
if ! command -v valkey-server >/dev/null 2>&1; then
  valkey=valkey-server
  if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
    backports=/etc/apt/sources.list.d/bookworm-backports.list
    if ! grep -qs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/*; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" | as_root tee "$backports" >/dev/null
      apt_updated=
    fi
    valkey=valkey-server/bookworm-backports
  fi
  missing+=("$valkey")
fi
apt_install "${missing[@]}"

if ! python3 -m pytest --version >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  echo "liner: installing pytest"
  # Debian marks its Python as externally managed (PEP 668); pytest is a test-only tool, so a
  # system-wide pip install is acceptable here when the plain one is refused.
  python3 -m pip install --quiet --root-user-action=ignore pytest 2>/dev/null ||
    python3 -m pip install --quiet --root-user-action=ignore --break-system-packages pytest
fi

"$root/scripts/build.sh"

# The Node side: dev dependencies (node-gyp, prebuildify, typescript, vitest, koffi), the addon
# for x64 and arm64 (native/node/build.sh rebuilds one only when its sources changed) and dist/.
node_headers=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
if [ ! -f "$node_headers/node_api.h" ] && apt-cache show libnode-dev >/dev/null 2>&1; then
  apt_install libnode-dev  # Debian's own nodejs keeps its headers there
fi
if [ ! -f "$root/node_modules/.package-lock.json" ] ||
  [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
  echo "liner: installing npm dev dependencies"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
fi
"$root/native/node/build.sh"
"$root/native/node/build.sh" --arch arm64  # prebuilds/linux-arm64: the npm package ships both
(cd "$root" && npm run --silent build:ts)  # dist/, and dist/examples/ (the demo the package ships)
