"""The defaults, limits and codes the documentation states are the code's.

Values. A default or limit stated in README.md or docs/ is followed by a marker that names it:

    `maxSendQueueBytes` (per peer, default 8 MiB<!-- value: maxSendQueueBytes -->)

The test reads the quantity just before each marker ("8 MiB", "1 GiB − 21 bytes", "0",
"no limit") and compares it with the value the code defines (VALUES: the library's own getters,
read in a fresh process, or the one constant that defines a TypeScript default). A sentence or a
table cell that states a default size without a marker fails the test too: mark it, or mark it
`<!-- value: external -->` when the default is not liner's (Redis's, the kernel's).

Codes. The table of error codes in docs/errors-and-logging.md lists every code of include/liner.h
with its number, the Python constant of the same value and the TypeScript code; the status-event
table lists every status kind the same way.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from docblocks import ROOT, pages

MARKER = re.compile(r"<!--\s*value:\s*([\w.]+)\s*-->")
UNITS = {"bytes": 1, "byte": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
SIZE = r"(\d[\d,]*)\s*(GiB|MiB|KiB|bytes?|B)?"
QUANTITY = re.compile(SIZE + r"(?:\s*(?:−|-|minus(?: the)?)\s*(\d+)(?:[ -]bytes?)?)?\s*\)?$")
STATED_SIZE = re.compile(r"\b\d[\d,]*\s*(?:GiB|MiB|KiB)\b")


def library_defaults():
    """The limits of a fresh process (tests in this session may have changed this one's)."""
    code = ("import json, liner; liner.loadLib(); print(json.dumps({"
            "'maxMessageSize': liner.get_max_message_size(),"
            "'compressThreshold': liner.get_compress_threshold(),"
            "'maxSendQueueBytes': liner.get_max_send_queue_bytes(),"
            "'maxSendQueueMessages': liner.get_max_send_queue(),"
            "'storeWaitMs': liner.get_store_wait(),"
            "'leaseMs': liner.get_lease()}))")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=30, check=True).stdout
    return json.loads(out)


def constant(path, name):
    """The value of `const NAME = ...;` (TypeScript) or `constexpr size_t NAME = ...;` (C++) in
    `path`: the one definition of a default. Only integers, `*`, `<<` and size_t(...) allowed."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        m = re.search(r"^(?:const|constexpr size_t) %s = ([^;]+);" % name, f.read(), re.M)
    assert m, "%s no longer defines %s" % (path, name)
    expr = re.sub(r"size_t\((\d+)\)", r"\1", m.group(1))
    assert re.fullmatch(r"[\d\s*<()]+", expr), expr
    return eval(expr)  # noqa: S307 (digits and operators only, checked above)


@pytest.fixture(scope="module")
def values():
    v = library_defaults()
    v["maxInFlightBytes"] = constant("src/options.ts", "DEFAULT_IN_FLIGHT")
    v["deliveryBudgetBytes"] = constant("src/options.ts", "DEFAULT_BUDGET")
    v["receiveBatchBytes"] = constant("native/core/delivery.cpp", "kDefaultBatchBytes")
    v["waitForRedisMs"] = constant("src/options.ts", "DEFAULT_WAIT_FOR_REDIS_MS")
    return v


def text_of(page):
    """The page's prose and tables, without fenced code blocks, as (line number, line)."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, fenced = [], False
    for i, line in enumerate(lines, 1):
        if re.match(r"^\s*(```|~~~)", line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, line))
    return out


def paragraphs(page):
    """Prose paragraphs joined into one line each (a value may wrap), and table rows alone."""
    out, current, start = [], [], 0
    for n, line in text_of(page) + [(0, "")]:
        if not line.strip() or line.lstrip().startswith("|"):
            if current:
                out.append((start, " ".join(current)))
                current = []
            if line.strip():
                out.append((n, line))
            continue
        if not current:
            start = n
        current.append(line.strip())
    return out


def plain(text):
    return re.sub(r"[`*]", "", text)


def quantity_before(text):
    """The quantity that ends `text`, in bytes (or a count); None when there is none."""
    text = plain(text).rstrip()
    if re.search(r"no (count )?limit$", text):
        return 0
    m = QUANTITY.search(text)
    if not m:
        return None
    value = int(m.group(1).replace(",", "")) * UNITS.get(m.group(2) or "B", 1)
    return value - int(m.group(3) or 0)


def markers():
    for page in pages():
        for line_no, text in paragraphs(page):
            for m in MARKER.finditer(text):
                yield page, line_no, m.group(1), text[:m.start()]


