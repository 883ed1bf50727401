#!/usr/bin/env bash
# Prints the directory that holds OpenSSL's static libraries and headers for a foreign Linux
# architecture (arm64 today), taken from Debian's libssl-dev package of that architecture and
# unpacked under build/cross-openssl/<arch>/ (usr/include, usr/lib/<triple>), never installed:
#
#   scripts/cross_openssl.sh arm64     # -> /…/build/cross-openssl/arm64
#
# Why unpacked rather than installed (apt-get install libssl-dev:arm64): installing it pulls in
# Debian's arm64 libc (libc6:arm64), whose /lib/aarch64-linux-gnu/libc.so.6 the loader then mixes
# with the cross toolchain's under qemu-user, and every arm64 program spins at start-up. Needs the
# arm64 package lists (dpkg --add-architecture arm64; apt-get update; scripts/bootstrap.sh does it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=${1:?usage: cross_openssl.sh arm64}
case $arch in
  arm64) triple=aarch64-linux-gnu ;;
  *) echo "liner: no OpenSSL package known for $arch" >&2; exit 1 ;;
esac
dir=$root/build/cross-openssl/$arch
if [ ! -f "$dir/usr/lib/$triple/libssl.a" ] || [ ! -f "$dir/usr/include/$triple/openssl/configuration.h" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && apt-get download "libssl-dev:$arch" >/dev/null 2>&1); then
    echo "liner: cannot download Debian's libssl-dev:$arch (run: dpkg --add-architecture $arch && apt-get update)" >&2
    exit 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg-deb -x "$work"/libssl-dev_*.deb "$dir"
fi
echo "$dir"
