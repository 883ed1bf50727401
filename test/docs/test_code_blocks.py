"""Every code block of README.md and docs/ that is meant to run, runs (see docblocks.py for the
markers): TypeScript blocks are type-checked together against the package's typings and run
with node, Python blocks run over python/liner.py, C blocks are compiled against
include/liner.h and run, `sh` blocks marked `run` run with this checkout's `liner` command.
Relative links between the pages point at files and headings that exist.

Needs `npm run build` (dist/, build/libliner_broker.so). The blocks use database 13 of the
session's Redis (test/conftest.py), flushed before each page.
"""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import docblocks  # noqa: E402
from docblocks import ROOT  # noqa: E402

DB = 13
ALL = [b for page in docblocks.pages() for b in docblocks.blocks(page)]
RUN_PAGES = sorted({b.page for b in ALL if b.mode in ("run", "compile")})
TS_PRELUDE = "import { Client, LinerError, type Message } from 'liner';\n"


@pytest.fixture(scope="module")
def url(redis_server):
    return f"redis://{redis_server.host}:{redis_server.port}/{DB}"


@pytest.fixture(scope="module")
def work():
    """A scratch directory inside the checkout, so that `import 'liner'` finds this package."""
    path = os.path.join(ROOT, "build", f"docs-check-{os.getpid()}")
    os.makedirs(os.path.join(path, "src"), exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ts_name(block):
    return "b_" + block.page.replace("/", "_").replace(".", "_").replace("-", "_") + f"_{block.line}"


def ts_source(block, url):
    code = docblocks.with_redis(block.code, url)
    return code if "import " in code else TS_PRELUDE + code


@pytest.fixture(scope="module")
def compiled_ts(work, url):
    """Type-checks and compiles every TypeScript block at once; returns {block id: .mjs path}."""
    ts = [b for b in ALL if b.lang == "ts" and b.mode != "skip"]
    for b in ts:
        with open(os.path.join(work, "src", ts_name(b) + ".mts"), "w", encoding="utf-8") as f:
            f.write(ts_source(b, url))
    with open(os.path.join(work, "tsconfig.json"), "w") as f:
        f.write("""{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022", "ESNext.Disposable"], "module": "NodeNext",
    "moduleResolution": "NodeNext", "types": ["node"], "strict": true, "skipLibCheck": true,
    "rootDir": "src", "outDir": "out"
  },
  "include": ["src/*.mts"]
}
""")
    r = subprocess.run([os.path.join(ROOT, "node_modules", ".bin", "tsc"), "-p", work], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    for b in ts:  # name the block, not the scratch file
        out = out.replace(os.path.join("src", ts_name(b) + ".mts"), b.id)
    return {"ok": r.returncode == 0, "output": out,
            "files": {b.id: os.path.join(work, "out", ts_name(b) + ".mjs") for b in ts}}


def test_runnable_blocks_say_what_they_are():
    """Blocks in docs/ that a reader might run state whether the check runs them."""
    assert ALL, "no code blocks found"
    for b in ALL:
        if b.page.startswith("docs/") and b.lang == "sh":
            with open(os.path.join(ROOT, b.page), encoding="utf-8") as f:
                before = f.read().split("\n")[: b.line - 1]
            previous = next((line for line in reversed(before) if line.strip()), "")
            assert docblocks.MARKER.search(previous), f"{b.id}: mark the sh block with <!-- check: run --> or <!-- check: skip (why) -->"
    assert any(b.mode == "run" for b in ALL if b.page == "README.md"), "the README's examples are not run"


def test_typescript_blocks_type_check(compiled_ts):
    assert compiled_ts["ok"], compiled_ts["output"]


def run(cmd, block, timeout=60, **kw):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.id} ({block.lang}) did not finish within {timeout} s\n{e.stdout or ''}{e.stderr or ''}")
    assert r.returncode == 0, f"{block.id} ({block.lang}) failed with exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def check_c(block, url, work):
    src = os.path.join(work, f"c_{block.line}.c")
    exe = src[:-2]
    with open(src, "w", encoding="utf-8") as f:
        f.write(docblocks.with_redis(block.code, url))
    build = os.path.join(ROOT, "build")
    has_main = "main(" in block.code
    cmd = ["cc", "-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Werror", "-I", os.path.join(ROOT, "include"), src]
    cmd += ["-L", build, "-lliner_broker", f"-Wl,-rpath,{build}", "-o", exe] if has_main else ["-c", "-o", exe + ".o"]
    run(cmd, block)
    if has_main and block.mode == "run":
        run([exe], block)


def check_python(block, url, work):
    src = os.path.join(work, f"py_{block.line}.py")
    with open(src, "w", encoding="utf-8") as f:
        f.write(docblocks.with_redis(block.code, url))
    if block.mode == "compile":
        run([sys.executable, "-m", "py_compile", src], block)
        return
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    run([sys.executable, src], block, env=env)


def check_sh(block, url):
    cli = f"node {os.path.join(ROOT, 'dist', 'cli', 'main.js')}"
    code = docblocks.with_redis(block.code, url).replace("npx liner", cli)
    env = {k: v for k, v in os.environ.items() if k not in ("LINER_REDIS_URL", "FORCE_COLOR")}
    run(["bash", "-euo", "pipefail", "-c", code], block, env=env)


@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_blocks_run(page, url, work, compiled_ts, redis_server):
    redis_server.cli("-n", DB, "FLUSHDB")
    for block in [b for b in ALL if b.page == page and b.mode in ("run", "compile")]:
        if block.lang == "ts":
            assert compiled_ts["ok"], compiled_ts["output"]
            if block.mode == "run":
                run(["node", compiled_ts["files"][block.id]], block)
        elif block.lang == "python":
            check_python(block, url, work)
        elif block.lang == "c":
            check_c(block, url, work)
        elif block.lang == "sh":
            check_sh(block, url)
        else:
            pytest.fail(f"{block.id}: marked {block.mode}, but {block.lang!r} blocks cannot be checked")


def test_links_point_at_existing_pages_and_headings():
    broken = []
    for page in docblocks.pages():
        for line, target in docblocks.links(page):
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if not os.path.exists(os.path.join(ROOT, dest)):
                broken.append(f"{page}:{line}: {target} (no {dest})")
            elif anchor and dest.endswith(".md") and anchor not in docblocks.anchors(dest):
                broken.append(f"{page}:{line}: {target} (no heading #{anchor} in {dest})")
    assert not broken, "\n".join(broken)
