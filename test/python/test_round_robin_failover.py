"""send_to's round-robin skips a replica the sender cannot reach while another one is up
(include/liner.h, lnr_send_to; client.cpp, pick_targets: the reachable() check).

Two replicas serve rf_topic: a live liner client, and an address in the directory where nothing
listens (a replica that crashed without unregistering). Until the sender has tried the dead one
it counts as reachable, so one message of the first two goes there (and waits in its offline
queue). Once the connect failed (SENDER_ROUTE_LOST), every send_to goes to the live replica.
"""
import liner
from extended_testkit import EventLog
from liner_testkit import Inbox, free_port, wait_until

JOBS = 40


def test_send_to_skips_a_replica_that_cannot_be_reached(make_client, rdb):
    dead = "127.0.0.1:%d" % free_port()  # nobody listens there
    rdb("HSET", "lnr_topic:rf_topic:addr", dead, "rf_dead")
    live = make_client("rf_live", "rf_topic")
    inbox = Inbox()
    assert live.run(inbox)
    assert len(rdb.hgetall("lnr_topic:rf_topic:addr")) == 2
    sender = make_client("rf_sender", "rf_sender_topic")
    events = EventLog()
    assert sender.set_status_callback(events)
    assert sender.run(Inbox())

    # Both replicas look reachable before the first connect: one probe each, in turn.
    probes = [b"probe 1", b"probe 2"]
    for p in probes:
        assert sender.send_to("rf_topic", p, True)
    lost = events.wait(liner.SENDER_ROUTE_LOST, "rf_topic", dead, timeout=5)
    assert lost is not None, events.snapshot()
    assert inbox.wait_count(1, 5) == 1
    probe_live = inbox.payloads()[0]
    assert probe_live in probes

    jobs = [b"job %d" % i for i in range(JOBS)]
    for j in jobs:
        assert sender.send_to("rf_topic", j, True)
    assert inbox.wait_count(1 + JOBS, 5) == 1 + JOBS, sender.stats()
    # Everything settled: the live replica acknowledged its messages, the dead one's probe is
    # stored for it, and nothing else is.
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0 and sender.pending_count() == 1, 5), \
        (sender.stats(), sender.pending_count())
    assert inbox.payloads() == [probe_live] + jobs
    assert sender.stats()["persisted"] == 1
    assert [(addr, count) for addr, _topic, _name, count in sender.pending_by_peer() if count] == [(dead, 1)]
