"""A sender SIGKILLed in the middle of a stream and restarted with the same identity (unique
name and topic):

- everything it had persisted (its offline queue in Redis) is delivered after the restart;
- its numbering continues after what the listener delivered, and nothing the restarted sender
  sends is dropped by the listener as a "duplicate";
- what a crash may lose is exactly the messages that existed only in the dead sender's RAM:
  accepted by send_to but neither written to the peer's socket nor stored in Redis. They are
  always the newest ones (a tail of the stream), never a hole in the middle.
"""
import time

from faultkit import (count_lines, free_port, read_records, report, stored_numbers,
                      stored_payload_seqs, wait_until)


def channel_key(redis, sender, sender_topic, listener):
    return redis.cli("GET", "lnr_connection:%s:%s:%s:key" % (sender, sender_topic, listener))


def test_sender_killed_mid_stream_to_a_busy_listener(peers, redis, tmp_path):
    """The listener is a little slow (20 us per message), so at the kill it still has thousands
    of written-but-undelivered messages to work through when the restarted sender connects."""
    out = str(tmp_path / "listener.log")
    listener = peers("listen", "ks_listener", "ks_topic", redis.url, "--out", out, "--work-us", 20)
    listener.expect("READY")
    first = peers("send", "ks_sender", "ks_sender_topic", redis.url, "--to", "ks_topic",
                  "--count", 50_000, "--tag", "a")
    first.expect("READY")
    assert wait_until(lambda: count_lines(out) >= 10_000, 30)
    first.kill()
    killed_at = time.monotonic()
    accepted = max([int(s) for s in first.lines_starting("SENT")] + [0])

    second = peers("send", "ks_sender", "ks_sender_topic", redis.url, "--to", "ks_topic",
                   "--count", 5_000, "--tag", "b")
    second.expect("READY")
    restarted_after = time.monotonic() - killed_at
    assert second.expect("DONE", timeout=30) == "5000"
    wait_until(lambda: len([r for r in read_records(out) if r.tag == "b"]) >= 5_000, 20)
    time.sleep(1.2)  # the listener's ack flush
    records = read_records(out)
    a = [r.seq for r in records if r.tag == "a"]
    b = [r.seq for r in records if r.tag == "b"]
    ck = channel_key(redis, "ks_sender", "ks_sender_topic", "ks_listener")
    final_ack = int(redis.cli("GET", "lnr_connection:%s:mess_number" % ck))
    report("sender_killed_busy_listener", accepted_before_kill_at_least=accepted,
           delivered_of_first_life=len(a), lost_in_dead_sender_ram=max(0, accepted - len(a)),
           restarted_after_s=round(restarted_after, 2), second_life_sent=5000,
           second_life_delivered=len(b), final_ack=final_ack)

    # First life: a gap-free prefix 1..K, each once: the loss is a tail.
    assert a == list(range(1, len(a) + 1)), "first life not a gap-free prefix"
    # Second life: nothing dropped as a duplicate, in order, once each.
    assert b == list(range(1, 5_001)), "second life: %d of 5000 delivered, first missing %s" % (
        len(b), sorted(set(range(1, 5_001)) - set(b))[:5])
    # Numbering continued above the last delivered number (a gap would be harmless, reuse not).
    assert final_ack >= len(a) + 5_000
    assert redis.cli("LLEN", "lnr_connection:%s:messages" % ck) == "0"


def test_sender_killed_while_its_peer_is_offline_delivers_what_it_persisted(peers, redis, tmp_path):
    """The listener goes away cleanly; the sender keeps sending (at-least-once: to the offline
    queue); the sender is SIGKILLed; then the listener and the sender come back."""
    addr = "127.0.0.1:%d" % free_port()
    out = str(tmp_path / "listener.log")
    listener = peers("listen", "kp_listener", "kp_topic", redis.url, "--addr", addr, "--out", out)
    listener.expect("READY")
    first = peers("send", "kp_sender", "kp_sender_topic", redis.url, "--to", "kp_topic",
                  "--count", 100_000, "--rate", 2000, "--tag", "a", "--progress", 1)
    first.expect("READY")
    assert wait_until(lambda: count_lines(out) >= 2_000, 20)
    assert listener.close() == 0
    delivered_online = [r.seq for r in read_records(out)]
    ck = channel_key(redis, "kp_sender", "kp_sender_topic", "kp_listener")
    queue = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: int(redis.cli("LLEN", queue)) >= 2_000, 20)
    first.kill()
    accepted = [int(s) for s in first.lines_starting("SENT")]
    persisted = stored_payload_seqs(redis, queue)
    persisted_numbers = stored_numbers(redis, queue)
    acked = int(redis.cli("GET", "lnr_connection:%s:mess_number" % ck))

    listener = peers("listen", "kp_listener", "kp_topic", redis.url, "--addr", addr, "--out", out)
    listener.expect("READY")
    second = peers("send", "kp_sender", "kp_sender_topic", redis.url, "--to", "kp_topic",
                   "--count", 1_000, "--tag", "b")
    second.expect("READY")
    assert second.expect("DONE", timeout=30) == "1000"
    wait_until(lambda: len(read_records(out)) >= len(delivered_online) + len(persisted) + 1_000, 20)
    time.sleep(1.2)
    records = read_records(out)
    a = [r.seq for r in records if r.tag == "a"]
    b = [r.seq for r in records if r.tag == "b"]
    lost = sorted(set(accepted) - set(a))
    report("sender_killed_peer_offline", accepted_before_kill=len(accepted),
           delivered_before_kill=len(delivered_online), acked_at_kill=acked,
           persisted_at_kill=len(persisted), delivered_after_restart=len(a) - len(delivered_online),
           lost_in_dead_sender_ram=len(lost), second_life_delivered=len(b))

    assert len(a) == len(set(a)), "first-life messages delivered twice"
    assert set(persisted) <= set(a), "persisted but not delivered: %s" % sorted(set(persisted) - set(a))[:10]
    # Only a tail can be lost: messages newer than everything delivered or persisted.
    assert all(s > max(a) for s in lost), "a hole, not a tail, was lost: %s" % lost[:10]
    assert b == list(range(1, 1_001)), "second life: %d of 1000 delivered" % len(b)
    # Numbering continued above the highest number the store knew of (no reuse).
    final_ack = int(redis.cli("GET", "lnr_connection:%s:mess_number" % ck))
    assert final_ack >= max([acked] + persisted_numbers) + 1_000
    assert wait_until(lambda: redis.cli("LLEN", queue) == "0", 5)
