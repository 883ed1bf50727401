"""The bad-input table of the python/liner package: every module function and every Client
method with None, empty, invalid UTF-8, lone surrogates, embedded NUL, wrong types, huge sizes,
calls after close, double close, and close/stop from inside the callbacks. Each row pins the documented
outcome; none may crash the interpreter.

Documented outcomes (python/liner docstrings): a bad name or payload makes a method return False
(None for list_addresses/pending_by_peer/stats, -1 for pending_count) with
last_error_code() == ERR_INVALID_ARG; the constructor raises LinerError(ERR_INVALID_ARG); a
value of the wrong Python type raises TypeError; after close every method returns its failure
value and last_error_code() == ERR_INVALID_ARG."""
import array
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import liner

from faultkit import ROOT, wait_until

# Names that are not a usable non-empty UTF-8 string. A NUL would end the C string early and
# silently turn "a\0b" into "a": it must be refused like any other invalid name.
BAD_NAMES = [
    (None, "None"), ("", "empty_str"), (b"", "empty_bytes"), (b"\xff\xfe", "invalid_utf8"),
    (b"\xc0\xaf", "overlong_utf8"), ("\udcff", "lone_surrogate"), ("a\0b", "str_with_nul"),
    (b"a\0b", "bytes_with_nul"), ("\0", "only_nul"),
]
WRONG_TYPES = [(123, "int"), (1.5, "float"), (["t"], "list"), (object(), "object"),
               (bytearray(b"t"), "bytearray")]
EMPTY_DATA = [("", "empty_str"), (b"", "empty_bytes"), (bytearray(), "empty_bytearray"),
              (memoryview(b""), "empty_memoryview")]
WRONG_DATA = [(None, "None"), (123, "int"), (1.5, "float"), (["x"], "list"),
              (array.array("i", [1, 2]), "array"), (object(), "object")]
GOOD_DATA = [("a\0b", b"a\0b", "str_with_nul"), (b"\0\0\0", b"\0\0\0", "nul_bytes"),
             (bytearray(b"ba"), b"ba", "bytearray"), (memoryview(b"abcdef")[::2], b"ace", "strided_view"),
             (memoryview(bytearray(b"\x01\x00\x00\x00")).cast("I"), b"\x01\x00\x00\x00", "int_view"),
             ("\u00e9", "\u00e9".encode(), "non_ascii_str")]

# Every method taking a topic name: (call, failure value).
TOPIC_METHODS = {
    "send_to": (lambda c, t: c.send_to(t, b"x"), False),
    "send_all": (lambda c, t: c.send_all(t, b"x"), False),
    "send_to_many": (lambda c, t: c.send_to_many(t, [b"x"]), 0),
    "subscribe": (lambda c, t: c.subscribe(t), False),
    "unsubscribe": (lambda c, t: c.unsubscribe(t), False),
    "refresh_address_topic": (lambda c, t: c.refresh_address_topic(t), False),
    "list_addresses": (lambda c, t: c.list_addresses(t), None),
}

# Every public Client method, called on a closed client: (call, failure value).
AFTER_CLOSE = {
    "run": (lambda c: c.run(lambda *a: None), False),
    "stop": (lambda c: c.stop(), False),
    "is_running": (lambda c: c.is_running(), False),
    "close": (lambda c: c.close(), False),
    "send_to": (lambda c: c.send_to("x", b"d"), False),
    "send_all": (lambda c: c.send_all("x", b"d"), False),
    "send_to_many": (lambda c: c.send_to_many("x", [b"d"]), 0),
    "subscribe": (lambda c: c.subscribe("x"), False),
    "unsubscribe": (lambda c: c.unsubscribe("x"), False),
    "refresh_address_topic": (lambda c: c.refresh_address_topic("x"), False),
    "clear_stored_messages": (lambda c: c.clear_stored_messages(), False),
    "clear_addresses_of_topic": (lambda c: c.clear_addresses_of_topic(), False),
    "set_status_callback": (lambda c: c.set_status_callback(lambda *a: None), False),
    "set_advertise_addr": (lambda c: c.set_advertise_addr("127.0.0.1:0"), False),
    "set_handover": (lambda c: c.set_handover(False), False),
    "handover": (lambda c: c.handover(), None),
    "list_addresses": (lambda c: c.list_addresses("x"), None),
    "pending_count": (lambda c: c.pending_count(), -1),
    "pending_by_peer": (lambda c: c.pending_by_peer(), None),
    "stats": (lambda c: c.stats(), None),
    "bound_listen_addr": (lambda c: c.bound_listen_addr(), None),
    "advertise_addr": (lambda c: c.advertise_addr(), None),
    "published_addr": (lambda c: c.published_addr(), None),
}
# Getters: None means "unset" too, they refuse nothing and leave the last error alone (as the C
# getters do).
GETTERS = {"bound_listen_addr", "advertise_addr", "published_addr", "handover"}
# Methods that only report state, covered by the rows above and below.
REPORTERS = {"last_error_code", "last_error_message", "unique_name", "new_sqlite", "new_postgres"}

