"""The stats record is defined once (native/core/client_stats.hpp, LINER_CLIENT_STATS) and every
face follows it: the C struct (also checked at compile time), the Python binding, the addon's
TypeScript types. A counter added to the list and forgotten in one face fails here."""
import ctypes
import os
import re
import types

import liner
from liner_testkit import stats_record

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def block(text, start):
    """The text from `start` to its closing brace at the start of a line."""
    i = text.index(start)
    return text[i:text.index("\n}", i)]


C_NAMES = [c for c, _, _ in stats_record()]
JS_NAMES = [js for _, js, _ in stats_record()]


def test_the_record_is_read_from_the_header():
    assert len(C_NAMES) >= 12 and len(set(C_NAMES)) == len(C_NAMES)
    assert C_NAMES[0] == "messages_sent" and "receive_queue_bytes" in C_NAMES


def test_c_struct_has_the_fields_in_order():
    struct = block(read("include", "liner.h"), "typedef struct lnr_stats_t {")
    fields = re.findall(r"unsigned long long (\w+);", struct)
    assert fields == C_NAMES


def test_python_binding_returns_every_field(make_client):
    c = make_client("stats_record", "stats_record_topic")
    assert list(c.stats()) == C_NAMES


def test_python_ctypes_mirror_matches_the_c_struct():
    modules = [liner] + [m for m in vars(liner).values()
                         if isinstance(m, types.ModuleType) and m.__name__.startswith("liner.")]
    structs = [v for m in modules for v in vars(m).values()
               if isinstance(v, type) and issubclass(v, ctypes.Structure) and v is not ctypes.Structure]
    mirrors = {s for s in structs if [f for f, _ in s._fields_][:1] == ["size"]}
    assert mirrors, "no ctypes mirror of lnr_stats_t in the liner package"
    for s in mirrors:
        assert [f for f, _ in s._fields_[1:]] == C_NAMES


def test_python_docstring_names_every_field():
    doc = liner.Client.stats.__doc__
    missing = [c for c in C_NAMES if "``%s``" % c not in doc]
    assert not missing, missing


def test_typescript_types_follow_the_record():
    stats_ts = read("src", "stats.ts")
    client_stats = block(stats_ts, "export interface ClientStats {")
    documented = re.findall(r"\*/\n  (\w+): number;", client_stats)
    assert [n for n in documented if not n.startswith("js")] == JS_NAMES
    no_core = block(stats_ts, "export const NO_CORE_STATS = {")
    assert re.findall(r"^  (\w+): 0,", no_core, re.M) == JS_NAMES
    # The addon's record is built from these types, not spelled out again.
    assert "NativeStats = Partial<CoreStats> & Omit<ClientStats, keyof CoreStats>;" in read("src", "native.ts")
