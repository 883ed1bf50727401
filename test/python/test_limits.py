"""Process-wide limits: their defaults and setters; a payload above the max message size is refused
by the sender (ERR_INVALID_ARG) and a frame above it makes the listener close the connection; the
compression threshold decides what is compressed; a full per-peer send queue answers ERR_BUSY,
reports SENDER_BUSY, then SENDER_WRITABLE, and recovers. Every test restores the limits."""
import socket
import struct
import time

import pytest

import liner
from extended_testkit import EventLog, restore_limits  # noqa: F401
from liner_testkit import (FLAG_COMPRESS, SLOWDOWN, Inbox, free_port, parse_frame, seq_of, seq_payload,
                           send_retrying, wait_until)

DEFAULT_MAX_MESSAGE = (1 << 30) - 21


def test_defaults(restore_limits):
    assert liner.get_max_message_size() == DEFAULT_MAX_MESSAGE
    assert liner.get_compress_threshold() == 1 << 20
    assert liner.get_max_send_queue() == 0
    assert liner.get_max_send_queue_bytes() == 8 << 20


def test_setters_round_trip_and_refuse_bad_values(restore_limits):
    assert liner.set_max_message_size(1000) and liner.get_max_message_size() == 1000
    assert liner.set_compress_threshold(10) and liner.get_compress_threshold() == 10
    assert liner.set_max_send_queue(5) and liner.get_max_send_queue() == 5
    assert liner.set_max_send_queue(0) and liner.get_max_send_queue() == 0  # 0: no count limit
    assert liner.set_max_send_queue_bytes(4096) and liner.get_max_send_queue_bytes() == 4096

    assert not liner.set_max_message_size(0)
    assert not liner.set_max_message_size(DEFAULT_MAX_MESSAGE + 1)  # frames must fit 1.3.1's 1 GiB
    assert not liner.set_max_message_size(-1)
    assert not liner.set_compress_threshold(0)
    assert not liner.set_compress_threshold(-5)
    assert not liner.set_max_send_queue(-1)
    assert not liner.set_max_send_queue_bytes(0)
    assert not liner.set_max_send_queue_bytes(-1)
    assert (liner.get_max_message_size(), liner.get_compress_threshold(), liner.get_max_send_queue(),
            liner.get_max_send_queue_bytes()) == (1000, 10, 0, 4096)
    for setter in (liner.set_max_message_size, liner.set_compress_threshold,
                   liner.set_max_send_queue, liner.set_max_send_queue_bytes):
        with pytest.raises(TypeError):
            setter("100")
        with pytest.raises(TypeError):
            setter(1.5)
        with pytest.raises(TypeError):  # bool is an int subclass; True is not a size
            setter(True)
    assert liner.set_max_message_size(DEFAULT_MAX_MESSAGE)


def test_sender_refuses_a_payload_above_the_max_message_size(make_client, restore_limits):
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    assert liner.set_max_message_size(1000)

    for send in (sender.send_to, sender.send_all):
        for alo in (True, False):
            assert not send("listener_topic", b"x" * 1001, alo)
            assert sender.last_error_code() == liner.ERR_INVALID_ARG
            assert "1001" in sender.last_error_message()
    assert sender.send_to("listener_topic", b"y" * 1000)  # exactly the max is fine
    assert sender.last_error_code() == liner.OK
    assert inbox.wait_count(1) == 1
    time.sleep(0.3)
    assert inbox.payloads() == [b"y" * 1000]


def _raw_frame(payload_len):
    """A frame whose header is well formed (spec section 1.3) and whose body is 21 + payload_len."""
    body = struct.pack(">QiiBI", 1, 99999, 99999, 0, payload_len) + b"z" * payload_len
    return struct.pack(">I", len(body)) + body


def _closed_by_peer(sock, timeout=10.0):
    """True when the peer closes the connection (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""  # a listener never writes: anything but EOF is a failure
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_a_message_above_the_listeners_max_is_refused_alone_and_its_sender_told(
        make_client, restore_limits, capfd):
    assert liner.set_max_message_size(1000)
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)  # the listener applies the max from this run on
    host, port = listener.bound_listen_addr().rsplit(":", 1)
    # The sender (another process, in real life) allows bigger messages than this listener.
    assert liner.set_max_message_size(DEFAULT_MAX_MESSAGE)
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())
    assert sender.send_to("listener_topic", b"a" * 1000)
    assert inbox.wait_count(1) == 1

    # Too big for the listener: its body is skipped, the connection stays, the message is
    # acknowledged (so it is not resent forever) and the sender says which one was dropped.
    assert sender.send_to("listener_topic", b"x" * 1001, True)
    assert sender.send_to("listener_topic", b"b" * 10, True)
    assert inbox.wait_count(2) == 2
    assert inbox.payloads() == [b"a" * 1000, b"b" * 10]
    e = events.wait(liner.SENDER_SEND_ERROR, "listener_topic")
    assert e is not None and "message 2 refused" in e.message and "1001 bytes" in e.message, e
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 5), sender.stats()
    assert sender.stats()["reconnects"] == 0
    assert "dropping message 2" in capfd.readouterr().err

    # A frame longer than the protocol allows (1 GiB) is not skipped: the stream is closed.
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(struct.pack(">I", (1 << 30) + 1))
        assert _closed_by_peer(raw), "the listener kept the connection open"
    # A frame within the max on a raw connection is read, not refused for its size: the
    # listener goes on to its connection key, which nobody allocated, and refuses that.
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(_raw_frame(1000))
        assert _closed_by_peer(raw), "the listener kept a connection with a made-up key open"
    assert "unknown connection key" in capfd.readouterr().err

    # The listener goes on serving the well-behaved sender.
    assert sender.send_to("listener_topic", b"c" * 10)
    assert inbox.wait_count(3) == 3


def test_compress_threshold_decides_what_is_compressed(make_client, rdb, restore_limits):
    listener = make_client("listener", "listener_topic", "127.0.0.1:%d" % free_port())
    assert listener.run(Inbox())
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    assert sender.send_to("listener_topic", b"warm-up")
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 10)
    assert listener.stop()  # what is sent now waits in Redis, where the frames can be read

    payload = b"compressible " * 40  # 520 bytes
    assert sender.send_to("listener_topic", payload)  # default threshold: 1 MiB
    assert liner.set_compress_threshold(100)
    assert sender.send_to("listener_topic", payload)
    assert liner.set_compress_threshold(len(payload))  # strictly larger only
    assert sender.send_to("listener_topic", payload)
    ck = rdb.get("lnr_connection:sender:sender_topic:listener:key")
    key = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: rdb.llen(key) == 3, 10)
    flags = [parse_frame(f)[3] & FLAG_COMPRESS for f in rdb.lrange(key)]
    assert flags == [0, FLAG_COMPRESS, 0]

    inbox = Inbox()
    assert listener.run(inbox)
    assert inbox.wait_count(3, 10) == 3
    assert inbox.payloads() == [payload] * 3


def _open_channel(sender, inbox, first):
    """Opens the sender's channel to listener_topic with `first`, and waits until it is
    delivered and acknowledged. Until a channel is open, messages wait for it under caps of
    their own (4 byte caps: they wait uncompressed); these tests measure the channel's."""
    assert sender.send_to("listener_topic", first, True)
    assert inbox.wait_count(1, 10) == 1
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 10)