LIMITS = ["max_message_size", "compress_threshold", "max_send_queue", "max_send_queue_bytes", "store_wait", "lease"]


def ids(rows):
    return [r[-1] for r in rows]


@pytest.fixture
def made(redis):
    clients = []

    def make(unique, topic, run=True, callback=None):
        c = liner.Client(unique, topic, "127.0.0.1:0", redis.url)
        clients.append(c)
        if run:
            assert c.run(callback or (lambda *a: None))
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def pair(redis_server):
    """Two running clients shared by the table rows that change nothing: (client, peer). The
    peer serves "tbm_peer_topic" and is subscribed to "a", so that a name truncated at a NUL
    ("a\0b" -> "a") would find someone."""
    peer = liner.Client("tbm_peer", "tbm_peer_topic", "127.0.0.1:0", redis_server.url)
    client = liner.Client("tbm_u", "tbm_t", "127.0.0.1:0", redis_server.url)
    try:
        assert peer.subscribe("a")
        assert peer.run(lambda *a: None) and client.run(lambda *a: None)
        yield client, peer
    finally:
        client.close()
        peer.close()


@pytest.fixture
def restore_limits():
    saved = {name: getattr(liner, "get_" + name)() for name in LIMITS}
    yield
    for name, value in saved.items():
        getattr(liner, "set_" + name)(value)


def test_the_table_covers_every_public_method_and_function():
    methods = {m for m in dir(liner.Client) if not m.startswith("_")}
    covered = set(TOPIC_METHODS) | set(AFTER_CLOSE) | REPORTERS
    assert methods - covered == set(), "add rows for %s" % sorted(methods - covered)
    functions = {f for f in liner.__all__ if callable(getattr(liner, f)) and f[0].islower()}
    covered_functions = {"load_lib", "loadLib", "version", "set_log_callback"} | \
        {p + n for p in ("set_", "get_") for n in LIMITS}
    assert functions - covered_functions == set(), sorted(functions - covered_functions)


# ---- construction --------------------------------------------------------------------------

@pytest.mark.parametrize("position", range(4), ids=["uniqName", "topic", "localhost", "redisPath"])
@pytest.mark.parametrize("bad", [b for b, _ in BAD_NAMES], ids=ids(BAD_NAMES))
def test_constructor_bad_name(redis, position, bad):
    args = ["tb_u", "tb_t", "127.0.0.1:0", redis.url]
    args[position] = bad
    with pytest.raises(liner.LinerError) as info:
        liner.Client(*args).close()
    assert info.value.code == liner.ERR_INVALID_ARG and info.value.message


@pytest.mark.parametrize("position", range(4), ids=["uniqName", "topic", "localhost", "redisPath"])
@pytest.mark.parametrize("wrong", [w for w, _ in WRONG_TYPES], ids=ids(WRONG_TYPES))
def test_constructor_wrong_type(redis, position, wrong):
    args = ["tb_u", "tb_t", "127.0.0.1:0", redis.url]
    args[position] = wrong
    with pytest.raises(TypeError):
        liner.Client(*args).close()


def test_postgres_unreachable_is_a_store_error_without_the_password():
    with pytest.raises(liner.LinerError) as e:
        liner.Client.new_postgres("tb_u", "tb_t", "127.0.0.1:0", "postgres://u:Pw-SECRET@127.0.0.1:1/db")
    assert e.value.code == liner.ERR_STORE
    assert "Pw-SECRET" not in e.value.message


@pytest.mark.parametrize("receivers", ["not-json", "{}", '[{"topic": "a"}]', "[1]"])
def test_sqlite_bad_receivers_json(tmp_path, receivers):
    with pytest.raises(liner.LinerError) as e:
        liner.Client.new_sqlite("tb_u", "tb_t", "127.0.0.1:0", str(tmp_path / "x.db"), receivers)
    assert e.value.code == liner.ERR_INVALID_ARG


# ---- names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(TOPIC_METHODS))
@pytest.mark.parametrize("bad", [b for b, _ in BAD_NAMES], ids=ids(BAD_NAMES))
def test_bad_topic(pair, method, bad):
    c = pair[0]
    call, failure = TOPIC_METHODS[method]
    assert call(c, bad) == failure
    assert c.last_error_code() == liner.ERR_INVALID_ARG, c.last_error_message()
    assert c.last_error_message()


