"""The documentation check catches failures instead of passing over them.

- A block that prints something else than its documented output fails with a diff: shown on
  synthetic pages (the comparison and its normalisation) and on a real README block.
- A block whose send fails, whose message never arrives, or whose store cannot be reached exits
  non-zero within its bound and says why on stderr: shown on planted copies of the README's and
  docs/bindings.md's C, Python and TypeScript examples (the destination topic changed to one
  nobody serves; the receiver moved to another topic while a dead address stays registered for
  the old one, so the send succeeds and nothing arrives; a Redis URL nobody listens on, or an
  SQLite file in a directory that does not exist).

Uses database 14 of the session's Redis (test/conftest.py), flushed before each planted run, and
docblocks.SQLITE_DIR for examples on an SQLite file, emptied before each planted run.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import docblocks  # noqa: E402
from liner_testkit import free_port  # noqa: E402

DB = 14
NOBODY = "nobody-serves-this"
# A port that was free a moment ago: nothing listens there.
UNREACHABLE = f"redis://127.0.0.1:{free_port()}/0"
# Where the planted "never arrives" runs register the receiver's old topic: port 1 refuses.
DEAD_ADDRESS = "127.0.0.1:1"

# The example blocks to plant failures in: (page, language) -> how to plant each failure. `send`
# swaps the destination of the send for a topic nobody serves; `receiver` moves the receiver off
# `topic`, which keeps a dead address, so that the send succeeds and the message never arrives.
EXAMPLES = {
    ("README.md", "c"): {"send": ('lnr_send_to(boss, "jobs"', f'lnr_send_to(boss, "{NOBODY}"'),
                         "receiver": ('("worker-1", "jobs"', '("worker-1", "jobs-elsewhere"'), "topic": "jobs"},
    ("README.md", "python"): {"send": ('boss.send_to("jobs"', f'boss.send_to("{NOBODY}"'),
                              "receiver": ('("worker-1", "jobs"', '("worker-1", "jobs-elsewhere"'), "topic": "jobs"},
    ("README.md", "ts"): {"send": ("boss.sendTo('jobs', 'hello')", f"boss.sendTo('{NOBODY}', 'hello')"),
                          "receiver": ("name: 'worker-1', topic: 'jobs'", "name: 'worker-1', topic: 'jobs-elsewhere'"),
                          "topic": "jobs", "on": "redis"},  # the whole-API example, which bounds its wait
    ("docs/bindings.md", "c"): {"send": ('lnr_send_to(tx, "c-rx"', f'lnr_send_to(tx, "{NOBODY}"'),
                                "receiver": ('("c-rx", "c-rx"', '("c-rx", "c-rx-elsewhere"'), "topic": "c-rx"},
    ("docs/bindings.md", "python"): {"send": ('tx.send_to("py-rx"', f'tx.send_to("{NOBODY}"'),
                                     "receiver": ('("py-rx", "py-rx"', '("py-rx", "py-rx-elsewhere"'), "topic": "py-rx"},
    ("docs/bindings.md", "ts"): {"send": ("tx.sendTo('ts-rx'", f"tx.sendTo('{NOBODY}'"),
                                 "receiver": ("name: 'ts-rx', topic: 'ts-rx'", "name: 'ts-rx', topic: 'ts-rx-elsewhere'"),
                                 "topic": "ts-rx"},
}
# failure -> what stderr must say. Every example has a bound of 5 s on what it waits for.
FAILURES = {"send": NOBODY, "receiver": "within 5 s", "store": None}
STORE_FAILURES = {"redis": "unreachable", "sqlite": "unable to open"}
NO_DIR = "/nonexistent-liner-dir/"
CASES = [(page, lang, failure) for (page, lang) in EXAMPLES for failure in FAILURES
         if failure != "store" or page == "README.md"]


def case_id(case):
    page, lang, failure = case
    return f"{page}-{lang}-{failure}"


def file_name(case):
    return case_id(case).replace("/", "_").replace(".", "_").replace("-", "_")


def sqlite_file(code):
    """The SQLite file an example opens by a relative name ("sqlite:mesh.db", "mesh.db"), or None."""
    m = docblocks.RELATIVE_SQLITE.search(code) or docblocks.QUOTED_SQLITE_PATH.search(code)
    return m.group(1) if m else None


def example_block(page, lang):
    """The page's first block of that language that runs on a store (on Redis where EXAMPLES
    says so): its example."""
    redis_only = EXAMPLES[(page, lang)].get("on") == "redis"
    return next(b for b in docblocks.blocks(page) if b.lang == lang and b.mode == "run" and
                (docblocks.DEFAULT_REDIS.search(b.code) or (not redis_only and sqlite_file(b.code))))


def planted(case, url):
    """The example's code with the failure planted, pointed at `url` (or at a store that cannot
    be reached: a Redis nobody listens on, an SQLite file in a directory that does not exist)."""
    page, lang, failure = case
    code = example_block(page, lang).code
    if failure == "store":
        name = sqlite_file(code)
        return code.replace(name, NO_DIR + name) if name else docblocks.with_redis(code, UNREACHABLE)
    old, new = EXAMPLES[(page, lang)][failure]
    assert code.count(old) == 1, f"{page}: its {lang} example no longer contains {old!r}: update EXAMPLES"
    return docblocks.with_redis(code.replace(old, new), url)


@pytest.fixture(scope="module")
def url(redis_server):
    return f"redis://{redis_server.host}:{redis_server.port}/{DB}"


@pytest.fixture(scope="module")
def work():
    path = docblocks.scratch_dir("docs-failing")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def compiled_ts(work, url):
    """Every planted TypeScript copy, compiled at once: {case id: .mjs path}."""
    ts = [c for c in CASES if c[1] == "ts"]
    status, out, files = docblocks.compile_ts({file_name(c): planted(c, url) for c in ts}, work)
    assert status == 0, out
    return {case_id(c): files[file_name(c)] for c in ts}


def command(case, code, work, compiled_ts):
    """How to run one planted copy: (argv, env)."""
    name = file_name(case)
    lang = case[1]
    if lang == "ts":
        return ["node", compiled_ts[case_id(case)]], None
    if lang == "python":
        src = os.path.join(work, name + ".py")
        with open(src, "w", encoding="utf-8") as f:
            f.write(code)
        return [sys.executable, src], docblocks.python_env()
    src, exe = os.path.join(work, name + ".c"), os.path.join(work, name)
    with open(src, "w", encoding="utf-8") as f:
        f.write(code)
    build = subprocess.run(docblocks.c_command(src, exe, True), capture_output=True, text=True, timeout=60)
    assert build.returncode == 0, build.stderr
    return [exe], None


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_planted_failure_makes_the_example_exit_non_zero(case, url, work, compiled_ts, redis_server):
    page, lang, failure = case
    redis_server.cli("-n", DB, "FLUSHDB")
    docblocks.empty_sqlite_dir()
    name = sqlite_file(example_block(page, lang).code)
    topic = EXAMPLES[(page, lang)]["topic"]
    if failure == "receiver" and name:
        # The directory row as liner_broker's SQLite store keeps it (the store adds its other tables).
        with sqlite3.connect(os.path.join(docblocks.SQLITE_DIR, name)) as db:
            db.execute("CREATE TABLE topic_addr (topic TEXT NOT NULL, addr TEXT NOT NULL, "
                       "client_name TEXT NOT NULL, PRIMARY KEY (topic, addr))")
            db.execute("INSERT INTO topic_addr VALUES (?, ?, 'gone')", (topic, DEAD_ADDRESS))
    elif failure == "receiver":
        redis_server.cli("-n", DB, "HSET", f"lnr_topic:{topic}:addr", DEAD_ADDRESS, "gone")
    argv, env = command(case, planted(case, url), work, compiled_ts)
    started = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=docblocks.ROOT, env=env)
    took = time.monotonic() - started
    assert r.returncode != 0, f"{case_id(case)}: exited 0 although it failed:\n{r.stdout}\n{r.stderr}"
    why = FAILURES[failure] or STORE_FAILURES["sqlite" if name else "redis"]
    assert why in r.stderr, f"{case_id(case)}: stderr does not say why:\n{r.stderr}"
    assert took < 15, f"{case_id(case)}: took {took:.1f} s to give up"


def test_the_planted_examples_succeed_unplanted(url, work, redis_server):
    """The planted runs fail because of what was planted: the same C and Python blocks, as they
    are, succeed here and print their documented output."""
    for page, lang in EXAMPLES:
        if lang == "ts":
            continue  # test_code_blocks.py runs them; compiling them again here costs seconds
        redis_server.cli("-n", DB, "FLUSHDB")
        docblocks.empty_sqlite_dir()
        block = example_block(page, lang)
        argv, env = command((page, lang, "none"), docblocks.with_redis(block.code, url), work, {})
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=docblocks.ROOT, env=env)
        assert r.returncode == 0, f"{block.id}:\n{r.stdout}\n{r.stderr}"
        assert block.checks_output and docblocks.output_diff(block, r.stdout, url) == "", block.id


def test_a_real_block_with_a_wrong_documented_output_fails(url, work, redis_server):
    block = example_block("README.md", "python")
    assert block.checks_output
    redis_server.cli("-n", DB, "FLUSHDB")
    docblocks.empty_sqlite_dir()
    argv, env = command(("README.md", "python", "none"), docblocks.with_redis(block.code, url), work, {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=docblocks.ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert docblocks.output_diff(block, r.stdout, url) == ""
    block.output.code = block.output.code.replace("b'hello'", "b'goodbye'")
    diff = docblocks.output_diff(block, r.stdout, url)
    assert "-boss -> jobs: b'goodbye'" in diff and "+boss -> jobs: b'hello'" in diff, diff


# ---- The comparison on synthetic pages -------------------------------------------------------

PAGE = """Some prose.

