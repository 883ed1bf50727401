"""A send to a topic the client has read never waits on Redis, even to a peer it has no channel
to yet: the channel's key is read on the core's own thread while the message waits, and the
message leaves once Redis answers. Redis frozen (SIGSTOP) for 3 s: the send to the new replica
returns at once, sends to the replica it knows keep arriving, and the new replica gets its
messages after the thaw, in order. A client stopped while Redis stays frozen drops what still
waits, and says so (SENDER_SEND_ERROR). (Before: that send did the channel's Redis round trips on the caller's
thread and failed STORE after the store's timeouts.)"""
import contextlib
import threading
import time

import liner

from faultkit import report, wait_until

FROZEN_S = 3.0


class Inbox:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def __call__(self, to, from_, data):
        with self.lock:
            self.items.append((time.monotonic(), bytes(data)))

    def count(self):
        with self.lock:
            return len(self.items)


@contextlib.contextmanager
def sender_and_two_replicas(redis, first_at_least_once, on_status=None):
    """Replicas a and b of nw_jobs, and a sender s that has read the topic and has a channel to
    a only: its first message went to a, then b joined and s heard of it. Yields
    (s, b, got_a, got_b); closes all three. `on_status` sees s's status events too."""
    got_a, got_b = Inbox(), Inbox()
    connected = []  # PEER_CONNECTED peers of nw_jobs: a's channel, then b joining the topic
    a = liner.Client("nw_a", "nw_jobs", "127.0.0.1:0", redis.url)
    b = liner.Client("nw_b", "nw_jobs", "127.0.0.1:0", redis.url)
    s = liner.Client("nw_s", "nw_s_topic", "127.0.0.1:0", redis.url)

    def status(kind, topic, peer, message):
        if kind == liner.PEER_CONNECTED and topic == "nw_jobs":
            connected.append(peer)
        if on_status:
            on_status(kind, topic, peer, message)

    s.set_status_callback(status)
    try:
        assert a.run(got_a)
        assert s.run(lambda *x: None)
        assert s.send_to("nw_jobs", b"first", first_at_least_once)  # the route is read, the channel to a opened
        assert wait_until(lambda: got_a.count() == 1, 10)
        assert b.run(got_b)
        assert wait_until(lambda: b.published_addr() in connected, 5), "the sender did not hear of the new replica"
        yield s, b, got_a, got_b
    finally:
        for c in (s, b, a):
            c.close()


def test_a_send_to_a_new_replica_returns_at_once_while_redis_is_frozen(private_redis):
    redis = private_redis(persistent=False)
    with sender_and_two_replicas(redis, False) as (s, b, got_a, got_b):
        # Round-robin goes to b next: the sender has no channel to b yet.
        redis.freeze()
        frozen_at = time.monotonic()
        try:
            slowest = 0.0
            sent = 0
            while time.monotonic() - frozen_at < FROZEN_S - 0.5:
                t0 = time.monotonic()
                assert s.send_to("nw_jobs", b"m%d" % sent, False), s.last_error_message()
                slowest = max(slowest, time.monotonic() - t0)
                sent += 1
                time.sleep(0.01)
            a_during = got_a.count() - 1
        finally:
            redis.thaw()
        assert slowest < 0.5, "a send waited %.3f s on the frozen store" % slowest
        # Half went to a, which the sender knew: they arrived while Redis was frozen.
        assert a_during >= sent // 2 - 5, (a_during, sent)
        assert got_b.count() == 0 or got_b.items[0][0] > frozen_at + FROZEN_S - 1
        assert wait_until(lambda: got_b.count() >= sent // 2 - 1, 10), (got_b.count(), sent)
        with got_b.lock:  # what waited for the channel left in the order it was sent
            b_seqs = [int(d[1:]) for _, d in got_b.items]
        assert b_seqs == sorted(b_seqs), b_seqs[:20]
        report("send_never_waits_on_store", sent=sent, slowest_ms=round(slowest * 1000, 2),
               to_known_while_frozen=a_during, to_new_after=got_b.count())


def test_what_still_waits_at_stop_is_dropped_and_reported(private_redis):
    redis = private_redis(persistent=False)
    errors = []

    def on_status(kind, topic, peer, message):
        if kind == liner.SENDER_SEND_ERROR:
            errors.append((peer, message))

    with sender_and_two_replicas(redis, True, on_status) as (s, b, got_a, got_b):
        b_addr = b.published_addr()
        redis.freeze()
        try:
            for i in range(4):  # two to a, two wait for b's channel
                assert s.send_to("nw_jobs", b"m%d" % i, True), s.last_error_message()
            s.close()
        finally:
            redis.thaw()
        dropped = [e for e in errors if e[0] == b_addr]
        assert len(dropped) == 1, errors
        assert dropped[0][1] == "2 messages to %s dropped: the client stopped before the store answered" % b_addr
