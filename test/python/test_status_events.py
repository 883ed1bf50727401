"""Status events reach the status callback within a second: on the sender side for a peer that
starts, subscribes, unsubscribes, stops or is killed, on the listener side for a sender that
connects, stops or is killed; failures (route lost, store errors, a failed write) are reported
too. Busy and writable again are pinned down in test_limits.py."""
import socket
import struct
import sys
import threading
import time

import liner
from extended_testkit import (EventLog, peer_processes, private_redis, within)  # noqa: F401
from liner_testkit import Inbox, free_port, loopback_server, wait_until

LATENCY = 1.0  # seconds, as issue 6 asks


def test_constants_are_the_liner_broker_1_4_numbers():
    assert (liner.PEER_CONNECTED, liner.PEER_DISCONNECTED, liner.PEER_SUBSCRIBED,
            liner.PEER_UNSUBSCRIBED, liner.SENDER_ROUTE_LOST, liner.SENDER_STORE_ERROR,
            liner.SENDER_SEND_ERROR, liner.LISTENER_STORE_ERROR, liner.SENDER_BUSY,
            liner.SENDER_WRITABLE, liner.STORE_RECOVERED) == tuple(range(1, 12))


def test_sender_side_sees_a_peer_start_subscribe_unsubscribe_and_stop(make_client):
    watcher = make_client("watcher", "watcher_topic")
    events = EventLog()
    assert watcher.set_status_callback(events)
    assert watcher.run(Inbox())
    # The watcher uses both topics: it tried to send to them while nobody served them.
    for topic in ("peer_topic", "news"):
        assert not watcher.send_to(topic, b"x")
        assert watcher.last_error_code() == liner.ERR_NO_ADDR

    peer = make_client("peer", "peer_topic")
    assert peer.run(Inbox())
    t = time.monotonic()
    addr = peer.published_addr()
    e = events.wait(liner.PEER_CONNECTED, "peer_topic", addr)
    within(e, t, LATENCY)
    assert e.message

    t0 = time.monotonic()
    assert peer.subscribe("news")
    t = time.monotonic()
    within(events.wait(liner.PEER_SUBSCRIBED, "news", addr, since=t0), t, LATENCY)

    t0 = time.monotonic()
    assert peer.unsubscribe("news")
    t = time.monotonic()
    within(events.wait(liner.PEER_UNSUBSCRIBED, "news", addr, since=t0), t, LATENCY)

    t0 = time.monotonic()
    assert peer.stop()
    t = time.monotonic()
    within(events.wait(liner.PEER_DISCONNECTED, "peer_topic", addr, since=t0), t, LATENCY)

    # Nothing about topics the watcher does not use, and no failure of any kind.
    assert all(e.topic in ("peer_topic", "news") for e in events.snapshot()), events.snapshot()
    assert all(e.kind <= liner.PEER_UNSUBSCRIBED for e in events.snapshot()), events.snapshot()


def test_sender_side_sees_its_connection_open_and_end(make_client):
    listener = make_client("listener", "listener_topic")
    assert listener.run(Inbox())
    addr = listener.published_addr()
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())

    t = time.monotonic()
    assert sender.send_to("listener_topic", b"hello")
    e = events.wait(liner.PEER_CONNECTED, "listener_topic", addr)
    within(e, t, LATENCY)

    t0 = time.monotonic()
    assert listener.stop()
    t = time.monotonic()
    # Twice expected: the directory says it left, and its connection ended.
    within(events.wait(liner.PEER_DISCONNECTED, "listener_topic", addr, since=t0), t, LATENCY)
    assert wait_until(lambda: len(events.matching(liner.PEER_DISCONNECTED, "listener_topic", addr,
                                                  since=e.at)) >= 2, 3)


def test_a_listener_that_stops_after_acknowledging_everything_is_not_a_lost_route(make_client):
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    addr = listener.published_addr()
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())
    for i in range(20):
        assert sender.send_to("listener_topic", b"m%d" % i, True)
    assert inbox.wait_count(20) == 20

    # Its acknowledgements are written as it stops, before its connections close: the sender
    # still sees it leave, but nothing it wrote was in flight.
    t0 = time.monotonic()
    assert listener.stop()
    assert events.wait(liner.PEER_DISCONNECTED, "listener_topic", addr, since=t0) is not None
    time.sleep(0.5)
    assert not events.matching(liner.SENDER_ROUTE_LOST, "listener_topic", addr), events.snapshot()
    assert sender.pending_count() == 0


