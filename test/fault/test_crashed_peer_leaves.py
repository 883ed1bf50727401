"""A peer that dies without stopping (SIGKILL: no goodbye) leaves the directory within 10 s:
its lease lapses (7 s after its last renewal) and the next sweep by a peer using the topic
removes it and announces the leave, so producers stop choosing it and the surviving replicas
get the work. An entry without a lease (what a liner_broker peer writes) is never removed so,
and a peer that only paused past its lease registers again by itself when it resumes."""
import signal
import time

import liner

from faultkit import read_records, report, wait_until

BOUND_S = 10.0


def directory(redis, topic):
    return set(redis.cli("HKEYS", "lnr_topic:%s:addr" % topic).split())


def test_a_killed_replica_leaves_the_directory_and_gets_no_more_work(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    workers, outs = [], []
    for i in range(3):
        outs.append(str(tmp_path / ("w%d.log" % i)))
        workers.append(peers("listen", "cp_worker%d" % i, "cp_jobs", redis.url, "--out", outs[i]))
    addrs = [w.expect("READY") for w in workers]
    # A liner_broker 1.3.1 peer's entry: an address with no lease (nobody listens there).
    redis.cli("HSET", "lnr_topic:cp_jobs:addr", "127.0.0.1:9", "cp_broker_peer")
    events = []
    producer = liner.Client("cp_producer", "cp_producer_topic", "127.0.0.1:0", redis.url)
    producer.set_status_callback(lambda kind, topic, peer, message: events.append((time.monotonic(), kind, peer)))
    try:
        assert producer.run(lambda *a: None)
        assert producer.send_to("cp_jobs", b"warm-up", True)
        assert directory(redis, "cp_jobs") == set(addrs) | {"127.0.0.1:9"}

        workers[0].kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: addrs[0] not in directory(redis, "cp_jobs"), BOUND_S + 2), directory(redis, "cp_jobs")
        gone_after = time.monotonic() - killed_at
        assert wait_until(lambda: any(k == liner.PEER_DISCONNECTED and p == addrs[0] and t >= killed_at
                                      for t, k, p in list(events)), 3), events
        # The others stay, the broker peer's entry too (no lease: never removed so).
        assert directory(redis, "cp_jobs") == {addrs[1], addrs[2], "127.0.0.1:9"}
        leases = redis.cli("HKEYS", "lnr_topic:cp_jobs:lease").split()
        assert sorted(leases) == sorted(addrs[1:])

        # Round-robin now skips it: what is sent goes to the two that live (the broker peer's
        # address refuses connections, so its share waits in Redis, as with liner_broker).
        before = [len(read_records(o)) for o in outs]
        for i in range(30):
            assert producer.send_to("cp_jobs", b"job %d" % i, True)
        assert wait_until(lambda: sum(len(read_records(o)) for o in outs[1:]) - sum(before[1:]) >= 20, 10)
        assert len(read_records(outs[0])) == before[0]

        report("crashed_peer_leaves", gone_after_s=round(gone_after, 2), bound_s=BOUND_S)
        assert gone_after < BOUND_S
    finally:
        producer.close()


def test_a_peer_paused_past_its_lease_comes_back_by_itself(peers, private_redis, tmp_path):
    redis = private_redis(persistent=False)
    worker = peers("listen", "cp_paused", "cp_paused_topic", redis.url, "--out", str(tmp_path / "w.log"))
    addr = worker.expect("READY")
    watcher = liner.Client("cp_watcher", "cp_watcher_topic", "127.0.0.1:0", redis.url)
    try:
        assert watcher.run(lambda *a: None)
        assert watcher.refresh_address_topic("cp_paused_topic")  # it uses the topic: it sweeps it
        worker.proc.send_signal(signal.SIGSTOP)
        try:
            assert wait_until(lambda: addr not in directory(redis, "cp_paused_topic"), BOUND_S + 2)
        finally:
            worker.proc.send_signal(signal.SIGCONT)
        assert wait_until(lambda: addr in directory(redis, "cp_paused_topic"), 5)
    finally:
        watcher.close()


def test_a_shorter_lease_removes_a_killed_peer_sooner(peers, private_redis, tmp_path):
    """The lease is set by the peer that holds it (set_lease, process-wide): a worker with a
    3 s lease is gone about 3 s after it is killed."""
    redis = private_redis(persistent=False)
    worker = peers("listen", "cp_short", "cp_short_topic", redis.url, "--out", str(tmp_path / "w.log"),
                   "--lease-ms", 3000)
    addr = worker.expect("READY")
    watcher = liner.Client("cp_short_watcher", "cp_short_watcher_topic", "127.0.0.1:0", redis.url)
    try:
        assert watcher.run(lambda *a: None)
        assert watcher.refresh_address_topic("cp_short_topic")
        worker.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: addr not in directory(redis, "cp_short_topic"), 8)
        gone_after = time.monotonic() - killed_at
        report("short_lease", gone_after_s=round(gone_after, 2), lease_s=3)
        assert gone_after < 5.5
    finally:
        watcher.close()
