"""stats() counters move as traffic flows: messages and bytes sent and delivered, persisted to and
reloaded from the offline queue, reconnects, duplicates; queue depths return to 0; counters add up
across stop/run."""
import socket
import struct
import time

import liner
from liner_testkit import Inbox, free_port, stats_record, wait_until

FIELDS = {c_name for c_name, _, _ in stats_record()}
FRAME_OVERHEAD = 25  # length prefix + body header (spec section 1.3)


def test_a_new_client_has_zero_counters(make_client):
    c = make_client("c", "c_topic")
    s = c.stats()
    assert set(s) == FIELDS
    assert all(v == 0 for v in s.values()), s
    assert c.last_error_code() == liner.OK
    assert c.run(Inbox())
    assert all(v == 0 for v in c.stats().values())


def test_counters_of_an_exchange(started_client):
    listener, inbox = started_client("listener", "listener_topic")
    sender, _ = started_client("sender", "sender_topic")
    sizes = [1, 10, 100, 1000, 5000]
    for n in sizes:
        assert sender.send_to("listener_topic", b"s" * n, True)
    assert sender.send_to("listener_topic", b"best effort", False)
    assert inbox.wait_count(len(sizes) + 1) == len(sizes) + 1
    payload_bytes = sum(sizes) + len(b"best effort")

    assert wait_until(lambda: sender.stats()["messages_sent"] == len(sizes) + 1, 10)
    s = sender.stats()
    assert s["bytes_sent"] == payload_bytes + FRAME_OVERHEAD * (len(sizes) + 1)
    # Queue depths return to 0 once the listener's acks are in (about a second).
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 10), sender.stats()
    s = sender.stats()
    assert s["send_queue_bytes"] == 0
    assert s["messages_delivered"] == 0 and s["persisted"] == 0 and s["reloaded"] == 0
    assert s["dropped"] == 0 and s["reconnects"] == 0

    assert wait_until(lambda: listener.stats()["messages_delivered"] == len(sizes) + 1, 5)
    r = listener.stats()
    assert r["bytes_delivered"] == payload_bytes
    assert r["duplicates"] == 0  # one connection, never broken: nothing is sent twice
    assert r["receive_queue_bytes"] == 0
    assert r["messages_sent"] == 0 and r["bytes_sent"] == 0


def test_offline_messages_are_persisted_then_reloaded(started_client):
    addr = "127.0.0.1:%d" % free_port()
    listener, inbox = started_client("listener", "listener_topic", addr)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"warm-up")
    assert inbox.wait_count(1) == 1
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 10)
    assert listener.stop()
    assert wait_until(lambda: sender.stats()["reconnects"] == 1, 5), sender.stats()

    for i in range(20):
        assert sender.send_to("listener_topic", b"m%d" % i, True)
    assert wait_until(lambda: sender.stats()["persisted"] == 20, 10), sender.stats()
    assert sender.pending_count() == 20
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 5)

    assert listener.run(inbox)
    assert inbox.wait_count(21, 15) == 21
    assert wait_until(lambda: sender.stats()["reloaded"] >= 20, 10), sender.stats()
    assert wait_until(lambda: sender.pending_count() == 0, 10)
    s = sender.stats()
    assert s["messages_sent"] >= 21 and s["persisted"] == 20
    assert s["send_queue_messages"] == 0 and s["send_queue_bytes"] == 0
    # The listener's counters add up across its stop/run.
    assert wait_until(lambda: listener.stats()["messages_delivered"] == 21, 5), listener.stats()
    # A graceful stop acknowledges everything it delivered: the replay repeats nothing.
    assert listener.stats()["duplicates"] == 0


def test_best_effort_messages_to_an_unreachable_peer_are_dropped(started_client, rdb):
    ghost = "127.0.0.1:%d" % free_port()  # in the directory, but nobody listens there
    rdb("HSET", "lnr_topic:ghost_topic:addr", ghost, "ghost")
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("ghost_topic", b"first", False)
    assert wait_until(lambda: sender.stats()["dropped"] == 1, 10), sender.stats()
    for _ in range(5):
        assert sender.send_to("ghost_topic", b"more", False)
    assert wait_until(lambda: sender.stats()["dropped"] == 6, 10), sender.stats()
    assert sender.stats()["persisted"] == 0
    assert sender.pending_count() == 0


def test_counters_add_up_across_stop_and_run(started_client):
    listener, inbox = started_client("listener", "listener_topic")
    sender, _ = started_client("sender", "sender_topic")
    for i in range(5):
        assert sender.send_to("listener_topic", b"a")
    assert inbox.wait_count(5) == 5
    assert sender.stop()
    assert sender.stats()["messages_sent"] == 5  # readable while stopped
    assert sender.run(Inbox())
    for i in range(5):
        assert sender.send_to("listener_topic", b"b")
    assert inbox.wait_count(10) == 10
    assert wait_until(lambda: sender.stats()["messages_sent"] == 10, 10), sender.stats()
    # Counted once the callback returned: a moment after the inbox saw the message.
    assert wait_until(lambda: listener.stats()["messages_delivered"] == 10, 5), listener.stats()


def test_duplicates_are_counted_not_delivered(started_client, rdb):
    listener, inbox = started_client("listener", "listener_topic")
    sender, _ = started_client("sender", "sender_topic")
    for i in range(3):
        assert sender.send_to("listener_topic", b"%d" % i)
    assert inbox.wait_count(3) == 3
    ck = int(rdb.get("lnr_connection:sender:sender_topic:listener:key"))
    tk = int(rdb.get("lnr_topic:listener_topic:key"))
    assert wait_until(lambda: rdb.get("lnr_connection:%d:mess_number" % ck) == "3", 5)

    # Frames 2 and 3 of the channel again (as a sender replaying what it did not know was
    # acknowledged), then a new number 4, over a connection of their own.
    def frame(number, data):
        body = struct.pack(">QiiBI", number, ck, tk, 2, len(data)) + data
        return struct.pack(">I", len(body)) + body
    host, port = listener.bound_listen_addr().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(frame(2, b"again 2") + frame(3, b"again 3") + frame(4, b"fresh"))
        assert inbox.wait_count(4) == 4
        assert wait_until(lambda: listener.stats()["duplicates"] == 2, 5), listener.stats()
    assert inbox.snapshot()[3] == ("listener_topic", "sender_topic", b"fresh")
    assert wait_until(lambda: listener.stats()["messages_delivered"] == 4, 5)
    time.sleep(0.3)
    assert len(inbox) == 4
