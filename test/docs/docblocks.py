"""Code blocks of the documentation (README.md and docs/*.md), and how to run each.

A fenced block is checked according to its language and to an optional marker on the line
before it (an HTML comment, invisible on GitHub):

    <!-- check: run -->            run it (the default for ts, python and c blocks)
    <!-- check: compile -->        only compile / type-check it
    <!-- check: skip (reason) -->  leave it alone (the default for every other language)

`sh` blocks marked `run` are run with bash, with `npx liner-broker` meaning this checkout's CLI. In every
block that runs, `redis://127.0.0.1:6379` (with any database number) is replaced by the test
Redis URL, so the documented default works against the test server. Blocks of one page run in
page order, on one database flushed before the page: a block may rely on what an earlier block
of its page left behind. A block that runs must exit with status 0.

Documented output. A ```text (or ```output) block that follows a block that runs, with nothing
but blank lines and its marker in between, shows that block's output, and must say what the
check does with it:

    <!-- check: output -->         compare it with what the block prints on stdout
    <!-- check: skip (reason) -->  an illustration the block cannot reproduce (another mesh)

The comparison is line by line, after this normalisation of both sides and nothing more:
  - trailing whitespace of each line, and blank lines at the start and the end, are dropped;
  - the test Redis URL in the real output reads as the block's own `redis://127.0.0.1:6379/N`;
  - a loopback port (`127.0.0.1:41949`, `localhost:…`, `[::1]:…`) reads as `127.0.0.1:<port>`;
  - a duration (a number followed by `ms` or `s`) reads as `<time>`, and a rate (a number
    followed by `msg/s`, `B/s`, `KiB/s`, `MiB/s` or `GiB/s`) as `<rate>`.
stderr is not compared (the library may log there). A mismatch fails with a unified diff.
"""

import difflib
import os
import shlex
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNNABLE = {"ts": "ts", "typescript": "ts", "python": "python", "py": "python", "c": "c",
            "sh": "sh", "bash": "sh", "shell": "sh"}
DEFAULT_MODE = {"ts": "run", "python": "run", "c": "run"}
OUTPUT_INFO = {"text", "output"}
MARKER = re.compile(r"<!--\s*check:\s*(run|compile|skip|output)\b[^>]*-->")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
DEFAULT_REDIS = re.compile(r"redis://127\.0\.0\.1:6379(?:/\d+)?")
# An SQLite store given by a relative path ("sqlite:mesh.db", or "mesh.db" as the path argument
# of the C and Python constructors): the check puts the file in SQLITE_DIR, not in the checkout,
# and empties that directory before each page.
RELATIVE_SQLITE = re.compile(r"sqlite:([\w-]+\.db)\b")
QUOTED_SQLITE_PATH = re.compile(r'"([\w-]+\.db)"')
SQLITE_DIR = os.path.join(ROOT, "build", f"docs-sqlite-{os.getpid()}")

# The normalisation of documented and real output (see the header).
LOOPBACK_PORT = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):\d+\b")
RATE = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)? ?(?:msg/s|B/s|KiB/s|MiB/s|GiB/s)(?![\w/])")
DURATION = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)? ?(?:ms|s)(?![\w/])")


class Block:
    def __init__(self, page, line, lang, mode, code, info="", marker=None, end=None):
        self.page = page          # path relative to the repository root
        self.line = line          # 1-based line of the opening fence
        self.lang = lang          # ts | python | c | sh | None (not runnable)
        self.mode = mode          # run | compile | skip
        self.code = code
        self.info = info          # the fence's language word as written ("text", "ts", ...)
        self.marker = marker      # run | compile | skip | output | None: the marker before it
        self.end = end            # 1-based line of the closing fence
        self.output = None        # the ```text block showing what this block prints, if any

    @property
    def id(self):
        return f"{self.page}:{self.line}"

    @property
    def checks_output(self):
        """True when this block runs and its documented output is compared with the real one."""
        return self.mode == "run" and self.output is not None and self.output.marker == "output"

    def __repr__(self):
        return f"<{self.id} {self.lang} {self.mode}>"


