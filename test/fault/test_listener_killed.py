"""A listener SIGKILLed in the middle of 100,000 at-least-once messages and restarted with the
same identity (unique name, topic, address) receives every message at least once, and the only
messages it receives twice are those it had not acknowledged when it died."""
import time

from faultkit import count_lines, free_port, listener_at, read_records, report, wait_until

TOTAL = 100_000
KILL_AFTER = 30_000  # deliveries recorded before the SIGKILL


def test_listener_killed_mid_stream_gets_everything_and_repeats_only_unacknowledged(
        peers, redis, tmp_path):
    addr = "127.0.0.1:%d" % free_port()
    before, after = str(tmp_path / "before.log"), str(tmp_path / "after.log")
    listener = listener_at(peers, redis.url, "kl", addr, before)
    started = time.monotonic()
    sender = peers("send", "kl_sender", "kl_sender_topic", redis.url, "--to", "kl_topic",
                   "--count", TOTAL, "--size", 64)
    sender.expect("READY")

    assert wait_until(lambda: count_lines(before) >= KILL_AFTER, 60), \
        "only %d delivered before the kill" % count_lines(before)
    listener.kill()
    ck = redis.cli("GET", "lnr_connection:kl_sender:kl_sender_topic:kl_listener:key")
    # Nobody writes this counter while the listener is dead: it is the ack it left behind.
    acked_at_kill = int(redis.cli("GET", "lnr_connection:%s:mess_number" % ck))
    first_life = read_records(before)

    listener = listener_at(peers, redis.url, "kl", addr, after)
    assert sender.expect("DONE", timeout=30) == str(TOTAL)
    arrived = wait_until(lambda: len({r.seq for r in first_life} | {r.seq for r in read_records(after)})
                         >= TOTAL, 30)
    elapsed = time.monotonic() - started
    if arrived:
        time.sleep(1.5)  # late repeats would show up here
    second_life = read_records(after)
    stuck = redis.cli("LLEN", "lnr_connection:%s:messages" % ck)

    # The channel is fresh, so the sender numbered its messages 1, 2, ... in payload order:
    # a message's seq is its number_mess, which the ack counter counts.
    seqs1 = [r.seq for r in first_life]
    seqs2 = [r.seq for r in second_life]
    missing = set(range(1, TOTAL + 1)) - set(seqs1) - set(seqs2)
    repeats = sorted(set(seqs1) & set(seqs2))
    report("listener_killed", messages=TOTAL, delivered_before_kill=len(seqs1),
           acked_at_kill=acked_at_kill, unacknowledged_at_kill=len(seqs1) - acked_at_kill,
           repeats=len(repeats), delivered_after_restart=len(seqs2), missing=len(missing),
           left_in_offline_queue=stuck, seconds=round(elapsed, 1))
    assert not missing, "lost %d messages (first %s); %s still in the offline queue 30 s after " \
        "the restart" % (len(missing), sorted(missing)[:5], stuck)
    assert len(seqs1) == len(set(seqs1)), "repeats within the first life"
    assert len(seqs2) == len(set(seqs2)), "repeats within the second life"
    acknowledged_repeats = [s for s in repeats if s <= acked_at_kill]
    assert not acknowledged_repeats, "acknowledged messages delivered again: %s" % acknowledged_repeats[:10]
    assert all(r.sender == "kl_sender_topic" for r in first_life + second_life)
    # Order: each life sees increasing numbers.
    assert seqs1 == sorted(seqs1) and seqs2 == sorted(seqs2)
    assert wait_until(lambda: redis.cli("LLEN", "lnr_connection:%s:messages" % ck) == "0", 5)
