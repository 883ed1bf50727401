"""Every claim of the status tables in docs/reliability.md and docs/security.md names the test
behind it, and that test exists.

A table with a "Test" column: each row's cell names tests in backticks:
    `test/fault/test_x.py`                      a test file (or a check: `scripts/fuzz.sh`)
    `test/fault/test_x.py::test_name[param]`    one test function of it
    `::test_name`                               a test of the file named last in the table
    `Suite.Name`                                a GoogleTest test of test/core/*.cpp
or says `same …` (the row above's tests), `not covered by a test here`, or `-` (a row that
states what is NOT prevented). Renaming or deleting a named test fails this check.
"""
import glob
import os
import re

import pytest

from docblocks import ROOT

PAGES = ["docs/reliability.md", "docs/security.md"]
NO_TEST = re.compile(r"^(not covered by a test here|-|—)$")


def status_rows(page):
    """(line, test cell) of every row of the page's tables that have a "Test" column."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        lines = f.read().split("\n")
    header, out = None, []
    for n, line in enumerate(lines, 1):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if re.match(r"^[-: ]+$", cells[0]) or "Test" not in header:
            continue
        column = header.index("Test")
        out.append((n, cells[column] if column < len(cells) else ""))
    return out


def gtest_names():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "test", "core", "*.cpp")):
        with open(path, encoding="utf-8") as f:
            names.update("%s.%s" % m for m in re.findall(r"\bTEST(?:_F|_P)?\(\s*(\w+)\s*,\s*(\w+)\s*\)", f.read()))
    return names


def defines(path, function):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.search(r"^\s*def %s\(" % re.escape(function), f.read(), re.M) is not None


def problems_of(page, rows, gtests):
    problems, last_file = [], None
    for n, cell in rows:
        where = "%s:%d" % (page, n)
        if NO_TEST.match(cell) or cell.startswith("same"):
            continue
        refs = re.findall(r"`([^`]+)`", cell)
        if not refs:
            problems.append("%s: no test named (%r)" % (where, cell[:60]))
        for ref in refs:
            path, _, function = ref.partition("::")
            function = re.sub(r"\[.*\]$", "", function)
            if path.startswith(("test/", "scripts/")):
                last_file = path
                if not os.path.isfile(os.path.join(ROOT, path)):
                    problems.append("%s: %s does not exist" % (where, path))
                    continue
            elif not path and function:
                if last_file is None:
                    problems.append("%s: %s names no file before it" % (where, ref))
                    continue
                path = last_file
            elif re.fullmatch(r"\w+\.\w+", ref):
                if ref not in gtests:
                    problems.append("%s: no GoogleTest test %s in test/core" % (where, ref))
                continue
            else:
                problems.append("%s: %r is not a test reference" % (where, ref))
                continue
            if function and not defines(path, function):
                problems.append("%s: %s defines no %s" % (where, path, function))
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_every_status_claim_names_an_existing_test(page):
    rows = status_rows(page)
    assert rows, "%s has no table with a Test column" % page
    problems = problems_of(page, rows, gtest_names())
    assert not problems, "\n".join(problems)


def test_a_renamed_test_is_caught():
    rows = [(1, "`test/fault/test_redis_restart.py::test_no_such_test`"),
            (2, "`::test_redis_restart_during_traffic`; `FrameCodec.NoSuchTest`"),
            (3, "`test/python/test_gone.py`"), (4, "a test somewhere")]
    problems = problems_of("page.md", rows, gtest_names())
    assert len(problems) == 4, problems
    assert any("test_no_such_test" in p for p in problems)
    assert any("FrameCodec.NoSuchTest" in p for p in problems)
    assert any("test_gone.py" in p for p in problems)
    assert any("no test named" in p for p in problems)