def pages():
    """README.md and every docs/*.md (generated API pages included), sorted."""
    out = ["README.md"]
    for dirpath, _, files in os.walk(os.path.join(ROOT, "docs")):
        rel = os.path.relpath(dirpath, ROOT)
        if rel.startswith(os.path.join("docs", "api", "ts")):
            continue
        out += sorted(os.path.join(rel, f) for f in files if f.endswith(".md"))
    return out


def blocks(page, text=None):
    """Every fenced code block of a page, with its language, mode and documented output.

    `text` stands for the page's content (tests of this module pass a synthetic page)."""
    if text is None:
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        end = i
        i += 1
        lang = RUNNABLE.get(info.lower())
        marker = None
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0:
            mm = MARKER.search(lines[j])
            if mm:
                marker = mm.group(1)
        mode = marker if marker in ("run", "compile", "skip") else DEFAULT_MODE.get(lang, "skip")
        # Unrunnable languages, and the generated reference (declarations quoted from
        # include/liner.h, which the build compiles).
        if lang is None or page.startswith(os.path.join("docs", "api") + os.sep):
            mode = "skip"
        block = Block(page, start + 1, lang, mode, "\n".join(body) + "\n", info.lower(), marker, end + 1)
        # A text block right after a block that runs (blank lines and a marker in between)
        # shows that block's output.
        previous = out[-1] if out else None
        if (previous and previous.mode == "run" and block.info in OUTPUT_INFO
                and all(not line.strip() or MARKER.search(line) for line in lines[previous.end:start])):
            previous.output = block
        out.append(block)
    return out


def output_marker_problems(blocks):
    """What is wrong with the output markers of `blocks` (one page or several), as messages: a
    documented output that does not say whether it is compared, an output marker elsewhere."""
    outputs = {b.output.id: b for b in blocks if b.output is not None}
    problems = []
    for b in blocks:
        if b.id in outputs and b.marker not in ("output", "skip"):
            problems.append(f"{b.id}: shows what {outputs[b.id].id} prints: mark it <!-- check: output --> "
                            "or <!-- check: skip (why it differs) -->")
        elif b.marker == "output" and b.id not in outputs:
            problems.append(f"{b.id}: <!-- check: output --> must mark a ```text block right after a block that runs")
    return problems


def with_redis(code, url):
    """`code` pointed at the test's stores: the Redis at `url`, SQLite files in SQLITE_DIR."""
    code = RELATIVE_SQLITE.sub(lambda m: "sqlite:" + os.path.join(SQLITE_DIR, m.group(1)), code)
    code = QUOTED_SQLITE_PATH.sub(lambda m: '"%s"' % os.path.join(SQLITE_DIR, m.group(1)), code)
    return DEFAULT_REDIS.sub(url, code)


def empty_sqlite_dir():
    """A fresh SQLITE_DIR: the SQLite side of flushing the test Redis before a page."""
    shutil.rmtree(SQLITE_DIR, ignore_errors=True)
    os.makedirs(SQLITE_DIR)