def _fill_until_busy(sender, topic, first, limit=100000):
    """Sends numbered at-least-once messages until one is refused; returns (next number, code)."""
    n = first
    while n < first + limit:
        if not sender.send_to(topic, seq_payload(n), True):
            return n, sender.last_error_code()
        n += 1
    return n, liner.OK


def test_a_full_send_queue_is_busy_then_writable_again(make_client, restore_limits):
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())
    addr = listener.published_addr()
    _open_channel(sender, inbox, seq_payload(0))  # message 0
    assert liner.set_max_send_queue(4)

    # Messages stay held until the listener's ack shows up in Redis (about a second): the fifth
    # one finds the queue full.
    t = time.monotonic()
    nxt, code = _fill_until_busy(sender, "listener_topic", 1)
    assert code == liner.ERR_BUSY, sender.last_error_message()
    assert nxt == 5
    assert sender.last_error_message()
    busy = events.wait(liner.SENDER_BUSY, "listener_topic", addr, since=t)
    assert busy is not None and busy.message
    # Busy is reported once per episode, not for every refused send.
    for _ in range(10):
        assert not sender.send_to("listener_topic", b"refused", True)
    assert len(events.matching(liner.SENDER_BUSY)) == 1

    writable = events.wait(liner.SENDER_WRITABLE, "listener_topic", addr, since=busy.at, timeout=15)
    assert writable is not None, events.snapshot()
    assert sender.send_to("listener_topic", seq_payload(nxt), True)  # recovered
    assert inbox.wait_count(nxt + 1, 10) == nxt + 1
    time.sleep(0.3)
    assert [seq_of(d) for d in inbox.payloads()] == list(range(0, nxt + 1))
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 10)


def test_the_byte_limit_of_the_send_queue_is_busy_too(make_client, restore_limits):
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())
    _open_channel(sender, inbox, b"w")
    assert liner.set_max_send_queue_bytes(20000)

    payload = b"p" * 4000
    sent = 0
    while sender.send_to("listener_topic", payload, True):
        sent += 1
        assert sent < 100, "the byte limit never applied"
    assert sender.last_error_code() == liner.ERR_BUSY
    assert 1 <= sent <= 5
    assert events.wait(liner.SENDER_BUSY, "listener_topic") is not None
    assert events.wait(liner.SENDER_WRITABLE, "listener_topic", timeout=15) is not None
    assert sender.send_to("listener_topic", payload, True)
    assert inbox.wait_count(sent + 2, 10) == sent + 2


def test_a_busy_burst_loses_nothing(make_client, restore_limits):
    """Senders that retry on ERR_BUSY get everything through, once and in order."""
    listener = make_client("listener", "listener_topic")
    inbox = Inbox(keep_data=True)
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    assert liner.set_max_send_queue(50)
    busy = 0
    for i in range(1, 301):
        deadline = time.monotonic() + 15
        while not sender.send_to("listener_topic", seq_payload(i), True):
            assert sender.last_error_code() == liner.ERR_BUSY
            assert time.monotonic() < deadline
            busy += 1
            time.sleep(0.005)
    assert busy > 0
    assert inbox.wait_count(300, 20) == 300
    time.sleep(0.5)
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, 301))



def test_big_at_least_once_messages_are_acknowledged_without_waiting_for_the_period(make_client):
    """A megabyte of deliveries gets its ack at once, however few messages that is.

    Acks were counted in messages only (an early flush after 1,024 of them, otherwise once a
    second), so a sender of big messages, or one with a small queue cap, ran out of room and
    then waited for the once-a-second ack: about a queue's worth per second.
    """
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    payload = b"b" * (64 * 1024)
    for _ in range(32):  # 2 MiB
        assert send_retrying(sender, "listener_topic", payload) == (True, liner.OK)
    assert inbox.wait_count(32, 10) == 32
    # Both sides react within milliseconds; the old once-a-second period took up to 2 s here.
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 0.7 * SLOWDOWN), sender.stats()
