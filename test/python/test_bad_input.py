"""Bad input from Python is refused cleanly: creation raises LinerError, calls return False with
an error code, nothing crashes."""
import time

import pytest

import liner
from liner_testkit import Inbox, free_port

BAD_NAMES = [None, "", b"\xff\xfe", "\udcff"]
BAD_IDS = ["None", "empty", "invalid_utf8_bytes", "lone_surrogate"]


@pytest.mark.parametrize("position", range(4), ids=["unique_name", "topic", "localhost", "redis_url"])
@pytest.mark.parametrize("bad", BAD_NAMES, ids=BAD_IDS)
def test_bad_creation_argument_raises_liner_error(redis, position, bad):
    args = ["u", "t", "127.0.0.1:0", redis.url]
    args[position] = bad
    with pytest.raises(liner.LinerError) as info:
        liner.Client(*args)
    assert info.value.code == liner.ERR_INVALID_ARG
    assert info.value.message


def test_bad_redis_url_raises_liner_error():
    with pytest.raises(liner.LinerError):
        liner.Client("u", "t", "127.0.0.1:0", "http://127.0.0.1:1/")


def test_unreachable_redis_raises_within_3_s():
    started = time.monotonic()
    with pytest.raises(liner.LinerError) as info:
        liner.Client("u", "t", "127.0.0.1:0", "redis://127.0.0.1:%d/0" % free_port())
    assert time.monotonic() - started < 3.0
    assert info.value.code == liner.ERR_STORE
    assert info.value.message


def test_unanswering_redis_raises_within_3_s():
    """A TCP server that accepts but never answers: creation gives up after about 2 s."""
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(liner.LinerError) as info:
            liner.Client("u", "t", "127.0.0.1:0", "redis://127.0.0.1:%d/0" % port)
        assert time.monotonic() - started < 3.0
        assert info.value.code == liner.ERR_STORE
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.fixture
def running(make_client):
    a = make_client("a", "topic_a")
    b = make_client("b", "topic_b")
    assert a.run(Inbox()) and b.run(Inbox())
    return a


@pytest.mark.parametrize("method", ["send_to", "send_all", "subscribe", "unsubscribe",
                                    "refresh_address_topic"])
@pytest.mark.parametrize("bad", BAD_NAMES, ids=BAD_IDS)
def test_bad_topic_is_refused(running, method, bad):
    args = (bad, b"data") if method.startswith("send") else (bad,)
    assert getattr(running, method)(*args) is False
    assert running.last_error_code() == liner.ERR_INVALID_ARG
    assert running.last_error_message()


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b""), ""],
                         ids=["bytes", "bytearray", "memoryview", "str"])
@pytest.mark.parametrize("method", ["send_to", "send_all"])
def test_empty_data_is_refused(running, method, empty):
    assert getattr(running, method)("topic_b", empty) is False
    assert running.last_error_code() == liner.ERR_INVALID_ARG


def test_wrong_data_type_raises_type_error(running):
    with pytest.raises(TypeError):
        running.send_to("topic_b", 12345)
    with pytest.raises(TypeError):
        running.send_to(42, b"x")


@pytest.mark.parametrize("method", ["send_to", "send_all"])
def test_send_to_own_topic_is_refused(running, method):
    assert getattr(running, method)("topic_a", b"me") is False
    assert running.last_error_code() == liner.ERR_SELF_TOPIC


def test_send_before_run_is_refused(make_client):
    client = make_client("a", "topic_a")
    assert client.send_to("topic_b", b"x") is False
    assert client.last_error_code() == liner.ERR_NOT_RUNNING
    assert client.send_all("topic_b", b"x") is False
    assert client.last_error_code() == liner.ERR_NOT_RUNNING


def test_send_to_topic_nobody_serves_is_refused(running):
    assert running.send_to("nobody", b"x") is False
    assert running.last_error_code() == liner.ERR_NO_ADDR
    assert running.send_all("nobody", b"x") is False
    assert running.last_error_code() == liner.ERR_NO_ADDR


def test_success_resets_the_error(running):
    assert not running.send_to("nobody", b"x")
    assert running.last_error_code() == liner.ERR_NO_ADDR
    assert running.send_to("topic_b", b"x")
    assert running.last_error_code() == liner.OK
    assert running.last_error_message() == ""


def test_run_needs_a_callable(make_client):
    client = make_client("a", "topic_a")
    with pytest.raises(TypeError):
        client.run(None)
    with pytest.raises(TypeError):
        client.run("not callable")


