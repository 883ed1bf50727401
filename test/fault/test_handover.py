"""Hand-over: at-least-once messages of send_to that wait for a peer that left their topic (its
lease lapsed) go to the topic's remaining peers within 15 s of the departure becoming known,
whether they waited in Redis (the peer was killed) or in the sender's RAM (the peer froze with
the messages in flight). With nobody left they wait for that peer; send_all copies never move;
with hand-over off (peer affinity) they wait for their peer as in liner_broker."""
import contextlib
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


@contextlib.contextmanager
def running_producer(redis, name, handover=True):
    """A running liner.Client (hand-over as given, set before run), closed afterwards."""
    producer = liner.Client(name, name + "_topic", "127.0.0.1:0", redis.url)
    try:
        assert producer.handover() is True  # the default
        assert producer.set_handover(handover)
        assert producer.run(lambda *a: None)
        yield producer
    finally:
        producer.close()


def warm_up(producer, topic, log, everyone=False):
    """One message through, so that the producer has a channel to the peer behind `log`."""
    send(producer, topic, "warm", 1, everyone=everyone)
    assert wait_until(lambda: seqs(log, "warm") == [0], 5)


def kill_and_store(producer, victim, addr, topic, count):
    """Kills `victim` and sends `count` jobs to `topic`: they wait in Redis for it (with the
    warm-up, if it died before it acknowledged that). Returns how many wait."""
    victim.kill()
    send(producer, topic, "job", count)
    assert wait_until(lambda: stored_for(producer, addr) >= count, 10), producer.pending_by_peer()
    return stored_for(producer, addr)


def lone_worker(peers, redis, tmp_path, name, topic):
    """A worker serving `topic` alone: (its process, its address, its record file)."""
    log = tmp_path / (name + ".log")
    w = worker(peers, name, topic, redis, log)
    return w, w.expect("READY"), log


