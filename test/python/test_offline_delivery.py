"""At-least-once messages to a listener that went offline are stored in Redis and delivered, in
order and once, when it comes back; best-effort messages to it are dropped."""
import time

import pytest

import liner
from liner_testkit import (FLAG_AT_LEAST_ONCE, Inbox, free_port, parse_frame, seq_of, seq_payload,
                           wait_until)

N = 50
CK_KEY = "lnr_connection:sender:sender_topic:listener:key"


@pytest.fixture
def went_offline(make_client, rdb):
    """A sender that talked to the listener, and the listener's fixed address; the listener has
    closed (its address left the directory)."""
    addr = "127.0.0.1:%d" % free_port()
    listener = make_client("listener", "listener_topic", addr)
    inbox = Inbox()
    assert listener.run(inbox)
    assert listener.bound_listen_addr() == addr
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    assert sender.send_to("listener_topic", b"warm-up")
    assert inbox.wait_count(1) == 1
    assert listener.close()
    assert rdb.hgetall("lnr_topic:listener_topic:addr") == {}
    return sender, addr


def hgetall_calls(rdb):
    for line in rdb("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_hgetall:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def test_a_stream_to_an_offline_listener_does_not_read_the_directory_per_message(went_offline, rdb):
    sender, _ = went_offline
    before = hgetall_calls(rdb)
    for i in range(500):
        assert sender.send_to("listener_topic", seq_payload(i), True), sender.last_error_message()
    # "Nobody serves it" is trusted for a moment (200 ms), not re-read for every message; the
    # directory watch's own refreshes (one a second per topic) fit in the margin.
    assert hgetall_calls(rdb) - before < 50
    assert wait_until(lambda: sender.pending_count() == 500, 5), sender.pending_count()


def test_at_least_once_to_offline_listener_is_stored_then_delivered_once_in_order(
        went_offline, make_client, rdb):
    sender, addr = went_offline
    for i in range(1, N + 1):
        assert sender.send_to("listener_topic", seq_payload(i), True), sender.last_error_message()
    ck = rdb.get(CK_KEY)
    assert ck is not None
    messages_key = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: rdb.llen(messages_key) == N, 5), rdb.llen(messages_key)

    # The stored elements are the frames of spec section 1.8, numbered after the warm-up.
    frames = [parse_frame(f) for f in rdb.lrange(messages_key)]
    assert [f[0] for f in frames] == list(range(2, N + 2))
    assert {f[1] for f in frames} == {int(ck)}
    assert all(f[3] & FLAG_AT_LEAST_ONCE for f in frames)
    assert [f[4] for f in frames] == [seq_payload(i) for i in range(1, N + 1)]

    listener = make_client("listener", "listener_topic", addr)
    inbox = Inbox()
    assert listener.run(inbox)
    assert inbox.wait_count(N, 15) == N
    time.sleep(0.5)  # a duplicate would show up here
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, N + 1))
    assert {(to, from_) for to, from_, _ in inbox.snapshot()} == {("listener_topic", "sender_topic")}
    assert wait_until(lambda: rdb.llen(messages_key) == 0, 5)
    assert wait_until(lambda: rdb.get("lnr_connection:%s:mess_number" % ck) == str(N + 1), 3)


def test_stored_messages_survive_a_sender_restart(went_offline, make_client, rdb):
    sender, addr = went_offline
    for i in range(1, N + 1):
        assert sender.send_to("listener_topic", seq_payload(i), True)
    messages_key = "lnr_connection:%s:messages" % rdb.get(CK_KEY)
    assert wait_until(lambda: rdb.llen(messages_key) == N, 5)
    assert sender.close()
    assert rdb.llen(messages_key) == N

    # Both come back: the new sender (same identity) resumes the channel without any send call.
    listener = make_client("listener", "listener_topic", addr)
    inbox = Inbox()
    assert listener.run(inbox)
    sender2 = make_client("sender", "sender_topic")
    assert sender2.run(Inbox())
    assert inbox.wait_count(N, 15) == N
    time.sleep(0.5)
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, N + 1))
    assert wait_until(lambda: rdb.llen(messages_key) == 0, 5)


def test_best_effort_to_offline_listener_is_not_stored_nor_delivered_later(
        went_offline, make_client, rdb):
    sender, addr = went_offline
    for i in range(1, N + 1):
        ok = sender.send_to("listener_topic", seq_payload(i), False)
        assert ok or sender.last_error_code() == liner.ERR_NO_ADDR, sender.last_error_message()
    ck = rdb.get(CK_KEY)
    time.sleep(1.5)
    assert rdb.llen("lnr_connection:%s:messages" % ck) == 0

    listener = make_client("listener", "listener_topic", addr)
    inbox = Inbox()
    assert listener.run(inbox)
    time.sleep(2.0)
    assert inbox.snapshot() == []
    # The channel still works for new messages.
    assert wait_until(lambda: sender.send_to("listener_topic", b"new", True), 2)
    assert inbox.wait_count(1, 5) == 1
    assert inbox.payloads() == [b"new"]