def test_events_of_peers_on_topics_the_client_does_not_use_are_not_reported(make_client):
    watcher = make_client("watcher", "watcher_topic")
    events = EventLog()
    assert watcher.set_status_callback(events)
    assert watcher.run(Inbox())
    assert not watcher.send_to("used", b"x")

    stranger = make_client("stranger", "unused")
    assert stranger.run(Inbox())
    assert stranger.subscribe("also_unused")
    # A peer on a used topic afterwards: once its event is in, the stranger's would be too.
    marker = make_client("marker", "used")
    assert marker.run(Inbox())
    assert events.wait(liner.PEER_CONNECTED, "used", marker.published_addr()) is not None
    time.sleep(0.2)
    assert {e.topic for e in events.snapshot()} == {"used"}, events.snapshot()


def test_a_refreshed_topic_is_watched(make_client):
    watcher = make_client("watcher", "watcher_topic")
    events = EventLog()
    assert watcher.set_status_callback(events)
    assert watcher.run(Inbox())
    assert not watcher.refresh_address_topic("peer_topic")  # nobody serves it yet
    assert watcher.last_error_code() == liner.ERR_NO_ADDR

    peer = make_client("peer", "peer_topic")
    assert peer.run(Inbox())
    t = time.monotonic()
    within(events.wait(liner.PEER_CONNECTED, "peer_topic", peer.published_addr()), t, LATENCY)


def test_subscribed_and_own_topics_are_watched(make_client):
    watcher = make_client("watcher", "watcher_topic")
    events = EventLog()
    assert watcher.set_status_callback(events)
    assert watcher.subscribe("news")
    assert watcher.run(Inbox())

    replica = make_client("replica", "watcher_topic")  # a second owner of the watcher's topic
    assert replica.run(Inbox())
    t = time.monotonic()
    within(events.wait(liner.PEER_CONNECTED, "watcher_topic", replica.published_addr()), t, LATENCY)

    reader = make_client("reader", "reader_topic")
    assert reader.run(Inbox())
    assert reader.subscribe("news")
    t = time.monotonic()
    within(events.wait(liner.PEER_SUBSCRIBED, "news", reader.published_addr()), t, LATENCY)

    # The watcher's own registrations are not news to itself.
    own = watcher.published_addr()
    assert [e for e in events.snapshot() if e.peer == own] == []


def test_listener_side_sees_a_sender_connect_and_stop(make_client):
    listener = make_client("listener", "listener_topic")
    events = EventLog()
    assert listener.set_status_callback(events)
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())

    t = time.monotonic()
    assert sender.send_to("listener_topic", b"one")
    within(events.wait(liner.PEER_CONNECTED, "sender_topic"), t, LATENCY)
    assert inbox.wait_count(1) == 1

    t0 = time.monotonic()
    assert sender.stop()
    t = time.monotonic()
    within(events.wait(liner.PEER_DISCONNECTED, "sender_topic", since=t0), t, LATENCY)

    # The same client running again connects again.
    assert sender.run(Inbox())
    t = time.monotonic()
    assert sender.send_to("listener_topic", b"two")
    within(events.wait(liner.PEER_CONNECTED, "sender_topic", since=t), t, LATENCY)
    assert inbox.wait_count(2) == 2


def test_sender_side_sees_a_killed_peer(make_client, peer_processes, redis):
    watcher = make_client("watcher", "watcher_topic")
    events = EventLog()
    assert watcher.set_status_callback(events)
    assert watcher.run(Inbox())

    victim = peer_processes("listener", "victim", "victim_topic", redis.url)
    addr = victim.expect("READY")
    assert wait_until(lambda: watcher.send_to("victim_topic", b"1"), 5)
    assert events.wait(liner.PEER_CONNECTED, "victim_topic", addr) is not None
    assert victim.expect("GOT") == "watcher_topic 1"

    victim.kill()
    t = time.monotonic()
    within(events.wait(liner.PEER_DISCONNECTED, "victim_topic", addr), t, LATENCY)


