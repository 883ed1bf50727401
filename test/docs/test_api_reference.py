"""The generated API references are current: docs/api/c.md is what docs/api/gen_c_api.py makes of
include/liner.h today, and TypeDoc documents the TypeScript API without a broken link or a
reference to something that is not exported."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_c_reference_matches_the_header():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "docs", "api", "gen_c_api.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_c_reference_documents_every_function():
    with open(os.path.join(ROOT, "include", "liner.h"), encoding="utf-8") as f:
        header = f.read()
    with open(os.path.join(ROOT, "docs", "api", "c.md"), encoding="utf-8") as f:
        reference = f.read()
    functions = set(re.findall(r"LNR_API\s+[\w\s\*]+?\b(lnr_\w+)\s*\(", header))
    assert len(functions) > 30
    missing = sorted(f for f in functions if f"`{f}`" not in reference)
    assert not missing, missing


def test_typedoc_accepts_the_typescript_api():
    typedoc = os.path.join(ROOT, "node_modules", ".bin", "typedoc")
    assert os.path.exists(typedoc), "typedoc is not installed (a devDependency): run `npm install`"
    r = subprocess.run([typedoc, "--options", os.path.join(ROOT, "docs", "typedoc.json"), "--emit", "none",
                        "--treatWarningsAsErrors"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_python_api_documents_every_public_name():
    """The Python reference is the docstrings of the python/liner package (`pydoc liner`):
    every public function, class and method has one, and pydoc renders the package."""
    import inspect
    import pydoc
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import liner
    names = getattr(liner, "__all__", None) or [n for n in dir(liner) if not n.startswith("_")]
    undocumented = []
    for name in names:
        obj = getattr(liner, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if not inspect.getdoc(obj):
                undocumented.append(name)
            if inspect.isclass(obj) and obj.__module__.split(".")[0] == liner.__name__:
                for member, value in vars(obj).items():
                    if not member.startswith("_") and callable(value) and not inspect.getdoc(value):
                        undocumented.append("%s.%s" % (name, member))
    assert not undocumented, undocumented
    assert "class Client" in pydoc.render_doc(liner, renderer=pydoc.plaintext)
