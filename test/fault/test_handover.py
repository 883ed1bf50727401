"""Hand-over: at-least-once messages of send_to that wait for a peer that left their topic (its
lease lapsed) go to the topic's remaining peers within 15 s of the departure becoming known,
whether they waited in Redis (the peer was killed) or in the sender's RAM (the peer froze with
the messages in flight). With nobody left they wait for that peer; send_all copies never move;
with hand-over off (peer affinity) they wait for their peer as in liner_broker."""
import signal
import time

import liner

from faultkit import read_records, report, wait_until

LEASE_MS = 3000
LEASE_BOUND_S = 10.0   # the liveness bound (test_crashed_peer_leaves.py)
HANDOVER_BOUND_S = 15.0  # departure known -> handed messages delivered


def directory(redis, topic):
    return set(redis.cli("HKEYS", "lnr_topic:%s:addr" % topic).split())


def worker(peers, name, topic, redis, out):
    return peers("listen", name, topic, redis.url, "--out", str(out), "--lease-ms", LEASE_MS)


def seqs(path, tag):
    return [r.seq for r in read_records(path) if r.tag == tag]


def stored_for(producer, addr):
    """What waits in Redis for the peer at `addr` (its offline queue)."""
    return sum(count for a, _, _, count in producer.pending_by_peer() or [] if a == addr)


def send(producer, topic, tag, count, *, everyone=False):
    for i in range(count):
        payload = b"%s:%d:%f" % (tag.encode(), i, time.monotonic())
        ok = producer.send_all(topic, payload, True) if everyone else producer.send_to(topic, payload, True)
        assert ok, producer.last_error_message()


