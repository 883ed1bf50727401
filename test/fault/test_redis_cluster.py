"""liner on a Redis Cluster (redis+cluster:// URLs), against real redis-servers started by
cluster_kit.py on free loopback ports:

- the keys of a few peers spread over the slots of every primary, and messages, send_all to
  subscribers, offline delivery and the CLI's `topics` work across them;
- a slot being migrated (ASK) and then moved (MOVED) is followed by a running client;
- a PUBLISH on one node reaches a subscriber on another (the directory feed needs only one
  subscription, on any node);
- bad seeds fail clearly: a server that is not a cluster node, or seeds that are all down;
- a primary SIGKILLed while at-least-once traffic runs: its replica takes over and nothing is
  lost (duplicates are allowed and reported)."""
import os
import socket
import subprocess
import time

import pytest

import liner
from liner_testkit import Inbox

from cluster_kit import RedisClusterKit
from faultkit import (free_port, listener_at, read_records, redis_command, report, stored_backlog,
                      wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "dist", "cli", "main.js")


@pytest.fixture(scope="module")
def cluster():
    kit = RedisClusterKit(primaries=3, replicas=0)
    try:
        yield kit
    finally:
        kit.close()


def test_a_server_that_is_not_a_cluster_node_is_a_clear_error(private_redis):
    redis = private_redis(persistent=False)
    with pytest.raises(liner.LinerError) as e:
        liner.Client("nc", "nc_topic", "127.0.0.1:0", "redis+cluster://127.0.0.1:%d" % redis.port).close()
    assert e.value.code == liner.ERR_STORE
    assert "not a cluster node" in e.value.message, e.value.message


def test_seeds_all_down_fail_within_two_seconds(private_redis):
    # Refused at once (nothing listens), and silent (SIGSTOPped: the kernel accepts, nobody
    # answers, each seed would cost a 2 s time-out).
    frozen = [private_redis(persistent=False) for _ in range(3)]
    for r in frozen:
        r.freeze()
    try:
        for case, ports in (("refused", [free_port(), free_port()]), ("silent", [r.port for r in frozen])):
            url = "redis+cluster://" + ",".join("127.0.0.1:%d" % p for p in ports)
            t = time.monotonic()
            with pytest.raises(liner.LinerError) as e:
                liner.Client("down", "down_topic", "127.0.0.1:0", url).close()
            took = time.monotonic() - t
            assert e.value.code == liner.ERR_STORE and "redis" in e.value.message
            assert took < 2.6, (case, took)
            report("cluster_seeds_down", case=case, seeds=len(ports), fail_s="%.3f" % took)
    finally:
        for r in frozen:
            r.thaw()


def test_publish_on_one_node_reaches_a_subscriber_on_another(cluster):
    a, b = cluster.primaries()[:2]
    with socket.create_connection((a.host, a.port), timeout=5) as sock:
        sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$15\r\nlnr_directory:0\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"*3")
        assert [reader.readline() for _ in range(5)][-1] == b":1\r\n"  # subscribed
        assert redis_command(b.host, b.port, "PUBLISH", "lnr_directory:0", "hello") >= 0
        got = [reader.readline() for _ in range(7)]
        assert got[-1] == b"hello\r\n", got