def test_every_marked_value_is_the_codes(values):
    seen, wrong = set(), []
    for page, line_no, name, before in markers():
        if name == "external":
            continue
        assert name in values, "%s:%d: unknown value name %r (known: %s)" % (
            page, line_no, name, ", ".join(sorted(values)))
        stated = quantity_before(before)
        seen.add(name)
        if stated != values[name]:
            wrong.append("%s:%d: %s stated as %r (%s), the code says %d" % (
                page, line_no, name, stated, plain(before)[-40:], values[name]))
    assert not wrong, "\n".join(wrong)
    assert seen == set(values), "values no page states: %s" % sorted(set(values) - seen)


def test_every_stated_default_size_is_marked():
    unmarked = []
    for page in pages():
        header = None
        for line_no, text in paragraphs(page):
            if text.lstrip().startswith("|"):
                cells = [c.strip() for c in text.strip().strip("|").split("|")]
                if re.match(r"^\|[-: |]+\|$", text.strip()):
                    continue
                if header is None:
                    header = [c.lower() for c in cells]
                    continue
                column = header.index("default") if "default" in header else None
                checked = [cells[column]] if column is not None and column < len(cells) else []
                checked += [c for c in cells if re.search(r"\bdefault\b", c, re.I)]
                for cell in checked:
                    if STATED_SIZE.search(cell) and not MARKER.search(cell):
                        unmarked.append("%s:%d: %s" % (page, line_no, plain(cell)[:100]))
                continue
            header = None
            text = MARKER.sub(lambda m: "\x00%s\x00" % m.group(1), text)  # no ':' to split at
            for sentence in re.split(r"(?<=[.;:])\s+", text):
                if re.search(r"\bdefault", sentence, re.I) and STATED_SIZE.search(sentence) \
                        and "\x00" not in sentence:
                    unmarked.append("%s:%d: %s" % (page, line_no, plain(sentence)[:120]))
    assert not unmarked, "defaults stated without a <!-- value: NAME --> marker:\n" + "\n".join(unmarked)


def test_quantities_are_read_as_written():
    assert quantity_before("default 8 MiB") == 8 << 20
    assert quantity_before("1 GiB − 21 bytes") == (1 << 30) - 21
    assert quantity_before("default and maximum 1 GiB minus the 21-byte") == (1 << 30) - 21
    assert quantity_before("default 0") == 0
    assert quantity_before("| no limit") == 0
    assert quantity_before("(`deliveryBudgetBytes`, default 1,048,576") == 1 << 20
    assert quantity_before("nothing here") is None


# ---- codes ----------------------------------------------------------------------------------

def header_enum(prefix):
    """NAME -> value of the enum constants of include/liner.h that start with `prefix`."""
    with open(os.path.join(ROOT, "include", "liner.h"), encoding="utf-8") as f:
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"\b(%s\w+)\s*=\s*(\d+)" % prefix, f.read())}


def table_rows(page, first_header_cell):
    rows, inside = [], False
    for _, line in text_of(page):
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells and cells[0].startswith(first_header_cell):
            inside = True
            continue
        if not cells:
            inside = False
            continue
        if inside and not re.match(r"^[-: ]+$", cells[0]):
            rows.append([plain(c) for c in cells])
    return rows


def ts_code_of_number():
    """src/errors.ts's CODES array: the TypeScript code of each core number (index = value)."""
    with open(os.path.join(ROOT, "src", "errors.ts"), encoding="utf-8") as f:
        m = re.search(r"^const CODES[^=]*= \[(.*?)\];", f.read(), re.M | re.S)
    assert m, "src/errors.ts no longer has its CODES array"
    items = [i.strip().strip("'") for i in m.group(1).split(",") if i.strip()]
    return {n: (None if item == "undefined" else item) for n, item in enumerate(items)}


@pytest.mark.parametrize("prefix,first_cell,python_prefix", [
    ("LNR_ERR_", "C (`LNR_*`)", "ERR_"),
])
def test_the_error_code_table_lists_every_code(prefix, first_cell, python_prefix):
    import liner
    codes = header_enum(prefix)
    codes["LNR_OK"] = header_enum("LNR_OK").get("LNR_OK", 0)
    rows = table_rows("docs/errors-and-logging.md", first_cell)
    listed = {}
    for c_cell, py_cell, ts_cell, *_ in rows:
        m = re.match(r"(LNR_\w+) (\d+)", c_cell)
        if not m:
            continue  # a TypeScript-only row (CLOSED)
        listed[m.group(1)] = int(m.group(2))
        py_name = py_cell.strip()
        assert getattr(liner, py_name) == int(m.group(2)), (c_cell, py_cell)
        expected_ts = ts_code_of_number()[int(m.group(2))]
        assert ts_cell == (expected_ts or "—"), (c_cell, ts_cell, expected_ts)
    assert listed == codes