def test_jobs_stored_for_a_killed_worker_wait_while_alone_then_go_to_a_new_replica(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0 = worker(peers, "hv_w0", "hv_jobs", redis, tmp_path / "w0.log")
    addr0 = w0.expect("READY")
    producer = liner.Client("hv_producer", "hv_producer_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.run(lambda *a: None)
        send(producer, "hv_jobs", "warm", 1)
        assert wait_until(lambda: seqs(tmp_path / "w0.log", "warm") == [0], 5)

        w0.kill()
        send(producer, "hv_jobs", "job", 20)  # nobody to take them but w0: they wait in Redis
        # (With the warm-up, if w0 died before it acknowledged it.)
        assert wait_until(lambda: stored_for(producer, addr0) >= 20, 10), producer.pending_by_peer()
        stored = stored_for(producer, addr0)
        assert wait_until(lambda: addr0 not in directory(redis, "hv_jobs"), LEASE_BOUND_S + 2)
        time.sleep(2)  # two hand-over passes: with no replica alive they keep waiting for w0
        assert stored_for(producer, addr0) == stored

        w1 = worker(peers, "hv_w1", "hv_jobs", redis, tmp_path / "w1.log")
        w1.expect("READY")
        joined_at = time.monotonic()
        # Frozen (for less than its lease) as it takes them: until it acknowledges them, they
        # stay in w0's queue too, so a producer that died now would lose nothing.
        w1.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(2)
            assert stored_for(producer, addr0) == stored
        finally:
            w1.proc.send_signal(signal.SIGCONT)
        assert wait_until(lambda: sorted(set(seqs(tmp_path / "w1.log", "job"))) == list(range(20)),
                          HANDOVER_BOUND_S), seqs(tmp_path / "w1.log", "job")
        handed_after = time.monotonic() - joined_at
        # Removed from w0's queue once w1 acknowledged them, and the marks with the queue.
        assert wait_until(lambda: stored_for(producer, addr0) == 0, 5), producer.pending_by_peer()
        assert redis.cli("KEYS", "lnr_connection:*:handover") == ""
        report("handover_from_store", handed_after_s=round(handed_after, 2), bound_s=HANDOVER_BOUND_S)
    finally:
        producer.close()


def test_jobs_in_flight_to_a_frozen_worker_go_to_its_replica(peers, private_redis, tmp_path):
    """The frozen worker's socket took its share and never acknowledges it: the messages are in
    the producer's RAM. Its lease lapses; its share goes to the other worker."""
    redis = private_redis(persistent=False)
    w0 = worker(peers, "hv_f0", "hv_frozen", redis, tmp_path / "f0.log")
    w1 = worker(peers, "hv_f1", "hv_frozen", redis, tmp_path / "f1.log")
    addr0, addr1 = w0.expect("READY"), w1.expect("READY")
    producer = liner.Client("hv_fproducer", "hv_fproducer_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.run(lambda *a: None)
        assert producer.refresh_address_topic("hv_frozen")
        w0.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        send(producer, "hv_frozen", "job", 40)
        assert wait_until(lambda: addr0 not in directory(redis, "hv_frozen"), LEASE_BOUND_S + 2)
        left_after = time.monotonic() - stopped_at
        assert wait_until(lambda: sorted(set(seqs(tmp_path / "f1.log", "job"))) == list(range(40)),
                          HANDOVER_BOUND_S), sorted(seqs(tmp_path / "f1.log", "job"))
        report("handover_from_ram", left_after_s=round(left_after, 2),
               handed_after_s=round(time.monotonic() - stopped_at - left_after, 2))
        assert directory(redis, "hv_frozen") == {addr1}
    finally:
        w0.kill()
        producer.close()


def test_send_all_copies_for_a_killed_subscriber_are_never_handed_over(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    s0 = worker(peers, "hv_s0", "hv_feed", redis, tmp_path / "s0.log")
    s1 = worker(peers, "hv_s1", "hv_feed", redis, tmp_path / "s1.log")
    addr0, _ = s0.expect("READY"), s1.expect("READY")
    producer = liner.Client("hv_aproducer", "hv_aproducer_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.run(lambda *a: None)
        send(producer, "hv_feed", "warm", 1, everyone=True)
        assert wait_until(lambda: seqs(tmp_path / "s0.log", "warm") == [0], 5)
        s0.kill()
        send(producer, "hv_feed", "event", 10, everyone=True)
        assert wait_until(lambda: sorted(seqs(tmp_path / "s1.log", "event")) == list(range(10)), 5)
        assert wait_until(lambda: addr0 not in directory(redis, "hv_feed"), LEASE_BOUND_S + 2)
        time.sleep(3)  # three hand-over passes
        assert sorted(seqs(tmp_path / "s1.log", "event")) == list(range(10))  # no second copy
        assert stored_for(producer, addr0) >= 10  # s0's copies wait for s0 (and the warm-up's, unacknowledged)
    finally:
        producer.close()


def test_with_handover_off_jobs_wait_for_their_peer(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0 = worker(peers, "hv_a0", "hv_affine", redis, tmp_path / "a0.log")
    addr0 = w0.expect("READY")
    producer = liner.Client("hv_affinity", "hv_affinity_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.handover() is True
        assert producer.set_handover(False)
        assert producer.handover() is False
        assert producer.run(lambda *a: None)
        assert not producer.set_handover(True)
        assert producer.last_error_code() == liner.ERR_ALREADY_RUNNING
        send(producer, "hv_affine", "warm", 1)
        assert wait_until(lambda: seqs(tmp_path / "a0.log", "warm") == [0], 5)
        w0.kill()
        send(producer, "hv_affine", "job", 10)
        w1 = worker(peers, "hv_a1", "hv_affine", redis, tmp_path / "a1.log")
        w1.expect("READY")
        assert wait_until(lambda: addr0 not in directory(redis, "hv_affine"), LEASE_BOUND_S + 2)
        time.sleep(3)
        assert seqs(tmp_path / "a1.log", "job") == []
        assert stored_for(producer, addr0) >= 10
        assert redis.cli("KEYS", "lnr_connection:*:handover") == ""  # nothing was marked
        # The same worker back (same name): it gets them all, in order.
        worker(peers, "hv_a0", "hv_affine", redis, tmp_path / "a0.log").expect("READY")
        assert wait_until(lambda: seqs(tmp_path / "a0.log", "job") == list(range(10)), 10), \
            seqs(tmp_path / "a0.log", "job")
    finally:
        producer.close()


def test_a_restarted_sender_hands_over_what_it_stored_for_a_peer_that_left_meanwhile(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0 = worker(peers, "hv_r0", "hv_restart", redis, tmp_path / "r0.log")
    addr0 = w0.expect("READY")
    producer = liner.Client("hv_rproducer", "hv_rproducer_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.run(lambda *a: None)
        send(producer, "hv_restart", "warm", 1)
        assert wait_until(lambda: seqs(tmp_path / "r0.log", "warm") == [0], 5)
        w0.kill()
        send(producer, "hv_restart", "job", 10)
        assert wait_until(lambda: stored_for(producer, addr0) >= 10, 10), producer.pending_by_peer()
    finally:
        producer.close()
    # While the producer is down, w0's lease lapses and a replica takes the topic.
    w1 = worker(peers, "hv_r1", "hv_restart", redis, tmp_path / "r1.log")
    w1.expect("READY")
    assert wait_until(lambda: addr0 not in directory(redis, "hv_restart"), LEASE_BOUND_S + 2)
    producer = liner.Client("hv_rproducer", "hv_rproducer_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.run(lambda *a: None)  # no send: what it stored goes all the same
        assert wait_until(lambda: sorted(set(seqs(tmp_path / "r1.log", "job"))) == list(range(10)),
                          HANDOVER_BOUND_S), seqs(tmp_path / "r1.log", "job")
    finally:
        producer.close()