def normalise(text):
    """One side of the output comparison, normalised as the header says (the Redis URL apart)."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    out = []
    for line in lines:
        line = LOOPBACK_PORT.sub("127.0.0.1:<port>", line)
        line = RATE.sub("<rate>", line)
        out.append(DURATION.sub("<time>", line))
    return out


def output_diff(block, stdout, url):
    """'' when what `block` printed on stdout matches its documented output, else a unified diff
    (documented lines '-', real ones '+'). `url` is the test Redis URL the block ran against."""
    documented = DEFAULT_REDIS.search(block.code)
    stdout = stdout.replace(url, documented.group(0) if documented else "redis://127.0.0.1:6379/0")
    want, got = normalise(block.output.code), normalise(stdout)
    if want == got:
        return ""
    return "\n".join(difflib.unified_diff(want, got, f"documented ({block.output.id})", f"printed by {block.id}",
                                          lineterm=""))


# ---- How the blocks run: test_code_blocks.py runs the pages, test_failing_blocks.py planted copies.

# The C library the C and Python blocks use: the directory of $LINER_LIB, else build/.
BUILD = os.path.dirname(os.path.abspath(os.environ["LINER_LIB"])) if os.environ.get("LINER_LIB") \
    else os.path.join(ROOT, "build")
TS_PRELUDE = "import { Client, LinerError, type Message } from 'liner-broker';\n"
TSCONFIG = """{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022", "ESNext.Disposable"], "module": "NodeNext",
    "moduleResolution": "NodeNext", "types": ["node"], "strict": true, "skipLibCheck": true,
    "rootDir": "src", "outDir": "out"
  },
  "include": ["src/*.mts"]
}
"""


def scratch_dir(tag):
    """A scratch directory inside the checkout (build/), so that `import 'liner-broker'` finds this package."""
    path = os.path.join(ROOT, "build", f"{tag}-{os.getpid()}")
    os.makedirs(os.path.join(path, "src"), exist_ok=True)
    return path


def compile_ts(sources, work):
    """Type-checks and compiles {name: TypeScript code} at once in `work`; returns tsc's exit status,
    its messages and {name: .mjs path}."""
    for name, code in sources.items():
        with open(os.path.join(work, "src", name + ".mts"), "w", encoding="utf-8") as f:
            f.write(code if "import " in code else TS_PRELUDE + code)
    with open(os.path.join(work, "tsconfig.json"), "w") as f:
        f.write(TSCONFIG)
    r = subprocess.run([os.path.join(ROOT, "node_modules", ".bin", "tsc"), "-p", work], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr, {name: os.path.join(work, "out", name + ".mjs") for name in sources}


def documented_cc_command():
    """The C build command docs/bindings.md shows against a checkout's build/ (its one `cc ` line
    with `-L build`; the others build against an installed prefix)."""
    with open(os.path.join(ROOT, "docs", "bindings.md"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip().startswith("cc ") and " -L build " in line]
    assert len(lines) == 1, lines
    return lines[0]


def c_command(src, exe, has_main, build=None):
    """Builds a C file the way docs/bindings.md shows (`app.c` -> `src`, `-o app` -> `exe`, `build`
    -> the library's directory, no shell), with -Wall -Werror: a program linked with
    the library when it has a main, else only compiled."""
    command = documented_cc_command()
    assert " app.c " in command and command.endswith("-o app"), command
    build = build or BUILD
    argv = []
    for word in shlex.split(command.replace("$PWD/build", build))[:-2]:  # without "-o app"
        if word == "app.c":
            argv += [src, "-Wall", "-Werror"]
        elif word == "include":
            argv.append(os.path.join(ROOT, "include"))
        elif word == "build":
            argv.append(build)
        else:
            argv.append(word)
    if not has_main:
        return [w for w in argv if not w.startswith(("-L", "-l", "-Wl,")) and w != build] + ["-c", "-o", exe + ".o"]
    return argv + ["-o", exe]


def python_env():
    """The environment of a Python block: the python/liner package on the path, the library of BUILD."""
    return dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"),
                LINER_LIB=os.path.join(BUILD, "libliner_broker.so"))


def sh_command(code):
    """bash running an `sh` block, `npx liner-broker` being this checkout's CLI."""
    cli = f"node {os.path.join(ROOT, 'dist', 'cli', 'main.js')}"
    env = {k: v for k, v in os.environ.items() if k not in ("LINER_REDIS_URL", "FORCE_COLOR")}
    return ["bash", "-euo", "pipefail", "-c", code.replace("npx liner-broker", cli)], env


def links(page):
    """(line, target) of every relative Markdown link of a page (no http(s), no mailto)."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    # Code is not prose: links inside code blocks and spans do not count.
    text = re.sub(r"```[\s\S]*?```", lambda m: "\n" * m.group(0).count("\n"), text)
    text = re.sub(r"`[^`\n]*`", "``", text)
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"[a-z]+:", target):
                out.append((n, target))
    return out


def anchors(page):
    """GitHub's anchors for the headings of a page."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"```[\s\S]*?```", "", text)
    seen = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.*)$", text, re.M):
        slug = heading.strip().lower()
        slug = re.sub(r"[^\w\- ]", "", slug)
        slug = slug.replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out
