"""Messages whose spill to the offline queue is answered too late are neither lost nor reordered.

A listener goes away; its sender stores the at-least-once messages meant for it (one RPUSH per
batch). The reply to that RPUSH is held back 2.5 s by a proxy, past the client's 2 s time-out,
so the sender does not know that Redis stored them; and the listener comes back while the reply
is held. The sender's new connection must wait for the spill's outcome before it reads the
queue, keep the frames it could not confirm, and replay the stored ones first: every message
arrives, in order (a repeat is allowed: at least once), and the queue ends empty.
"""
import time

import liner
from liner_testkit import Inbox, free_port, seq_of, seq_payload, wait_until
from redis_proxy import RedisProxy

N = 200


def test_a_spill_answered_late_loses_and_reorders_nothing(redis):
    addr = "127.0.0.1:%d" % free_port()
    made = []

    def client(name, topic, url, localhost="127.0.0.1:0"):
        c = liner.Client(name, topic, localhost, url)
        made.append(c)
        return c

    with RedisProxy(redis.port) as proxy:
        try:
            inbox = Inbox()
            listener = client("spill_held_rx", "spill_held_topic", redis.url, addr)
            assert listener.run(inbox)
            sender = client("spill_held_tx", "spill_held_tx_topic", proxy.url)
            assert sender.run(Inbox())
            assert sender.send_to("spill_held_topic", seq_payload(0), True)
            assert inbox.wait_count(1) == 1
            assert listener.close()

            proxy.delay_reply({"RPUSH"}, seconds=2.5, times=1)
            for i in range(1, N + 1):
                assert sender.send_to("spill_held_topic", seq_payload(i), True), sender.last_error_message()
            assert wait_until(lambda: proxy.held, 5), "the sender never spilled"
            time.sleep(0.5)  # the listener returns while the spill's reply is held
            inbox = Inbox()
            listener = client("spill_held_rx", "spill_held_topic", redis.url, addr)
            assert listener.run(inbox)
            seen = lambda: {seq_of(d) for d in inbox.payloads()}  # noqa: E731
            assert wait_until(lambda: len(seen() & set(range(1, N + 1))) == N, 20), \
                "missing %s" % sorted(set(range(1, N + 1)) - seen())[:10]
            assert wait_until(lambda: sender.pending_count() == 0, 10), sender.pending_count()
        finally:
            for c in reversed(made):
                c.close()

    order = [seq_of(d) for d in inbox.payloads() if seq_of(d) > 0]
    firsts = []
    for s in order:
        if s not in firsts:
            firsts.append(s)
    print("delivered %d (%d repeats) after a spill answered 2.5 s late" % (len(order), len(order) - N))
    assert firsts == list(range(1, N + 1)), "out of order: %s" % firsts[:20]