def test_peers_spread_over_primaries_send_subscribe_and_list(cluster, tmp_path):
    url = cluster.url
    topics = ["cl_topic_%d" % i for i in range(6)]
    listeners, inboxes = [], []
    try:
        for t in topics:
            c, box = liner.Client(t + "_peer", t, "127.0.0.1:0", url), Inbox()
            assert c.run(box), c.last_error_message()
            listeners.append(c)
            inboxes.append(box)
        sender, sender_box = liner.Client("cl_sender", "cl_sender_topic", "127.0.0.1:0", url), Inbox()
        listeners.append(sender)
        assert sender.run(sender_box)
        for i, t in enumerate(topics):
            assert sender.send_to(t, b"to %d" % i, True), sender.last_error_message()
        for i, box in enumerate(inboxes):
            assert box.wait_count(1, 10) >= 1, "topic %s got nothing" % topics[i]
            assert box.payloads()[0] == b"to %d" % i

        # The keys liner wrote are on more than one primary.
        spread = {node: keys for node, keys in cluster.keys_by_node("lnr_*").items() if keys}
        assert len(spread) >= 2, spread
        report("cluster_keys", primaries=len(cluster.primaries()), nodes_with_keys=len(spread),
               keys=sum(len(k) for k in spread.values()))

        # Two subscribers of a topic, one send_all: both get it.
        assert listeners[0].subscribe("cl_news") and listeners[1].subscribe("cl_news")
        assert wait_until(lambda: len(sender.list_addresses("cl_news") or []) == 2, 10)
        assert sender.send_all("cl_news", b"news", True), sender.last_error_message()
        for box in inboxes[:2]:
            assert wait_until(lambda: b"news" in box.payloads(), 10)

        # The CLI lists the topics of every primary.
        if not os.path.exists(CLI):
            pytest.fail("dist/cli/main.js missing: run `npm run --silent build:ts` (and the addon build)")
        out = subprocess.run(["node", CLI, "topics", "--redis", url], capture_output=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr.decode()
        text = out.stdout.decode()
        for t in topics + ["cl_news", "cl_sender_topic"]:
            assert t in text, (t, text)
        owners = {cluster.node_of("lnr_topic:%s:addr" % t).name for t in topics}
        assert len(owners) >= 2, owners
    finally:
        for c in listeners:
            c.close()


def test_offline_delivery_on_a_cluster(cluster, peers, tmp_path):
    out = str(tmp_path / "offline.log")
    count = 300
    addr, sender = stored_backlog(peers, cluster.url, "clo", out, count)
    try:
        queued = [k for keys in cluster.keys_by_node("lnr_connection:*:messages").values() for k in keys]
        assert queued, "no offline queue in the cluster"
        listener = listener_at(peers, cluster.url, "clo", addr, out)
        assert wait_until(lambda: {r.seq for r in read_records(out) if r.tag == "m"} >= set(range(1, count + 1)), 30)
        assert wait_until(lambda: sender.pending_count() == 0, 20), sender.pending_count()
        listener.close()
    finally:
        sender.close()


def errors_of(node, kind):
    """How many error replies of `kind` (ASK, MOVED) the node has sent (INFO errorstats)."""
    return int(node.info("errorstats").get("errorstat_" + kind, "count=0").split(",")[0].split("=")[1])


def test_a_slot_being_migrated_and_then_moved_is_followed(cluster):
    """ASK while a slot's keys move to another primary, MOVED once it has: a running client's
    reads and sends keep working without being told anything."""
    listener, box = liner.Client("clm_peer", "clm_topic", "127.0.0.1:0", cluster.url), Inbox()
    sender = liner.Client("clm_sender", "clm_sender_topic", "127.0.0.1:0", cluster.url)
    try:
        assert listener.run(box) and sender.run(Inbox())
        addr = listener.published_addr()
        assert [a for a in sender.list_addresses("clm_topic")] and sender.send_to("clm_topic", b"before", True)
        assert box.wait_count(1, 10) >= 1
        key = "lnr_topic:clm_topic:addr"
        src = cluster.node_of(key)
        dst = [n for n in cluster.primaries() if n.name != src.name][0]
        slot = src.cmd("CLUSTER", "KEYSLOT", key)
        src_id, dst_id = src.cmd("CLUSTER", "MYID").decode(), dst.cmd("CLUSTER", "MYID").decode()
        assert dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == "OK"
        assert src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == "OK"
        for k in src.cmd("CLUSTER", "GETKEYSINSLOT", slot, 1000):
            assert src.cmd("MIGRATE", dst.host, dst.port, k, 0, 5000) == "OK"
        # Migrating: the old owner answers ASK for keys it no longer has.
        asked = errors_of(src, "ASK")
        rows = sender.list_addresses("clm_topic")
        assert rows and addr in str(rows), (rows, sender.last_error_message())
        assert errors_of(src, "ASK") > asked  # the redirection was really taken
        for n in cluster.primaries():
            assert n.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id) == "OK"
        # Moved: the old owner answers MOVED; the client reads the table again and follows.
        moved = errors_of(src, "MOVED")
        rows = sender.list_addresses("clm_topic")
        assert errors_of(src, "MOVED") > moved
        assert rows and addr in str(rows), (rows, sender.last_error_message())
        assert sender.send_to("clm_topic", b"after", True), sender.last_error_message()
        assert wait_until(lambda: b"after" in box.payloads(), 10)
        assert cluster.node_of(key).name == dst.name
    finally:
        sender.close()
        listener.close()


