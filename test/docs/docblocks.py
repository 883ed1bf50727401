"""Code blocks of the documentation (README.md and docs/*.md), and how to run each.

A fenced block is checked according to its language and to an optional marker on the line
before it (an HTML comment, invisible on GitHub):

    <!-- check: run -->            run it (the default for ts, python and c blocks)
    <!-- check: compile -->        only compile / type-check it
    <!-- check: skip (reason) -->  leave it alone (the default for every other language)

`sh` blocks marked `run` are run with bash, with `npx liner` meaning this checkout's CLI. In every
block that runs, `redis://127.0.0.1:6379` (with any database number) is replaced by the test
Redis URL, so the documented default works against the test server. Blocks of one page run in
page order, on one database flushed before the page: a block may rely on what an earlier block
of its page left behind.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNNABLE = {"ts": "ts", "typescript": "ts", "python": "python", "py": "python", "c": "c",
            "sh": "sh", "bash": "sh", "shell": "sh"}
DEFAULT_MODE = {"ts": "run", "python": "run", "c": "run"}
MARKER = re.compile(r"<!--\s*check:\s*(run|compile|skip)\b[^>]*-->")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
DEFAULT_REDIS = re.compile(r"redis://127\.0\.0\.1:6379(?:/\d+)?")


class Block:
    def __init__(self, page, line, lang, mode, code):
        self.page = page          # path relative to the repository root
        self.line = line          # 1-based line of the opening fence
        self.lang = lang          # ts | python | c | sh | None (not runnable)
        self.mode = mode          # run | compile | skip
        self.code = code

    @property
    def id(self):
        return f"{self.page}:{self.line}"

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


def blocks(page):
    """Every fenced code block of a page, with its language and mode."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        lines = f.read().split("\n")
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
        mode = marker or DEFAULT_MODE.get(lang, "skip")
        # Unrunnable languages, and the generated reference (declarations quoted from
        # include/liner.h, which the build compiles).
        if lang is None or page.startswith(os.path.join("docs", "api") + os.sep):
            mode = "skip"
        out.append(Block(page, start + 1, lang, mode, "\n".join(body) + "\n"))
    return out


def with_redis(code, url):
    return DEFAULT_REDIS.sub(url, code)


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
