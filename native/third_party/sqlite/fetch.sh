#!/usr/bin/env bash
# Puts SQLite's amalgamation (sqlite3.c, sqlite3.h) in this directory, where CMakeLists.txt and
# binding.gyp compile it into liner. sqlite3.c is 9 MiB, too big for the repository, so it is
# taken from a registry this project already depends on: the npm tarball of better-sqlite3, which
# ships the official amalgamation (with one constant-folding patch for MSVC, deps/patches/1208.patch,
# that changes no behaviour). Both files are checked against the checksums below, so a different
# or altered copy is refused instead of compiled.
#
#   native/third_party/sqlite/fetch.sh   no-op when both files are present and match
#
# The npm package of liner carries both files, so an install that builds from source needs no
# network and no system SQLite.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
package=better-sqlite3@12.9.0   # SQLite 3.53.0
sums="391855ddc7af04001364430884d263cbe8638f852c83865823a2d08358f6b87d  sqlite3.c
8e43a79982422f4720685f62839718f0e41410c1b71355aa32af3615ccd9e31d  sqlite3.h"

(cd "$here" && sha256sum --check --status <<<"$sums" 2>/dev/null) && exit 0

command -v npm >/dev/null 2>&1 || { echo "liner: npm is needed once to fetch SQLite's source ($package)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "liner: fetching SQLite's amalgamation from the npm registry ($package)"
tarball=$(cd "$tmp" && npm pack "$package" --silent --loglevel=error)
tar -xzf "$tmp/$tarball" -C "$tmp" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
if ! (cd "$tmp/package/deps/sqlite3" && sha256sum --check --quiet <<<"$sums"); then
  echo "liner: $package does not hold the SQLite source this tree expects (checksums above)" >&2
  exit 1
fi
mv "$tmp/package/deps/sqlite3/sqlite3.c" "$tmp/package/deps/sqlite3/sqlite3.h" "$here/"
