"""The rules on names and advertise addresses (native/core/names.hpp) give the same error code
and message in every face: the C API here through ctypes, the Python binding here, TypeScript and
the CLI in test/ts/rules_across_faces.test.ts. One table for all: test/shared/rules_table.json.

So do the ranges of the process-wide limits (native/core/limits.cpp): test/shared/limits_table.json.
Their setters have no handle to record an error on: C returns FALSE and logs the message, Python
returns False and the library logs it."""
import ctypes
import json
import os

import pytest

import liner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "test", "shared", "rules_table.json")) as f:
    CASES = json.load(f)["cases"]
with open(os.path.join(ROOT, "test", "shared", "limits_table.json")) as f:
    LIMITS_TABLE = json.load(f)
LIMIT_CASES = LIMITS_TABLE["cases"]
CODES = {"INVALID_ARGUMENT": liner.ERR_INVALID_ARG}
IDS = [c["case"] for c in CASES]
LIMIT_IDS = [c["case"] for c in LIMIT_CASES]


@pytest.fixture(scope="module")
def c_api():
    lib = ctypes.CDLL(os.environ.get("LINER_LIB") or os.path.join(ROOT, "build", "libliner_broker.so"))
    lib.lnr_new_client_redis.restype = ctypes.c_void_p
    lib.lnr_new_client_redis.argtypes = [ctypes.c_char_p] * 4
    lib.lnr_last_create_error.restype = ctypes.c_char_p
    lib.lnr_last_error_message.restype = ctypes.c_char_p
    lib.lnr_last_error_message.argtypes = [ctypes.c_void_p]
    lib.lnr_last_error_code.argtypes = [ctypes.c_void_p]
    for fn in (lib.lnr_subscribe, lib.lnr_set_advertise_addr):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.lnr_delete_client.argtypes = [ctypes.c_void_p]
    return lib


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_c_api(case, c_api, redis):
    lib, url = c_api, redis.url.encode()
    if case["call"] == "create":
        h = lib.lnr_new_client_redis(case["name"].encode(), case["topic"].encode(), b"127.0.0.1:0", url)
        assert not h
        assert (lib.lnr_last_create_error_code(), lib.lnr_last_create_error().decode()) == \
            (CODES[case["code"]], case["message"])
        return
    h = lib.lnr_new_client_redis(b"rules_c", b"rules_c_topic", b"127.0.0.1:0", url)
    assert h
    try:
        if case["call"] == "subscribe":
            ok = lib.lnr_subscribe(h, case["topic"].encode())
        else:
            ok = lib.lnr_set_advertise_addr(h, case["addr"].encode())
        assert not ok
        assert (lib.lnr_last_error_code(h), lib.lnr_last_error_message(h).decode()) == \
            (CODES[case["code"]], case["message"])
    finally:
        lib.lnr_delete_client(h)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python(case, make_client, redis):
    if case["call"] == "create":
        with pytest.raises(liner.LinerError) as e:
            liner.Client(case["name"], case["topic"], "127.0.0.1:0", redis.url)
        assert (e.value.code, str(e.value.message)) == (CODES[case["code"]], case["message"])
        return
    c = make_client("rules_py", "rules_py_topic")
    if case["call"] == "subscribe":
        assert not c.subscribe(case["topic"])
    else:
        assert not c.set_advertise_addr(case["addr"])
    assert (c.last_error_code(), c.last_error_message()) == (CODES[case["code"]], case["message"])


C_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


@pytest.mark.parametrize("case", LIMIT_CASES, ids=LIMIT_IDS)
def test_c_api_limit(case, c_api):
    setter = LIMITS_TABLE["limits"][case["limit"]]["c"]
    lib, lines = c_api, []
    cb = C_LOG_CB(lambda line, _: lines.append(line.decode()))
    getter = getattr(lib, setter.replace("lnr_set_", "lnr_get_"))
    getter.restype = ctypes.c_size_t
    getattr(lib, setter).argtypes = [ctypes.c_size_t]
    lib.lnr_set_log_cb.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    before = getter()
    assert lib.lnr_set_log_cb(ctypes.cast(cb, ctypes.c_void_p), None)
    try:
        assert getattr(lib, setter)(case["value"]) == 0
    finally:
        lib.lnr_set_log_cb(None, None)
    assert lines == ["liner: %s: %s" % (setter, case["message"])]
    assert getter() == before


@pytest.mark.parametrize("case", LIMIT_CASES, ids=LIMIT_IDS)
def test_python_limit(case):
    name = LIMITS_TABLE["limits"][case["limit"]]["python"]
    getter = getattr(liner, name.replace("set_", "get_", 1))
    lines = []
    before = getter()
    liner.set_log_callback(lines.append)
    try:
        assert getattr(liner, name)(case["value"]) is False
    finally:
        liner.set_log_callback(None)
    assert lines == ["liner: lnr_%s: %s" % (name, case["message"])]
    assert getter() == before
