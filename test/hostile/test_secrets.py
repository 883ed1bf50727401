"""Secrets stay secret: the Redis password of a client's URL never shows up in a LinerError, in
last_error_message(), in a log line or in a status event, whether the URL is malformed, Redis
refuses the password, nobody listens on the port, or Redis goes wrong under a running client.
Where a message names the URL, the password is shown as "***"."""
import socket
import threading
import time

import pytest

import liner
from extended_testkit import EventLog, log_lines, private_redis  # noqa: F401
from liner_testkit import Inbox, Resp, free_port, wait_until

SECRET = "Pw-7c1e-SECRET"

# URLs that do not parse, each holding the password; the message must still show the URL.
MALFORMED = [
    ("redis://user:%s@host:notaport/0" % SECRET, "redis://user:***@host:notaport/0"),
    ("redis://:%s@[bad/0" % SECRET, "redis://:***@[bad/0"),
    ("redis://:%s@127.0.0.1:6379/notadb" % SECRET, "redis://:***@127.0.0.1:6379/notadb"),
    ("rediss://user:%s@127.0.0.1:6379/0?ca=" % SECRET, "rediss://user:***@127.0.0.1:6379/0?ca="),
    ("redis+sentinel://user:%s@127.0.0.1:26379" % SECRET, "redis+sentinel://user:***@127.0.0.1:26379"),
    ("redis://:%s@/0" % SECRET, "redis://:***@/0"),
    # A password holding '@', '/' or ':' (not percent-encoded, as it should be) is hidden whole.
    ("redis://:a@b/%s@127.0.0.1:x/0" % SECRET, "redis://:***@127.0.0.1:x/0"),
    ("unix://:%s@/tmp/redis.sock" % SECRET, "unix://:***@/tmp/redis.sock"),
]


def assert_hidden(*texts):
    for text in texts:
        assert SECRET not in str(text), text


def create_fails(url, code):
    with pytest.raises(liner.LinerError) as info:
        liner.Client("secret_u", "secret_t", "127.0.0.1:0", url)
    e = info.value
    assert e.code == code, e
    assert_hidden(e.message, str(e), repr(e))
    return e.message


@pytest.mark.parametrize("url,shown", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_url_is_named_without_its_password(url, shown, log_lines):
    message = create_fails(url, liner.ERR_INVALID_ARG)
    assert shown in message
    assert_hidden(*log_lines.snapshot())
    assert any(shown in line for line in log_lines.snapshot()), log_lines.snapshot()


@pytest.mark.parametrize("user", ["", "default"])
def test_redis_refusing_the_password(private_redis, log_lines, user):  # noqa: F811
    private_redis.cli("CONFIG", "SET", "requirepass", "another-password")
    url = "redis://%s:%s@127.0.0.1:%d/0" % (user, SECRET, private_redis.port)
    message = create_fails(url, liner.ERR_STORE)
    assert "AUTH" in message
    assert_hidden(*log_lines.snapshot())


def test_a_server_that_echoes_the_password(log_lines):
    """Redis does not repeat the arguments of a failed AUTH; a proxy or another server might."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)

    def serve():
        with srv:
            conn, _ = srv.accept()
            with conn:
                request = b""
                while SECRET.encode() not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                conn.sendall(b"-ERR bad password '%s' for AUTH\r\n" % SECRET.encode())
                conn.recv(4096)  # until the client hangs up

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    url = "redis://:%s@127.0.0.1:%d/0" % (SECRET, srv.getsockname()[1])
    message = create_fails(url, liner.ERR_STORE)
    server.join(10)
    assert "ERR bad password '***' for AUTH" in message
    assert_hidden(*log_lines.snapshot())


def test_nobody_listening(log_lines):
    message = create_fails("redis://:%s@127.0.0.1:%d/0" % (SECRET, free_port()), liner.ERR_STORE)
    assert "unreachable" in message
    assert_hidden(*log_lines.snapshot())


def test_redis_going_wrong_under_running_clients(private_redis, log_lines):  # noqa: F811
    """Redis changes its password (every connection dropped), then stops: the clients' calls,
    status events and log lines say so, without the password."""
    private_redis.cli("CONFIG", "SET", "requirepass", SECRET)
    url = "redis://:%s@127.0.0.1:%d/0" % (SECRET, private_redis.port)
    clients = [liner.Client(name, name + "_topic", "127.0.0.1:0", url)
               for name in ("listener", "sender", "late")]
    listener, sender, late = clients
    events = EventLog()
    messages = []  # last_error_message() of every failed call
    try:
        for c in (listener, sender):
            assert c.set_status_callback(events)
        inbox = Inbox()
        assert listener.run(inbox)
        assert sender.run(Inbox())
        assert sender.send_to("listener_topic", b"warm-up")
        assert inbox.wait_count(1) == 1

        def calls_fail_with(needle):
            """Calls that need Redis; True once one of them failed saying `needle` (a failed
            connection is not tried again for 200 ms, backing off to 2 s: until then it reports
            the last failure)."""
            seen = False
            for ok in (sender.refresh_address_topic("listener_topic"), sender.subscribe("news"),
                       sender.list_addresses("listener_topic") is not None,
                       sender.pending_count() >= 0):
                if not ok:
                    messages.append(sender.last_error_message())
                    seen = seen or needle in messages[-1]
            return seen

        def sends_until(kind, needle, seconds=8.0):
            """Sends at-least-once messages (their acks need Redis) until an event of `kind`
            whose message holds `needle` came (False after `seconds`)."""
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sender.send_to("listener_topic", b"m")
                if any(needle in e.message for e in events.matching(kind)):
                    return True
                time.sleep(0.05)
            return False

        with Resp.of(private_redis) as admin:
            admin("AUTH", SECRET)
            admin("CONFIG", "SET", "requirepass", "another-password")
            admin("CLIENT", "KILL", "TYPE", "normal")
            admin("CLIENT", "KILL", "TYPE", "pubsub")
        assert sends_until(liner.LISTENER_STORE_ERROR, "AUTH"), events.snapshot()
        assert sends_until(liner.SENDER_STORE_ERROR, "AUTH"), events.snapshot()
        assert wait_until(lambda: calls_fail_with("AUTH"), 5), messages
        assert not late.run(Inbox())
        messages.append(late.last_error_message())
        assert "AUTH" in messages[-1], messages

        private_redis.stop()
        # Still the same outage (the store did not answer in between): it was told once, so
        # the new cause shows in the calls' errors and the log, not in a second event.
        assert not sends_until(liner.SENDER_STORE_ERROR, "unreachable", seconds=1.0), events.snapshot()
        assert wait_until(lambda: calls_fail_with("unreachable"), 5), messages
    finally:
        for c in clients:
            c.close()
    assert_hidden(*messages)
    assert_hidden(*(e.message for e in events.snapshot()), *(e.peer for e in events.snapshot()))
    lines = log_lines.snapshot()
    assert_hidden(*lines)
    assert any("AUTH" in line for line in lines), lines
