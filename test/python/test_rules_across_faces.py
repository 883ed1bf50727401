"""The rules on names and advertise addresses (native/core/names.hpp) give the same error code
and message in every face: the C API here through ctypes, the Python binding here, TypeScript and
the CLI in test/ts/rules_across_faces.test.ts. One table for all: test/shared/rules_table.json."""
import ctypes
import json
import os

import pytest

import liner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "test", "shared", "rules_table.json")) as f:
    CASES = json.load(f)["cases"]
CODES = {"INVALID_ARGUMENT": liner.ERR_INVALID_ARG}
IDS = [c["case"] for c in CASES]


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
