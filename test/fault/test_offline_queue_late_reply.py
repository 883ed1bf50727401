"""The offline queue survives a Redis reply that comes too late.

A sender replays 1,500 stored at-least-once messages of 64 KB to a slow listener. The reply to
its first offline-queue pop is held back 2.5 s by a proxy, past the client's 2 s time-out:
Redis ran the pop, the sender was not told. Every message must still arrive, and the queue must
end empty. (Before the pop was made idempotent and the sender re-read the queue after such a
failure, a plain LPOP ran again on a stale view of the head: 66 messages never arrived while
the queue ended empty.)
"""
import time

from faultkit import backlog_behind_a_late_pop, listener_at, read_records, report, wait_until

TOTAL = 1500
SIZE = 64 * 1024


def test_a_late_pop_reply_loses_nothing(peers, redis, tmp_path):
    out = str(tmp_path / "records.log")
    with backlog_behind_a_late_pop(peers, redis, "lr", out, TOTAL, SIZE) as (proxy, addr, sender):
        started = time.monotonic()
        listener_at(peers, redis.url, "lr", addr, out, "--work-us", 300)
        done = wait_until(lambda: len({r.seq for r in read_records(out) if r.tag == "m"}) >= TOTAL, 60)
        elapsed = time.monotonic() - started
        if done:
            time.sleep(1.0)
        left = sender.pending_count()
        wait_until(lambda: sender.pending_count() == 0, 10)
        left = sender.pending_count()
    held = list(proxy.held)
    seqs = [r.seq for r in read_records(out) if r.tag == "m"]
    missing = sorted(set(range(1, TOTAL + 1)) - set(seqs))
    report("offline_queue_late_reply", messages=TOTAL, delivered=len(set(seqs)),
           repeats=len(seqs) - len(set(seqs)), missing=len(missing), left_in_queue=left,
           held_replies=len(held), seconds=round(elapsed, 1))
    assert held, "the proxy never saw a pop to hold back: the test did not test anything"
    assert not missing, "lost %d messages (first %s)" % (len(missing), missing[:5])
    assert left == 0, "%d messages still in the offline queue" % left
