"""docs/ARCHITECTURE.md names files: each of them exists, so the page cannot drift from the tree
without this failing. Thread names it lists are the ones the core starts."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "docs", "ARCHITECTURE.md")) as f:
    PAGE = f.read()


def test_every_path_it_names_exists():
    paths = set(re.findall(r"`((?:native|src|python|include|test|scripts|docs)/[^`\s]*)`", PAGE))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not os.path.exists(os.path.join(ROOT, p)))
    assert not missing, missing


def test_file_names_given_alone_exist_in_the_unit_they_describe():
    # "`client_send.cpp`" under native/core, "`delivery.ts`" under src, and so on.
    names = set(re.findall(r"`([a-z_]+\.(?:cpp|hpp|ts))`", PAGE))
    roots = ["native/core", "native/node", "native/capi", "src", "src/cli"]
    missing = sorted(n for n in names if not any(os.path.exists(os.path.join(ROOT, r, n)) for r in roots))
    assert not missing, missing


def test_threads_it_lists_are_the_ones_started():
    listed = set(re.findall(r"^\| `(lnr-[a-z]+)` \|", PAGE, re.M))
    started = set()
    for d, _, files in os.walk(os.path.join(ROOT, "native", "core")):
        for name in files:
            with open(os.path.join(d, name)) as f:
                started |= set(re.findall(r'"(lnr-[a-z]+)"', f.read()))
    assert listed == started