def test_jobs_stored_for_a_killed_worker_wait_while_alone_then_go_to_a_new_replica(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0, addr0, log0 = lone_worker(peers, redis, tmp_path, "hv_w0", "hv_jobs")
    with running_producer(redis, "hv_producer") as producer:
        warm_up(producer, "hv_jobs", log0)
        stored = kill_and_store(producer, w0, addr0, "hv_jobs", 20)  # nobody but w0 to take them
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


def test_jobs_in_flight_to_a_frozen_worker_go_to_its_replica(peers, private_redis, tmp_path):
    """The frozen worker's socket took its share and never acknowledges it: the messages are in
    the producer's RAM. Its lease lapses; its share goes to the other worker."""
    redis = private_redis(persistent=False)
    w0 = worker(peers, "hv_f0", "hv_frozen", redis, tmp_path / "f0.log")
    w1 = worker(peers, "hv_f1", "hv_frozen", redis, tmp_path / "f1.log")
    addr0, addr1 = w0.expect("READY"), w1.expect("READY")
    with running_producer(redis, "hv_fproducer") as producer:
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
    w0.kill()


def test_send_all_copies_for_a_killed_subscriber_are_never_handed_over(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    s0, addr0, log0 = lone_worker(peers, redis, tmp_path, "hv_s0", "hv_feed")
    s1 = worker(peers, "hv_s1", "hv_feed", redis, tmp_path / "s1.log")
    s1.expect("READY")
    with running_producer(redis, "hv_aproducer") as producer:
        warm_up(producer, "hv_feed", log0, everyone=True)
        s0.kill()
        send(producer, "hv_feed", "event", 10, everyone=True)
        assert wait_until(lambda: sorted(seqs(tmp_path / "s1.log", "event")) == list(range(10)), 5)
        assert wait_until(lambda: addr0 not in directory(redis, "hv_feed"), LEASE_BOUND_S + 2)
        time.sleep(3)  # three hand-over passes
        assert sorted(seqs(tmp_path / "s1.log", "event")) == list(range(10))  # no second copy
        assert stored_for(producer, addr0) >= 10  # s0's copies wait for s0 (and the warm-up's, unacknowledged)


def test_with_handover_off_jobs_wait_for_their_peer(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0, addr0, log0 = lone_worker(peers, redis, tmp_path, "hv_a0", "hv_affine")
    with running_producer(redis, "hv_affinity", handover=False) as producer:
        assert producer.handover() is False
        assert not producer.set_handover(True)  # only before run
        assert producer.last_error_code() == liner.ERR_ALREADY_RUNNING
        warm_up(producer, "hv_affine", log0)
        kill_and_store(producer, w0, addr0, "hv_affine", 10)
        worker(peers, "hv_a1", "hv_affine", redis, tmp_path / "a1.log").expect("READY")
        assert wait_until(lambda: addr0 not in directory(redis, "hv_affine"), LEASE_BOUND_S + 2)
        time.sleep(3)
        assert seqs(tmp_path / "a1.log", "job") == []
        assert stored_for(producer, addr0) >= 10
        assert redis.cli("KEYS", "lnr_connection:*:handover") == ""  # nothing was marked
        # The same worker back (same name): it gets them all, in order.
        worker(peers, "hv_a0", "hv_affine", redis, log0).expect("READY")
        assert wait_until(lambda: seqs(log0, "job") == list(range(10)), 10), seqs(log0, "job")


def test_a_restarted_sender_hands_over_what_it_stored_for_a_peer_that_left_meanwhile(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    w0, addr0, log0 = lone_worker(peers, redis, tmp_path, "hv_r0", "hv_restart")
    with running_producer(redis, "hv_rproducer") as producer:
        warm_up(producer, "hv_restart", log0)
        kill_and_store(producer, w0, addr0, "hv_restart", 10)
    # While the producer is down, w0's lease lapses and a replica takes the topic.
    worker(peers, "hv_r1", "hv_restart", redis, tmp_path / "r1.log").expect("READY")
    assert wait_until(lambda: addr0 not in directory(redis, "hv_restart"), LEASE_BOUND_S + 2)
    with running_producer(redis, "hv_rproducer"):  # no send: what it stored goes all the same
        assert wait_until(lambda: sorted(set(seqs(tmp_path / "r1.log", "job"))) == list(range(10)),
                          HANDOVER_BOUND_S), seqs(tmp_path / "r1.log", "job")


def lrange_calls(redis):
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_lrange:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def test_jobs_behind_a_long_run_of_send_all_copies_are_found_and_the_copies_cost_no_reads(peers, private_redis,
                                                                                            tmp_path):
    """9,000 send_all copies wait for a dead worker ahead of 10 jobs: more than one pass reads.
    The jobs reach the replica, the copies never do, and once nothing is left to hand over the
    queue is not read again (only its marks, once a pass)."""
    redis = private_redis(persistent=False)
    w0, addr0, log0 = lone_worker(peers, redis, tmp_path, "hv_m0", "hv_mixed")
    with running_producer(redis, "hv_mproducer") as producer:
        warm_up(producer, "hv_mixed", log0)
        w0.kill()
        for i in range(9000):
            assert producer.send_all("hv_mixed", b"copy:%d:%f" % (i, time.monotonic()), True)
        send(producer, "hv_mixed", "job", 10)
        assert wait_until(lambda: stored_for(producer, addr0) >= 9010, 10), producer.pending_by_peer()
        w1 = worker(peers, "hv_m1", "hv_mixed", redis, tmp_path / "m1.log")
        w1.expect("READY")
        assert wait_until(lambda: addr0 not in directory(redis, "hv_mixed"), LEASE_BOUND_S + 2)
        assert wait_until(lambda: sorted(set(seqs(tmp_path / "m1.log", "job"))) == list(range(10)),
                          HANDOVER_BOUND_S), seqs(tmp_path / "m1.log", "job")
        # The copies stay (the warm-up, if w0 died before acknowledging it, went with the jobs).
        assert wait_until(lambda: stored_for(producer, addr0) == 9000, 5), producer.pending_by_peer()
        time.sleep(2)  # the sweep that finds nothing left
        before = lrange_calls(redis)
        time.sleep(3)
        reads = lrange_calls(redis) - before
        report("handover_idle_reads", lrange_calls_in_3_s=reads)
        assert reads <= 6, reads  # the marks, once a pass; not the 9 chunks of the queue
        assert seqs(tmp_path / "m1.log", "copy") == []
