"""A listener SIGKILLed in the middle of the replay of its backlog, three times, gets the rest of
it each time it comes back, within about a second and without a new send.

Before the sender kept looking at the offline queue until the pops emptied it, a sender that had
written the whole backlog stopped looking at the store for that channel: the returning listener
got nothing until the sender happened to send something new (three SIGKILLs during a 40,000
message run stranded 22,355)."""
import time


from faultkit import listener_at, read_records, report, stored_backlog, wait_until

TOTAL = 1000
KILLS = 3
RESUME_S = 1.5  # the back-off cap is 1 s; allow the listener process its start-up


def test_a_listener_killed_during_replay_gets_its_backlog_without_a_new_send(peers, redis, tmp_path):
    out = str(tmp_path / "records.log")
    addr, sender = stored_backlog(peers, redis.url, "mr", out, TOTAL)
    try:
        resumed_after = []
        for life in range(KILLS + 1):
            seen = len(read_records(out))
            # A slow consumer (2 ms a message): the whole backlog is written to the socket long
            # before it is delivered and acknowledged.
            listener = listener_at(peers, redis.url, "mr", addr, out, "--work-us", 2000)
            ready = time.monotonic()
            assert wait_until(lambda: len(read_records(out)) > seen, 10), \
                "life %d: nothing arrived in 10 s" % life
            resumed_after.append(time.monotonic() - ready)
            if life < KILLS:
                assert wait_until(lambda: len(read_records(out)) >= seen + 100, 10)
                listener.kill()
        done = wait_until(lambda: {r.seq for r in read_records(out) if r.tag == "m"} >=
                          set(range(1, TOTAL + 1)), 30)
        left = sender.pending_count()
    finally:
        sender.close()
    seqs = [r.seq for r in read_records(out) if r.tag == "m"]
    missing = sorted(set(range(1, TOTAL + 1)) - set(seqs))
    report("listener_dies_mid_replay", messages=TOTAL, kills=KILLS, delivered=len(set(seqs)),
           repeats=len(seqs) - len(set(seqs)), missing=len(missing),
           resumed_after_s=[round(t, 2) for t in resumed_after])
    assert done and not missing, "lost %d (first %s), %s still queued" % (len(missing), missing[:5], left)
    assert max(resumed_after) < RESUME_S, resumed_after