def directory_subscribers(kit):
    """{primary name: subscribers of lnr_directory:0 on that node} (PUBSUB NUMSUB is per node)."""
    return {n.name: int(n.cmd("PUBSUB", "NUMSUB", "lnr_directory:0")[1]) for n in kit.primaries()}


def fail_over(kit, victim):
    """SIGKILLs a primary; returns (seconds until its replica is a primary, until the cluster
    is ok again)."""
    replica = kit.replica_of(victim)
    assert replica is not None, "no replica of %s" % victim.name
    victim.kill()
    killed_at = time.monotonic()
    assert wait_until(lambda: replica.info("replication").get("role") == "master", 20, 0.05)
    promoted_s = time.monotonic() - killed_at
    assert wait_until(kit.healthy, 20, 0.1)
    return promoted_s, time.monotonic() - killed_at


def test_primary_failover_while_traffic_runs(peers, tmp_path):
    """Two fail-overs while 300 at-least-once messages a second flow: first the primary that
    holds the peers' directory subscriptions (they must subscribe again elsewhere), then the one
    that holds the channel's acknowledgement (acks must reach the promoted replica)."""
    kit = RedisClusterKit(primaries=3, replicas=1)
    try:
        url = kit.url
        out = str(tmp_path / "failover.log")
        listener = peers("listen", "clf_listener", "clf_topic", url, "--out", out)
        listener.expect("READY")
        count, rate = 4000, 300
        sender = peers("send", "clf_sender", "clf_sender_topic", url, "--to", "clf_topic",
                       "--count", count, "--rate", rate)
        sender.expect("READY")
        assert wait_until(lambda: len(read_records(out)) >= rate, 15)
        delivered = lambda: {r.seq for r in read_records(out) if r.tag == "m"}  # noqa: E731

        # 1. The primary with the directory subscriptions.
        before = directory_subscribers(kit)
        total = sum(before.values())
        assert total >= 2, before  # listener and sender
        victim = max(kit.primaries(), key=lambda n: before[n.name])
        sub_promoted_s, sub_ok_s = fail_over(kit, victim)
        t = time.monotonic()
        assert wait_until(lambda: sum(directory_subscribers(kit).values()) >= total, 20, 0.1), \
            directory_subscribers(kit)
        resubscribed_s = sub_ok_s + time.monotonic() - t

        # 2. The primary with the channel's acknowledgement (if it still has a replica).
        ack_key = [k for keys in kit.keys_by_node("lnr_connection:*:mess_number").values() for k in keys][0]
        victim = kit.node_of(ack_key)
        ack_promoted_s = ack_resumed_s = -1.0
        if kit.replica_of(victim) is not None:
            acked = int(kit.get(ack_key))
            killed_at = time.monotonic()
            ack_promoted_s, _ = fail_over(kit, victim)
            assert wait_until(lambda: int(kit.get(ack_key) or 0) > acked, 20, 0.05)
            ack_resumed_s = time.monotonic() - killed_at

        sender.expect("DONE", timeout=60)
        expected = set(range(1, count + 1))
        assert wait_until(lambda: delivered() >= expected, 60), sorted(expected - delivered())[:20]
        seqs = [r.seq for r in read_records(out) if r.tag == "m"]
        refused = sender.lines_starting("REFUSED")
        report("cluster_failover", sent=count, delivered=len(set(seqs)), duplicates=len(seqs) - len(set(seqs)),
               sub_node_promoted_s="%.2f" % sub_promoted_s, resubscribed_s="%.2f" % resubscribed_s,
               ack_node_promoted_s="%.2f" % ack_promoted_s, acks_resumed_s="%.2f" % ack_resumed_s,
               refused=len(refused))
        assert not refused, refused[:5]
        # Every message acknowledged on the new primaries: nothing left in the sender's queue.
        assert wait_until(lambda: int(kit.get(ack_key) or 0) >= count, 20), kit.get(ack_key)
        sender.close()
        listener.close()
    finally:
        kit.close()
