"""A store reply that comes too late and a listener that dies, at the same moment.

A sender replays 1,500 stored at-least-once messages of 64 KB to a slow listener. The reply to
its first offline-queue pop is held back 2.5 s by a proxy (past the client's 2 s time-out: Redis
ran the pop, the sender was not told), and while it is held the listener is SIGKILLed; a new
listener process starts on the same address. Every message must arrive (repeats are allowed:
at least once) and the queue must end empty: the sender's re-read after the unknown pop, its
replay job and its reconnect must not shift, skip or strand anything.
"""
import time

from faultkit import backlog_behind_a_late_pop, listener_at, read_records, report, wait_until

TOTAL = 1500
SIZE = 64 * 1024


def test_a_late_pop_reply_during_a_listener_death_loses_nothing(peers, redis, tmp_path):
    out = str(tmp_path / "records.log")
    with backlog_behind_a_late_pop(peers, redis, "ld", out, TOTAL, SIZE) as (proxy, addr, sender):
        listener = listener_at(peers, redis.url, "ld", addr, out, "--work-us", 300)
        assert wait_until(lambda: proxy.held, 20), "the sender never popped: nothing was tested"
        listener.kill()  # while the pop's reply is held
        time.sleep(0.5)
        listener = listener_at(peers, redis.url, "ld", addr, out)
        seen = lambda: {r.seq for r in read_records(out) if r.tag == "m"}  # noqa: E731
        wait_until(lambda: len(seen()) >= TOTAL, 60)
        wait_until(lambda: sender.pending_count() == 0, 15)
        left = sender.pending_count()
    seqs = [r.seq for r in read_records(out) if r.tag == "m"]
    missing = sorted(set(range(1, TOTAL + 1)) - set(seqs))
    report("late_reply_and_listener_death", messages=TOTAL, delivered=len(set(seqs)),
           repeats=len(seqs) - len(set(seqs)), missing=len(missing), left_in_queue=left)
    assert not missing, "lost %d messages (first %s)" % (len(missing), missing[:5])
    assert left == 0, "%d messages still in the offline queue" % left
