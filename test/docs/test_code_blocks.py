"""Every code block of README.md and docs/ that is meant to run, runs (see docblocks.py for the
markers): TypeScript blocks are type-checked together against the package's typings and run
with node, Python blocks run over the python/liner package, C blocks are compiled against
include/liner.h and run, `sh` blocks marked `run` run with this checkout's `liner` command.
Every block that runs exits 0, and where a page shows what a block prints (a ```text block
marked `<!-- check: output -->` right after it), the block prints that. Relative links between
the pages point at files and headings that exist.

Needs `npm run build` (dist/, build/libliner_broker.so; $LINER_LIB names another build of the
library). The blocks use database 13 of the session's Redis (test/conftest.py), flushed before
each page.
"""
import os
import re
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


@pytest.fixture(scope="module")
def url(redis_server):
    return f"redis://{redis_server.host}:{redis_server.port}/{DB}"


@pytest.fixture(scope="module")
def work():
    path = docblocks.scratch_dir("docs-check")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ts_name(block):
    return "b_" + block.page.replace("/", "_").replace(".", "_").replace("-", "_") + f"_{block.line}"


@pytest.fixture(scope="module")
def compiled_ts(work, url):
    """Type-checks and compiles every TypeScript block at once; returns {block id: .mjs path}."""
    ts = [b for b in ALL if b.lang == "ts" and b.mode != "skip"]
    status, out, files = docblocks.compile_ts({ts_name(b): docblocks.with_redis(b.code, url) for b in ts}, work)
    for b in ts:  # name the block, not the scratch file
        out = out.replace(os.path.join("src", ts_name(b) + ".mts"), b.id)
    return {"ok": status == 0, "output": out, "files": {b.id: files[ts_name(b)] for b in ts}}


def test_runnable_blocks_say_what_they_are():
    """sh blocks of the README and docs/ (commands a reader might run) state whether the check
    runs them; a skipped block of any language says why."""
    assert ALL, "no code blocks found"
    for b in ALL:
        with open(os.path.join(ROOT, b.page), encoding="utf-8") as f:
            before = f.read().split("\n")[: b.line - 1]
        previous = next((line for line in reversed(before) if line.strip()), "")
        marker = docblocks.MARKER.search(previous)
        if b.lang == "sh":
            assert marker, f"{b.id}: mark the sh block with <!-- check: run --> or <!-- check: skip (why) -->"
        if marker and marker.group(1) == "skip":
            assert re.search(r"skip\s*\(\s*\S[^)]*\)", previous), f"{b.id}: say why it is skipped: <!-- check: skip (why) -->"
    assert any(b.mode == "run" for b in ALL if b.page == "README.md"), "the README's examples are not run"


def test_documented_outputs_say_whether_they_are_compared():
    """A text block right after a block that runs says whether it is that block's output; an
    output marker sits only there."""
    problems = docblocks.output_marker_problems(ALL)
    assert not problems, "\n".join(problems)
    assert sum(b.checks_output for b in ALL) >= 10, "most documented outputs are compared"


def test_typescript_blocks_type_check(compiled_ts):
    assert compiled_ts["ok"], compiled_ts["output"]


def run(cmd, block, timeout=60, **kw):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.id} ({block.lang}) did not finish within {timeout} s\n{e.stdout or ''}{e.stderr or ''}")
    assert r.returncode == 0, f"{block.id} ({block.lang}) failed with exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def check_output(block, stdout, url):
    if stdout is None:
        pytest.fail(f"{block.id}: shows an output but does not run (a C block needs a main)")
    diff = docblocks.output_diff(block, stdout, url)
    if diff:
        pytest.fail(f"{block.id} printed something else than its documented output:\n{diff}", pytrace=False)


def check_c(block, url, work):
    src = os.path.join(work, f"c_{block.line}.c")
    exe = src[:-2]
    with open(src, "w", encoding="utf-8") as f:
        f.write(docblocks.with_redis(block.code, url))
    has_main = "main(" in block.code
    run(docblocks.c_command(src, exe, has_main), block)
    if has_main and block.mode == "run":
        return run([exe], block).stdout


def check_python(block, url, work):
    src = os.path.join(work, f"py_{block.line}.py")
    with open(src, "w", encoding="utf-8") as f:
        f.write(docblocks.with_redis(block.code, url))
    if block.mode == "compile":
        run([sys.executable, "-m", "py_compile", src], block)
        return
    return run([sys.executable, src], block, env=docblocks.python_env()).stdout


def check_sh(block, url):
    cmd, env = docblocks.sh_command(docblocks.with_redis(block.code, url))
    return run(cmd, block, env=env).stdout


@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_blocks_run(page, url, work, compiled_ts, redis_server):
    redis_server.cli("-n", DB, "FLUSHDB")
    docblocks.empty_sqlite_dir()
    for block in [b for b in ALL if b.page == page and b.mode in ("run", "compile")]:
        stdout = None
        if block.lang == "ts":
            assert compiled_ts["ok"], compiled_ts["output"]
            if block.mode == "run":
                stdout = run(["node", compiled_ts["files"][block.id]], block).stdout
        elif block.lang == "python":
            stdout = check_python(block, url, work)
        elif block.lang == "c":
            stdout = check_c(block, url, work)
        elif block.lang == "sh":
            stdout = check_sh(block, url)
        else:
            pytest.fail(f"{block.id}: marked {block.mode}, but {block.lang!r} blocks cannot be checked")
        if block.checks_output:
            check_output(block, stdout, url)


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
