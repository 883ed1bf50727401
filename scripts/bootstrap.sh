#!/usr/bin/env bash
# Idempotent set-up on Debian: installs the system packages liner needs (only those missing),
# pytest (only if it is missing), then configures and builds. When everything is already there it
# costs a few dpkg look-ups and a no-op ninja run.
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
for pkg in redis-server libhiredis-dev libzstd-dev libgtest-dev cmake ninja-build g++ pkg-config; do
  installed "$pkg" || missing+=("$pkg")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)
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