<!-- check: run -->
```python
print("hello from the block")
```

<!-- check: output -->
```text
{output}
```
"""


def documented(output):
    block = docblocks.blocks("synthetic.md", PAGE.format(output=output))[0]
    assert block.checks_output
    return block


def test_an_output_mismatch_fails_with_a_diff():
    block = documented("hello from the docs")
    diff = docblocks.output_diff(block, "hello from the block\n", "redis://127.0.0.1:5555/14")
    assert diff.splitlines()[-2:] == ["-hello from the docs", "+hello from the block"], diff
    assert "synthetic.md:9" in diff and "synthetic.md:4" in diff  # names the output and the block
    assert docblocks.output_diff(documented("hello from the block"), "hello from the block\n", "x") == ""


def test_only_ports_durations_rates_and_the_redis_url_may_differ():
    block = documented("listening on 127.0.0.1:41949 (redis://127.0.0.1:6379/0)\n"
                       "444,649 msg/s  42.4 MiB/s of payload\n"
                       "  20,000 messages of 100 B in 0.05 s (275 ms)")
    test_url = "redis://127.0.0.1:5555/14"
    same = ("listening on 127.0.0.1:33123 (redis://127.0.0.1:5555/14)\n"
            "9,876 msg/s  964.5 KiB/s of payload   \n"
            "  20,000 messages of 100 B in 2.03 s (1203 ms)\n\n")
    assert docblocks.output_diff(block, same, test_url) == ""
    for wrong in [same.replace("20,000 messages", "19,999 messages"),    # a count
                  same.replace("100 B", "10 B"),                         # a size
                  same.replace("listening on", "listening at"),          # words
                  same.replace("127.0.0.1:33123", "10.0.0.7:33123"),     # a host
                  same.replace("(redis://127.0.0.1:5555/14)", "(redis://127.0.0.1:5555/15)"),  # another Redis
                  same + "one line more\n",
                  "  " + same]:                                          # indentation
        assert docblocks.output_diff(block, wrong, test_url), wrong


def test_an_output_block_says_whether_it_is_compared():
    page = """<!-- check: run -->
```python
print("a")
```

```text
a
```

<!-- check: skip (illustration) -->
```sh
echo b
```

<!-- check: output -->
```text
b
```
"""
    blocks = docblocks.blocks("synthetic.md", page)
    assert blocks[0].output is blocks[1] and not blocks[0].checks_output
    problems = docblocks.output_marker_problems(blocks)
    assert len(problems) == 2, problems
    assert problems[0].startswith("synthetic.md:6: shows what synthetic.md:2 prints")
    assert problems[1].startswith("synthetic.md:16: <!-- check: output --> must mark")
