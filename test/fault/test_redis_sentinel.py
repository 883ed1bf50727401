"""Redis behind Sentinel (redis+sentinel://), with real servers (sentinel_kit.SentinelSet: one
master, one replica, three sentinels):

- peers find the master through the sentinels: traffic and offline delivery work;
- a bad master name and unreachable sentinels are clear ERR_STORE errors on client creation,
  within a few seconds, without the password;
- the master is SIGKILLed while at-least-once traffic runs between two peer processes: within
  15 s every peer has moved to the new master (its "redis master ... is now" log line), store
  calls work again, the directory names both peers (and a directory entry deleted on the new
  master, as async replication may lose it, comes back), and every accepted message is
  delivered (duplicates allowed and reported);
- the old master comes back, the sentinels make it a replica, and a second SIGKILL fails over
  back to it, with the same checks;
- messages sent to a listener that is away (the offline queue in Redis) while the master is
  SIGKILLed: the number lost (async replication) is measured and must be 0.
"""
import threading
import time

import liner
import pytest

from faultkit import listener_at, read_records, report, stored_backlog, wait_until
from sentinel_kit import SentinelSet, cli

FAILOVER_BOUND_S = 15.0


@pytest.fixture
def sentinels():
    made = []

    def make(**kwargs):
        s = SentinelSet(**kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def delivered(out, tag="m"):
    return [r.seq for r in read_records(out) if r.tag == tag]


def accepted_seqs(sender, first, count):
    refused = {int(l.split()[0]) for l in sender.lines_starting("REFUSED")} | \
              {int(l.split()[0]) for l in sender.lines_starting("BUSY")}
    return set(range(first, first + count)) - refused


def test_peers_work_over_a_sentinel_url(peers, sentinels, tmp_path):
    s = sentinels()
    out = str(tmp_path / "listener.log")
    listener = peers("listen", "sa_listener", "sa_topic", s.url, "--out", out)
    listener.expect("READY")
    sender = liner.Client("sa_sender", "sa_sender_topic", "127.0.0.1:0", s.url)
    try:
        assert sender.run(lambda *a: None), sender.last_error_message()
        for i in range(1, 101):
            assert sender.send_to("sa_topic", b"m:%d:0:" % i, True), sender.last_error_message()
        assert wait_until(lambda: sorted(set(delivered(out))) == list(range(1, 101)), 10)
        # The directory and counters live on the master the sentinels name.
        master = s.master_port()
        assert cli(master, "EXISTS", "lnr_topic:sa_topic:key") == "1"

        # Offline delivery: the listener leaves, messages wait in Redis, a new one drains them.
        assert listener.close() == 0
        assert wait_until(lambda: not sender.list_addresses("sa_topic"), 10)
        for i in range(101, 201):
            assert sender.send_to("sa_topic", b"m:%d:0:" % i, True), sender.last_error_message()
        listener = peers("listen", "sa_listener", "sa_topic", s.url, "--out", out)
        listener.expect("READY")
        assert wait_until(lambda: set(range(1, 201)) <= set(delivered(out)), 15), \
            sorted(set(range(1, 201)) - set(delivered(out)))[:20]
    finally:
        sender.close()


def test_bad_master_name_and_dead_sentinels_fail_clearly(sentinels):
    s = sentinels()
    bad_name = s.url.replace("/liner_m/", "/no_such_master/")
    t = time.monotonic()
    with pytest.raises(liner.LinerError) as e:
        liner.Client("sb_bad", "sb_bad_topic", "127.0.0.1:0", bad_name)
    assert e.value.code == liner.ERR_STORE
    assert "no_such_master" in str(e.value) and "know no master" in str(e.value), str(e.value)
    assert time.monotonic() - t < 3.0

    with_password = s.url.replace("redis+sentinel://", "redis+sentinel://u:s3cr3t@")
    s.stop_sentinels()
    t = time.monotonic()
    with pytest.raises(liner.LinerError) as e:
        liner.Client("sb_dead", "sb_dead_topic", "127.0.0.1:0", with_password)
    took = time.monotonic() - t
    assert e.value.code == liner.ERR_STORE
    assert "no redis sentinel reachable" in str(e.value), str(e.value)
    assert "s3cr3t" not in str(e.value)
    assert took < 3.0, took


def failover_round(peers, s, tmp_path, name, first, count=3000, rate=300, kill=True):
    """At-least-once traffic between two peer processes; the master is SIGKILLed a third of the
    way in. Returns the measured numbers; asserts the fail-over bound, the directory and no loss."""
    out = str(tmp_path / (name + ".log"))
    listener = peers("listen", name + "_listener", name + "_topic", s.url, "--out", out)
    listener.expect("READY")
    sender = peers("send", name + "_sender", name + "_sender_topic", s.url, "--to", name + "_topic",
                   "--count", count, "--first", first, "--rate", rate)
    sender.expect("READY")
    idle = liner.Client(name + "_idle", name + "_idle_topic", "127.0.0.1:0", s.url)
    try:
        assert idle.run(lambda *a: None)
        assert wait_until(lambda: len(delivered(out)) >= count // 3, 20)
        old = s.master_port()
        if kill:
            s.kill(old)
        else:  # a planned fail-over: the old master lives on as a replica
            assert cli(next(iter(s.sentinels)), "SENTINEL", "FAILOVER", s.name) == "OK"
        killed_at = time.monotonic()

        # Store calls work again: a read through the idle client, which only talks to a master.
        assert wait_until(lambda: idle.list_addresses(name + "_topic"), FAILOVER_BOUND_S, 0.05), \
            idle.last_error_message()
        store_back = time.monotonic() - killed_at
        new = s.wait_master(lambda p: p != old, FAILOVER_BOUND_S)
        assert new, "the sentinels did not fail over within %.0f s" % FAILOVER_BOUND_S

        # Every peer moved to the new master (each process logs the switch once per connection).
        moved = "redis master of '%s' is now 127.0.0.1:%d" % (s.name, new)
        for peer in (listener, sender):
            assert wait_until(lambda: any(moved in l for l in peer.stderr), FAILOVER_BOUND_S - store_back), \
                "\n".join(peer.stderr[-20:])
        # The directory is whole on the new master: both peers are found by a fresh client.
        fresh = liner.Client(name + "_fresh", name + "_fresh_topic", "127.0.0.1:0", s.url)
        try:
            assert wait_until(lambda: fresh.list_addresses(name + "_topic") and
                              fresh.list_addresses(name + "_sender_topic") is not None, 10)
            assert cli(new, "EXISTS", "lnr_topic:%s_topic:key" % name) == "1"
            # What async replication may drop: the listener's directory entry, removed on the
            # new master by hand. The running listener puts it back (lease renewal).
            assert cli(new, "DEL", "lnr_topic:%s_topic:addr" % name) == "1"
            t = time.monotonic()
            assert wait_until(lambda: fresh.list_addresses(name + "_topic"), 15, 0.1)
            restored = time.monotonic() - t
        finally:
            fresh.close()

        assert sender.expect("DONE", timeout=count / rate + 30)
        want = accepted_seqs(sender, first, count)
        assert wait_until(lambda: want <= set(delivered(out)), 30)
        got = delivered(out)
        missing = sorted(want - set(got))
        assert not missing, missing[:20]
        # Delivery over TCP does not wait for the store: the longest gap between deliveries
        # around the kill is what the application sees of the fail-over.
        times = sorted(r.received for r in read_records(out))
        gap = max(b - a for a, b in zip(times, times[1:]))
        numbers = dict(store_back_s=round(store_back, 2), accepted=len(want), delivered=len(got),
                       duplicates=len(got) - len(set(got)), lost=len(missing),
                       longest_delivery_gap_s=round(gap, 2), directory_restored_s=round(restored, 2))
        report(name, **numbers)
        return numbers, old, new
    finally:
        idle.close()
        listener.close()
        sender.close()


def test_master_killed_during_traffic_and_back_again(peers, sentinels, tmp_path):
    s = sentinels()
    first, old, new = failover_round(peers, s, tmp_path, "sf1", 1)
    assert first["lost"] == 0

    # The old master comes back empty; the sentinels make it a replica of the new one.
    s.start_server(old)
    assert s.wait_replica_synced(old, 30), "the old master did not rejoin as a replica"
    second, old2, new2 = failover_round(peers, s, tmp_path, "sf2", 1)
    assert (old2, new2) == (new, old)  # failed over back
    assert second["lost"] == 0


def test_planned_failover_moves_every_connection(peers, sentinels, tmp_path):
    """SENTINEL FAILOVER: the old master keeps running and becomes a replica, so nothing breaks
    a connection by itself; the peers must follow +switch-master (or READONLY) to the new one."""
    s = sentinels()
    numbers, old, new = failover_round(peers, s, tmp_path, "sp", 1, kill=False)
    assert numbers["lost"] == 0
    assert s.wait_replica_synced(old, 30)


def test_offline_queue_across_failover(peers, sentinels, tmp_path):
    """Messages that wait in Redis for an absent listener when the master dies: what the
    replica had not copied would be lost; measured, and must be 0."""
    s = sentinels()
    name, count, rate = "so", 2000, 400
    out = str(tmp_path / "so.log")
    addr, sender = stored_backlog(peers, s.url, name, out, 0)
    try:
        done, refused = [], []

        def pump():  # count at-least-once messages at `rate`, retried while BUSY
            start = time.monotonic()
            for seq in range(1, count + 1):
                delay = start + seq / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                data = b"m:%d:%.6f:" % (seq, time.monotonic())
                ok = []
                wait_until(lambda: ok.append(sender.send_to(name + "_topic", data, True)) or ok[-1]
                           or sender.last_error_code() != liner.ERR_BUSY, 30, 0.001)
                if ok[-1]:
                    done.append(seq)
                else:
                    refused.append((seq, sender.last_error_code(), sender.last_error_message()))
        t = threading.Thread(target=pump)
        t.start()
        assert wait_until(lambda: len(done) >= count // 3, 20)
        old = s.master_port()
        s.kill(old)
        assert s.wait_master(lambda p: p != old, FAILOVER_BOUND_S)
        t.join(count / rate + 60)
        want = set(done)
        # While no master answers, a send that needs the store is refused (ERR_STORE): not
        # accepted, so not counted. Everything accepted waits in the new master's queue.
        assert all(code == liner.ERR_STORE for _, code, _ in refused), refused[:3]
        assert wait_until(lambda: sender.pending_count() == len(want), 30), (sender.pending_count(), len(want))
        listener_at(peers, s.url, name, addr, out)
        wait_until(lambda: want <= set(delivered(out)), 30)
        got = delivered(out)
        missing = sorted(want - set(got))
        report("offline_queue_across_failover", accepted=len(want), refused_while_down=len(refused), delivered=len(got),
               duplicates=len(got) - len(set(got)), lost=len(missing))
        assert not missing, (len(missing), missing[:20])
    finally:
        sender.close()


def test_cli_shows_the_master(peers, sentinels, tmp_path):
    """`liner topics` takes the sentinel URL and names the master the sentinels chose."""
    import json
    import os
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main = os.path.join(root, "dist", "cli", "main.js")
    if not os.path.exists(main):
        pytest.fail("dist/cli/main.js is missing: build the TypeScript first (npm run build:ts)")
    s = sentinels()
    listener = peers("listen", "sc_listener", "sc_topic", s.url, "--out", str(tmp_path / "sc.log"))
    listener.expect("READY")

    def topics(*extra):
        out = subprocess.run(["node", main, "topics", "--redis", s.url] + list(extra), capture_output=True,
                             timeout=30, cwd=root)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()
    master = "127.0.0.1:%d" % s.master_port()
    text = topics()
    assert "redis master: %s" % master in text and "sc_topic" in text, text
    data = json.loads(topics("--json"))
    assert data["master"] == master and any(t["topic"] == "sc_topic" for t in data["topics"]), data
