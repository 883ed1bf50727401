"""Every call records its outcome on the client: last_error_code() is one of the ERR_* codes of
liner_broker 1.4 (OK after a success) and last_error_message() says why ("" after a success).
Also version() and the codes carried by LinerError."""
import socket
import threading

import pytest

import liner
from extended_testkit import private_redis  # noqa: F401
from liner_testkit import Inbox


def test_codes_are_the_liner_broker_1_4_numbers():
    assert (liner.OK, liner.ERR_NOT_RUNNING, liner.ERR_ALREADY_RUNNING, liner.ERR_SELF_TOPIC,
            liner.ERR_INTERNAL_TOPIC, liner.ERR_NO_ADDR, liner.ERR_BIND, liner.ERR_STORE,
            liner.ERR_INVALID_ARG, liner.ERR_CLEAR_WHILE_RUNNING, liner.ERR_STARTUP,
            liner.ERR_BUSY) == tuple(range(12))


def test_version_is_a_stable_string():
    v = liner.version()
    assert isinstance(v, str) and v.startswith("1.")
    assert liner.version() == v


def expect(client, ok, code):
    assert not ok, "the call succeeded"
    assert client.last_error_code() == code, (client.last_error_code(), client.last_error_message())
    assert client.last_error_message() != ""


def expect_ok(client, ok):
    assert ok, client.last_error_message()
    assert client.last_error_code() == liner.OK
    assert client.last_error_message() == ""


def test_each_refusal_sets_its_code_and_a_success_clears_it(make_client):
    c = make_client("c", "c_topic")
    assert c.last_error_code() == liner.OK and c.last_error_message() == ""
    expect(c, c.send_to("other", b"x"), liner.ERR_NOT_RUNNING)
    expect_ok(c, c.subscribe("news"))
    expect_ok(c, c.run(Inbox()))
    expect(c, c.send_to("c_topic", b"x"), liner.ERR_SELF_TOPIC)
    expect(c, c.subscribe("c_topic"), liner.ERR_SELF_TOPIC)
    expect(c, c.send_to("__#internal_channel", b"x"), liner.ERR_INTERNAL_TOPIC)
    expect(c, c.send_to("nobody", b"x"), liner.ERR_NO_ADDR)
    expect(c, c.send_all("nobody", b"x"), liner.ERR_NO_ADDR)
    expect(c, c.refresh_address_topic("nobody"), liner.ERR_NO_ADDR)
    expect(c, c.send_to("", b"x"), liner.ERR_INVALID_ARG)
    expect(c, c.send_to("other", b""), liner.ERR_INVALID_ARG)
    expect(c, c.subscribe(b"bad\xff"), liner.ERR_INVALID_ARG)
    expect(c, c.clear_stored_messages(), liner.ERR_CLEAR_WHILE_RUNNING)
    expect(c, c.clear_addresses_of_topic(), liner.ERR_CLEAR_WHILE_RUNNING)
    expect(c, c.set_advertise_addr("127.0.0.1:0"), liner.ERR_ALREADY_RUNNING)
    expect_ok(c, c.unsubscribe("news"))
    expect_ok(c, c.stop())
    expect_ok(c, c.clear_stored_messages())


def test_bind_failure(make_client):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        c = make_client("c", "c_topic", "127.0.0.1:%d" % taken.getsockname()[1])
        expect(c, c.run(Inbox()), liner.ERR_BIND)
        assert not c.is_running()
    c2 = make_client("c2", "c2_topic", "203.0.113.1:0")  # not an address of this host
    expect(c2, c2.run(Inbox()), liner.ERR_BIND)


def test_store_failure(make_client, private_redis):
    c = make_client("c", "c_topic", url=private_redis.url)
    private_redis.stop()
    expect(c, c.run(Inbox()), liner.ERR_STORE)
    expect(c, c.clear_stored_messages(), liner.ERR_STORE)
    assert c.list_addresses("t") is None
    assert c.last_error_code() == liner.ERR_STORE


def test_creation_failures_raise_liner_error_with_the_code(redis):
    with pytest.raises(liner.LinerError) as e:
        liner.Client("u", "__#internal_channel", "127.0.0.1:0", redis.url)
    assert e.value.code == liner.ERR_INTERNAL_TOPIC
    with pytest.raises(liner.LinerError) as e:
        liner.Client("u", "t", "no-port", redis.url)
    assert e.value.code == liner.ERR_INVALID_ARG
    with pytest.raises(liner.LinerError) as e:
        liner.Client("u", "t", "127.0.0.1:0", "redis://127.0.0.1:1/0")
    assert e.value.code == liner.ERR_STORE and e.value.message


def test_codes_are_per_thread(make_client):
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    assert not c.send_to("c_topic", b"x")
    seen = []
    t = threading.Thread(target=lambda: seen.append((c.send_to("nobody", b"x"),
                                                     c.last_error_code())))
    t.start()
    t.join(10)
    assert seen == [(False, liner.ERR_NO_ADDR)]
    assert c.last_error_code() == liner.ERR_SELF_TOPIC  # this thread's last call


def test_a_closed_client_reports_invalid_arg(make_client):
    c = make_client("c", "c_topic")
    assert c.close()
    expect(c, c.send_to("x", b"x"), liner.ERR_INVALID_ARG)
    expect(c, c.stop(), liner.ERR_INVALID_ARG)
    assert c.stats() is None
    assert c.last_error_code() == liner.ERR_INVALID_ARG
