"""The mutation check's list (test/mutation/mutants.py) stays in step with the code.

The mutation run itself is slow and samples a window of the list each day, so a mutant whose
text the code no longer contains would only be noticed on the day its turn comes. This fast
check catches it at the commit that changes the code: every mutant's text occurs exactly once,
and every test it names exists.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "mutation"))
import mutate  # noqa: E402
from mutants import MUTANTS  # noqa: E402


@pytest.mark.parametrize("m", MUTANTS, ids=[m["id"] for m in MUTANTS])
def test_mutant_text_occurs_once(m):
    assert mutate.stale(m) is None, "%s: %s — update its find text" % (m["id"], mutate.stale(m))


def ctest_names():
    text = open(os.path.join(ROOT, "test", "core", "CMakeLists.txt"), encoding="utf-8").read()
    return text


@pytest.mark.parametrize("m", MUTANTS, ids=[m["id"] for m in MUTANTS])
def test_mutant_names_existing_tests(m):
    cmake = ctest_names()
    for kind, args in m["tests"]:
        for a in args:
            if kind == "ctest":
                assert a in cmake, "%s names ctest %s, which test/core/CMakeLists.txt does not define" % (m["id"], a)
            else:
                path = a.split("::")[0]
                assert os.path.isfile(os.path.join(ROOT, path)), "%s names %s, which does not exist" % (m["id"], path)