@pytest.mark.parametrize("method", sorted(TOPIC_METHODS))
@pytest.mark.parametrize("wrong", [w for w, _ in WRONG_TYPES], ids=ids(WRONG_TYPES))
def test_wrong_topic_type(pair, method, wrong):
    c = pair[0]
    with pytest.raises(TypeError):
        TOPIC_METHODS[method][0](c, wrong)


@pytest.mark.parametrize("bad", [b for b, _ in BAD_NAMES if b not in (None, "", b"")] +
                         ["not-an-address", "localhost:5000", "127.0.0.1", "127.0.0.1:65536"],
                         ids=[i for b, i in BAD_NAMES if b not in (None, "", b"")] +
                         ["words", "host_name", "no_port", "port_65536"])
def test_bad_advertise_addr(made, bad):
    c = made("tb_u", "tb_t", run=False)
    assert c.set_advertise_addr(bad) is False
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert c.advertise_addr() is None
    # None, "" and b"" clear it.
    assert c.set_advertise_addr(None) is True and c.set_advertise_addr("") is True
    assert c.set_advertise_addr(b"") is True


# ---- payloads ------------------------------------------------------------------------------

# send_to_many with the payload second in a batch of three: the whole batch is refused.
SENDS = {
    "send_to": (lambda c, t, d: c.send_to(t, d), False),
    "send_all": (lambda c, t, d: c.send_all(t, d), False),
    "send_to_many": (lambda c, t, d: c.send_to_many(t, [b"a", d, b"c"]), 0),
}


@pytest.mark.parametrize("method", sorted(SENDS))
@pytest.mark.parametrize("empty", [e for e, _ in EMPTY_DATA], ids=ids(EMPTY_DATA))
def test_empty_payload(pair, method, empty):
    c = pair[0]
    send, failure = SENDS[method]
    assert send(c, "tbm_peer_topic", empty) is failure
    assert c.last_error_code() == liner.ERR_INVALID_ARG


@pytest.mark.parametrize("method", sorted(SENDS))
@pytest.mark.parametrize("wrong", [w for w, _ in WRONG_DATA], ids=ids(WRONG_DATA))
def test_wrong_payload_type(pair, method, wrong):
    with pytest.raises(TypeError):
        SENDS[method][0](pair[0], "tbm_peer_topic", wrong)


def test_unusual_but_valid_payloads_arrive_intact(made):
    got = []
    made("tb_peer", "tb_peer_topic", callback=lambda to, f, d: got.append(d))
    c = made("tb_u", "tb_t")
    for data, _, name in GOOD_DATA:
        assert c.send_to("tb_peer_topic", data), name
    assert wait_until(lambda: len(got) == len(GOOD_DATA), 5)
    assert got == [wire for _, wire, _ in GOOD_DATA]


def test_payload_over_the_limit_is_refused(made, restore_limits):
    made("tb_peer", "tb_peer_topic")
    c = made("tb_u", "tb_t")
    assert liner.set_max_message_size(16)
    assert c.send_to("tb_peer_topic", b"x" * 17) is False
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert c.send_all("tb_peer_topic", bytearray(17)) is False
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert c.send_to_many("tb_peer_topic", [b"x" * 16, b"x" * 17]) == 0
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert c.send_to("tb_peer_topic", b"x" * 16) is True


# ---- module functions ----------------------------------------------------------------------

@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("value", [-1, 2**64, 2**64 + 5, 2**200], ids=["minus_1", "2^64", "2^64+5", "2^200"])
def test_limit_out_of_range_is_refused_and_changes_nothing(restore_limits, name, value):
    before = getattr(liner, "get_" + name)()
    assert getattr(liner, "set_" + name)(value) is False
    assert getattr(liner, "get_" + name)() == before


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("wrong", [1.5, "5", None, True, b"5"], ids=["float", "str", "None", "bool", "bytes"])
def test_limit_wrong_type(restore_limits, name, wrong):
    with pytest.raises(TypeError):
        getattr(liner, "set_" + name)(wrong)


@pytest.mark.parametrize("name", ["max_message_size", "compress_threshold", "max_send_queue_bytes"])
def test_limit_zero_is_refused(restore_limits, name):
    before = getattr(liner, "get_" + name)()
    assert getattr(liner, "set_" + name)(0) is False
    assert getattr(liner, "get_" + name)() == before


def test_lease_outside_3_s_to_an_hour_is_refused(restore_limits):
    for bad in (0, 2999, 3_600_001):
        assert liner.set_lease(bad) is False and liner.get_lease() == 7000
    assert liner.set_lease(3000) is True and liner.set_lease(3_600_000) is True


def test_store_wait_above_an_hour_is_refused(restore_limits):
    assert liner.set_store_wait(3_600_001) is False
    assert liner.set_store_wait(3_600_000) is True and liner.get_store_wait() == 3_600_000