def test_listener_side_sees_a_killed_sender(make_client, peer_processes, redis):
    listener = make_client("listener", "listener_topic")
    events = EventLog()
    assert listener.set_status_callback(events)
    inbox = Inbox()
    assert listener.run(inbox)

    victim = peer_processes("sender", "victim", "victim_topic", redis.url, to="listener_topic",
                            count=3)
    assert victim.expect("SENT") == "3"
    assert inbox.wait_count(3) == 3
    assert events.wait(liner.PEER_CONNECTED, "victim_topic") is not None

    victim.kill()
    t = time.monotonic()
    within(events.wait(liner.PEER_DISCONNECTED, "victim_topic"), t, LATENCY)


def test_a_peer_that_cannot_be_reached_is_a_lost_route(make_client, rdb):
    # A directory row whose owner is gone without unregistering (as after a crash).
    ghost = "127.0.0.1:%d" % free_port()
    rdb("HSET", "lnr_topic:ghost_topic:addr", ghost, "ghost")
    sender = make_client("sender", "sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())

    t = time.monotonic()
    assert sender.send_to("ghost_topic", b"for the ghost", True)
    e = events.wait(liner.SENDER_ROUTE_LOST, "ghost_topic", ghost)
    within(e, t, LATENCY)
    assert e.message
    # The at-least-once message waits in the ghost's offline queue.
    assert wait_until(lambda: sender.pending_count() == 1, 5)


def _pair_on_private_redis(make_client, private_redis):
    """A sender and a listener on a Redis the test may stop, with their status events recorded,
    after one message went through: (sender, inbox, listener_events, sender_events)."""
    listener = make_client("listener", "listener_topic", url=private_redis.url)
    sender = make_client("sender", "sender_topic", url=private_redis.url)
    listener_events, sender_events = EventLog(), EventLog()
    assert listener.set_status_callback(listener_events)
    assert sender.set_status_callback(sender_events)
    inbox = Inbox()
    assert listener.run(inbox)
    assert sender.run(Inbox())
    assert sender.send_to("listener_topic", b"warm-up")
    assert inbox.wait_count(1) == 1
    return sender, inbox, listener_events, sender_events


def test_store_errors_are_reported_by_sender_and_listener(make_client, private_redis):
    sender, inbox, listener_events, sender_events = _pair_on_private_redis(make_client, private_redis)

    private_redis.stop()
    t = time.monotonic()
    # The route and the connection are known: this one still goes out, and is delivered, but
    # neither its acknowledgement (listener) nor the ack poll (sender) can reach Redis.
    assert sender.send_to("listener_topic", b"while redis is down")
    assert inbox.wait_count(2) == 2
    e = listener_events.wait(liner.LISTENER_STORE_ERROR, timeout=10)
    assert e is not None, listener_events.snapshot()
    assert e.topic == "sender_topic" and e.message
    e = sender_events.wait(liner.SENDER_STORE_ERROR, timeout=10)
    assert e is not None, sender_events.snapshot()
    assert e.topic == "listener_topic" and e.message
    # Reported at the next ack flush / poll, about a second apart.
    assert max(e.at for e in (listener_events.wait(liner.LISTENER_STORE_ERROR),
                              sender_events.wait(liner.SENDER_STORE_ERROR))) - t < 5


def test_a_store_that_is_down_is_told_once_not_at_every_retry(make_client, private_redis):
    """With over 1,024 messages awaiting their ack, both sides read and write acks every
    millisecond; once the store fails they keep retrying (slower), but each side tells the
    outage once, not at every failed retry (test/fault/test_store_outage_events.py follows the
    outage to its end)."""
    sender, inbox, listener_events, sender_events = _pair_on_private_redis(make_client, private_redis)

    private_redis.stop()
    for i in range(2000):
        assert sender.send_to("listener_topic", b"m%d" % i)
    assert inbox.wait_count(2001, 10) == 2001
    assert listener_events.wait(liner.LISTENER_STORE_ERROR, timeout=10) is not None
    assert sender_events.wait(liner.SENDER_STORE_ERROR, timeout=10) is not None
    time.sleep(1.5)
    counts = [len(log.matching(kind)) for log, kind in
              ((listener_events, liner.LISTENER_STORE_ERROR), (sender_events, liner.SENDER_STORE_ERROR))]
    assert counts == [1, 1], counts


def _rst_server(stop, accepted):
    """Accepts connections, reads nothing for 200 ms, then resets them (SO_LINGER 0): a sender
    that streams has filled the socket buffers by then and waits for room to write when the
    reset lands, and that write fails."""
    def reset(conn):
        accepted.append(1)
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    return loopback_server(reset, stop)


def test_a_failed_write_is_a_send_error(make_client, rdb):
    stop, accepted = threading.Event(), []
    addr = _rst_server(stop, accepted)
    try:
        rdb("HSET", "lnr_topic:reset_topic:addr", addr, "resetter")
        sender = make_client("sender", "sender_topic")
        events = EventLog()
        assert sender.set_status_callback(events)
        assert sender.run(Inbox())
        # Keep writing while the peer resets its connections: a reset that arrives while the
        # sender waits to write shows up as a failed write.
        # At-least-once, so that the sender keeps reconnecting to deliver them.
        deadline = time.monotonic() + 20
        while not events.matching(liner.SENDER_SEND_ERROR) and time.monotonic() < deadline:
            for _ in range(20):
                sender.send_to("reset_topic", b"x" * 65536, True)
            time.sleep(0.001)
        e = events.wait(liner.SENDER_SEND_ERROR, timeout=1)
        assert e is not None, "no send error in %d connections; events: %s" % (
            len(accepted), events.snapshot()[-10:])
        assert e.topic == "reset_topic" and e.peer == addr and e.message
    finally:
        stop.set()


class _StderrRecorder:
    """Stands in for sys.stderr: keeps what is written, from any thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.parts = []

    def write(self, text):
        with self.lock:
            self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def text(self):
        with self.lock:
            return "".join(self.parts)


def test_exceptions_in_the_status_callback_are_printed_and_events_go_on(make_client, monkeypatch):
    seen = EventLog()
    stderr = _StderrRecorder()
    monkeypatch.setattr(sys, "stderr", stderr)

    def callback(kind, topic, peer, message):
        seen(kind, topic, peer, message)
        raise RuntimeError("status callback failed on purpose")

    watcher = make_client("watcher", "watcher_topic")
    assert watcher.set_status_callback(callback)
    assert watcher.run(Inbox())
    assert not watcher.send_to("peer_topic", b"x")
    peers = [make_client("peer%d" % i, "peer_topic") for i in range(2)]
    for p in peers:
        assert p.run(Inbox())
    for p in peers:
        assert seen.wait(liner.PEER_CONNECTED, "peer_topic", p.published_addr()) is not None
    # Printed right after the callback recorded the event: wait for both tracebacks.
    assert wait_until(lambda: stderr.text().count(
        "RuntimeError: status callback failed on purpose") >= 2, 5), stderr.text()
    assert "Traceback" in stderr.text()
    assert watcher.is_running()


def test_none_clears_the_status_callback(make_client):
    cleared, kept = EventLog(), EventLog()
    a = make_client("a", "a_topic")
    b = make_client("b", "b_topic")
    assert a.set_status_callback(cleared) and b.set_status_callback(kept)
    assert a.run(Inbox()) and b.run(Inbox())
    for c in (a, b):
        assert not c.send_to("peer_topic", b"x")
    assert a.set_status_callback(None)
    assert a.last_error_code() == liner.OK

    peer = make_client("peer", "peer_topic")
    assert peer.run(Inbox())
    peer_addr = peer.published_addr()
    assert kept.wait(liner.PEER_CONNECTED, "peer_topic") is not None
    time.sleep(0.2)
    assert cleared.snapshot() == []

    # And a callback can be set again.
    assert a.set_status_callback(cleared)
    assert peer.stop()
    assert cleared.wait(liner.PEER_DISCONNECTED, "peer_topic", peer_addr) is not None


def test_set_status_callback_refusals(make_client):
    c = make_client("c", "c_topic")
    try:
        c.set_status_callback(42)
        raise AssertionError("a non-callable was accepted")
    except TypeError:
        pass
    assert c.close()
    assert not c.set_status_callback(EventLog())
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert not c.set_status_callback(None)