def test_run_twice_keeps_the_first_callback(make_client):
    a = make_client("a", "topic_a")
    b = make_client("b", "topic_b")
    first, second = Inbox(), Inbox()
    assert a.run(first)
    assert a.run(second)
    assert b.run(Inbox())
    assert b.send_to("topic_a", b"x")
    assert first.wait_count(1) == 1
    assert len(second) == 0


@pytest.mark.parametrize("addr", ["256.1.1.1:5000", "no-such-host.invalid:5000", "127.0.0.1:99999",
                                  "not an address", "127.0.0.1"])
def test_unusable_listen_address_is_refused(make_client, rdb, addr):
    """Refused at creation (a malformed address: ERR_INVALID_ARG) or by run (ERR_BIND)."""
    try:
        client = make_client("a", "topic_a", addr)
    except liner.LinerError as e:
        assert e.code == liner.ERR_INVALID_ARG, e
        return
    assert client.run(Inbox()) is False
    assert client.last_error_code() == liner.ERR_BIND
    assert client.last_error_message()
    assert client.bound_listen_addr() is None
    assert rdb.hgetall("lnr_topic:topic_a:addr") == {}  # a failed run leaves nothing registered


def test_run_on_a_port_in_use_fails_with_err_bind(make_client, rdb):
    a = make_client("a", "topic_a")
    assert a.run(Inbox())
    b = make_client("b", "topic_b", a.bound_listen_addr())
    assert b.run(Inbox()) is False
    assert b.last_error_code() == liner.ERR_BIND
    assert rdb.hgetall("lnr_topic:topic_b:addr") == {}


def test_bound_listen_addr_is_none_before_run(make_client):
    client = make_client("a", "topic_a")
    assert client.bound_listen_addr() is None
    assert client.unique_name() == "a"


def test_double_close(make_client):
    client = make_client("a", "topic_a")
    assert client.run(Inbox())
    assert client.close() is True
    assert client.close() is False
    assert client.close() is False


def test_close_without_run(make_client):
    client = make_client("a", "topic_a")
    assert client.close() is True
    assert client.close() is False


def test_calls_after_close_return_false_and_raise_nothing(make_client):
    client = make_client("a", "topic_a")
    assert client.run(Inbox())
    assert client.close()
    assert client.run(Inbox()) is False
    assert client.send_to("topic_b", b"x") is False
    assert client.send_all("topic_b", b"x") is False
    assert client.subscribe("x") is False
    assert client.unsubscribe("x") is False
    assert client.refresh_address_topic("x") is False
    assert client.clear_stored_messages() is False
    assert client.clear_addresses_of_topic() is False
    assert client.last_error_code() == liner.ERR_INVALID_ARG
    assert client.last_error_message()
    assert client.bound_listen_addr() is None
    assert client.unique_name() == "a"


def test_context_manager_closes(redis, rdb):
    with liner.Client("a", "topic_a", "127.0.0.1:0", redis.url) as client:
        assert client.run(Inbox())
        assert rdb.hgetall("lnr_topic:topic_a:addr") == {client.bound_listen_addr(): "a"}
    assert rdb.hgetall("lnr_topic:topic_a:addr") == {}
    assert client.close() is False


def test_close_from_own_callback_is_refused_without_harm(make_client):
    a = make_client("a", "topic_a")
    b = make_client("b", "topic_b")
    results = []

    def on_message(to, from_, data):
        results.append((a.close(), a.last_error_code()))

    assert a.run(on_message)
    assert b.run(Inbox())
    assert b.send_to("topic_a", b"x")
    deadline = time.monotonic() + 5
    while not results and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results == [(False, liner.ERR_INVALID_ARG)]
    assert a.close() is True  # still alive, closes normally from another thread


def test_reserved_topic_is_refused(redis, running):
    with pytest.raises(liner.LinerError) as info:
        liner.Client("u", "__#internal_channel", "127.0.0.1:0", redis.url)
    assert info.value.code == liner.ERR_INTERNAL_TOPIC
    for method in ("send_to", "send_all"):
        assert getattr(running, method)("__#internal_channel", b"x") is False
        assert running.last_error_code() == liner.ERR_INTERNAL_TOPIC
    for method in ("subscribe", "unsubscribe"):
        assert getattr(running, method)("__#internal_channel") is False
        assert running.last_error_code() == liner.ERR_INTERNAL_TOPIC