def test_the_status_table_lists_every_kind():
    import liner
    kinds = {k: v for k, v in header_enum("LNR_").items()
             if not k.startswith(("LNR_ERR_", "LNR_OK"))}
    rows = table_rows("docs/errors-and-logging.md", "C kind")
    listed = {}
    for c_cell, py_cell, *_ in rows:
        m = re.match(r"(LNR_\w+) (\d+)", c_cell)
        assert m, c_cell
        listed[m.group(1)] = int(m.group(2))
        assert getattr(liner, py_cell.strip()) == int(m.group(2)), (c_cell, py_cell)
    assert listed == kinds


# ---- the API reference in the code: python/liner docstrings and TypeScript doc comments -----

STATED_DEFAULT = re.compile(r"\bdefault\b[^\d.;]{0,25}?" + SIZE +
                            r"(?:\s*(?:−|-|minus(?: the)?)\s*(\d+)(?:[ -]bytes?)?)?", re.I)
# The symbol a doc comment belongs to -> the value it documents.
SYMBOL_VALUES = {
    "maxMessageSize": "maxMessageSize", "compressThreshold": "compressThreshold",
    "maxSendQueueBytes": "maxSendQueueBytes", "maxSendQueueMessages": "maxSendQueueMessages",
    "maxReceiveQueueBytes": "receiveBatchBytes", "maxInFlightBytes": "maxInFlightBytes",
    "deliveryBudgetBytes": "deliveryBudgetBytes",
    "set_max_message_size": "maxMessageSize", "get_max_message_size": "maxMessageSize",
    "set_compress_threshold": "compressThreshold", "get_compress_threshold": "compressThreshold",
    "set_max_send_queue_bytes": "maxSendQueueBytes", "get_max_send_queue_bytes": "maxSendQueueBytes",
    "set_max_send_queue": "maxSendQueueMessages", "get_max_send_queue": "maxSendQueueMessages",
    "set_store_wait": "storeWaitMs", "get_store_wait": "storeWaitMs", "waitForRedis": "waitForRedisMs",
    "set_lease": "leaseMs", "get_lease": "leaseMs", "leaseMs": "leaseMs",
}


def stated_defaults(text):
    """Every "default <quantity>" of a doc comment, in bytes (or a count)."""
    text = re.sub(r"\s+", " ", plain(text))
    return [int(m.group(1).replace(",", "")) * UNITS.get(m.group(2) or "B", 1) - int(m.group(3) or 0)
            for m in STATED_DEFAULT.finditer(text)
            if not re.match(r"[.:]\d", text[m.end(1):m.end(1) + 2])]  # an address, not a size


def ts_doc_comments():
    """(file, line, symbol, comment) for every /** ... */ of src/ followed by a declaration."""
    for name in sorted(os.listdir(os.path.join(ROOT, "src"))):
        if not name.endswith(".ts"):
            continue
        with open(os.path.join(ROOT, "src", name), encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"/\*\*(.*?)\*/\s*(?:readonly\s+)?(?:async\s+)?(\w+)", text, re.S):
            yield "src/" + name, text.count("\n", 0, m.start()) + 1, m.group(2), m.group(1)


def py_docstrings():
    """(file, line, symbol, docstring) for every function and class of the python/liner package."""
    import ast
    package = os.path.join(ROOT, "python", "liner")
    for name in sorted(os.listdir(package)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(package, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                yield "python/liner/" + name, node.lineno, node.name, ast.get_docstring(node)


def test_defaults_in_the_code_reference_are_the_codes(values):
    wrong = []
    for path, line, symbol, doc in list(ts_doc_comments()) + list(py_docstrings()):
        for stated in stated_defaults(doc):
            if symbol not in SYMBOL_VALUES:
                wrong.append("%s:%d: %s states a default size (%d) this test cannot check: add "
                             "the symbol to SYMBOL_VALUES" % (path, line, symbol, stated))
            elif stated != values[SYMBOL_VALUES[symbol]]:
                wrong.append("%s:%d: %s states default %d, the code says %d" % (
                    path, line, symbol, stated, values[SYMBOL_VALUES[symbol]]))
    assert not wrong, "\n".join(wrong)


def test_doc_comment_defaults_are_read_as_written():
    assert stated_defaults("Default and maximum: 1 GiB minus the 21-byte frame\n * header") == [(1 << 30) - 21]
    assert stated_defaults("(default 1 GiB - 21 = 1073741803)") == [(1 << 30) - 21]
    assert stated_defaults("At most, and by default, 1 MiB.") == [1 << 20]
    assert stated_defaults("Default 0: no count limit") == [0]
    assert stated_defaults("(default 8 MiB; at least 1)") == [8 << 20]
    assert stated_defaults("listen address, default `127.0.0.1:0`") == []