def test_max_message_size_above_the_frame_bound_is_refused(restore_limits):
    assert liner.set_max_message_size(2**30) is False
    assert liner.set_max_message_size(2**30 - 21) is True


def test_callback_arguments_must_be_callable(made):
    c = made("tb_u", "tb_t", run=False)
    for wrong in (None, 5, "f"):
        with pytest.raises(TypeError):
            c.run(wrong)
    for wrong in (5, "f"):
        with pytest.raises(TypeError):
            c.set_status_callback(wrong)
        with pytest.raises(TypeError):
            liner.set_log_callback(wrong)
    assert c.set_status_callback(None) is True
    assert liner.set_log_callback(None) is True
    assert not c.is_running()


def test_load_lib_with_a_bad_path_keeps_the_loaded_library():
    with pytest.raises(liner.LinerError) as info:
        liner.loadLib("/nonexistent/libliner_broker.so")
    assert info.value.code == liner.ERR_STARTUP
    with pytest.raises(TypeError):
        liner.loadLib(123)
    assert liner.version()


# ---- after close, double close, concurrent close -------------------------------------------

@pytest.mark.parametrize("method", sorted(AFTER_CLOSE))
def test_every_method_after_close(made, method):
    c = made("tb_u", "tb_t")
    assert c.close() is True
    call, failure = AFTER_CLOSE[method]
    assert call(c) == failure
    if method not in GETTERS:
        assert c.last_error_code() == liner.ERR_INVALID_ARG
        assert c.last_error_message()


def test_double_close_and_context_manager_after_close(made):
    c = made("tb_u", "tb_t")
    with c:
        assert c.close() is True
    assert c.close() is False
    del c


def test_close_while_another_thread_sends(made):
    made("tb_peer", "tb_peer_topic")
    c = made("tb_u", "tb_t")
    results, stop = [], threading.Event()

    def pump():
        while not stop.is_set():
            results.append(c.send_to("tb_peer_topic", b"x"))
    threads = [threading.Thread(target=pump) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert c.close() is True
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert results and results[-1] is False


# ---- from inside the callbacks -------------------------------------------------------------

def test_close_stop_and_run_from_inside_the_receive_callback_are_refused(made):
    outcome = {}
    done = threading.Event()
    holder = {}

    def on_message(to, from_, data):
        c = holder["c"]
        if done.is_set():
            return
        for name, call in (("close", c.close), ("stop", c.stop),
                           ("run", lambda: c.run(lambda *a: None))):
            outcome[name] = (call(), c.last_error_code())
        outcome["send_to"] = (c.send_to("tb_peer_topic", b"reply"), c.last_error_code())
        done.set()

    peer_got = []
    peer = made("tb_peer", "tb_peer_topic", callback=lambda to, f, d: peer_got.append(d))
    holder["c"] = made("tb_u", "tb_t", callback=on_message)
    assert peer.send_to("tb_t", b"go")
    assert done.wait(10)
    assert outcome["close"] == (False, liner.ERR_INVALID_ARG)
    assert outcome["stop"] == (False, liner.ERR_INVALID_ARG)
    assert outcome["run"] == (False, liner.ERR_INVALID_ARG)
    assert outcome["send_to"] == (True, liner.OK)
    assert wait_until(lambda: peer_got == [b"reply"], 5)
    assert holder["c"].is_running()


STATUS_CALLBACK_PROGRAM = textwrap.dedent("""
    import sys, threading
    import liner
    liner.loadLib()
    url = sys.argv[1]
    c = liner.Client("tbs_u", "tbs_t", "127.0.0.1:0", url)
    peer = liner.Client("tbs_peer", "tbs_peer_topic", "127.0.0.1:0", url)
    out = {}
    done = threading.Event()
    def on_status(kind, topic, p, message):
        if done.is_set():
            return
        out["close"] = (c.close(), c.last_error_code())
        out["stop"] = (c.stop(), c.last_error_code())
        done.set()
    assert c.set_status_callback(on_status)
    assert peer.run(lambda *a: None) and c.run(lambda *a: None)
    assert c.send_to("tbs_peer_topic", b"x")
    assert done.wait(10)
    print("RESULT", out["close"], out["stop"], c.is_running(), flush=True)
    c.close(); peer.close()
""")


def test_close_and_stop_from_inside_the_status_callback_are_refused(redis):
    """Run in a child interpreter: if the library aborts, the test fails instead of taking the
    whole pytest session down."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", STATUS_CALLBACK_PROGRAM, redis.url], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, "exit %d (negative: killed by that signal)\n%s" % (
        proc.returncode, proc.stderr[-2000:])
    expected = "RESULT (False, %d) (False, %d) True" % (liner.ERR_INVALID_ARG, liner.ERR_INVALID_ARG)
    assert expected in proc.stdout, proc.stdout
