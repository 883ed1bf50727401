"""One million 100-byte at-least-once messages to a live listener: all delivered, in order, none
twice, within about a minute (send_to answers ERR_BUSY when the per-peer queue is full)."""
import time

import liner
from liner_testkit import SeqChecker, wait_until

N = 1_000_000
BUDGET_S = 60.0


def test_one_million_at_least_once_messages_in_order_once(make_client, rdb):
    listener = make_client("sink", "sink_topic")
    checker = SeqChecker(keep=False)
    checker.expect_meta("sink_topic", "source_topic")
    assert listener.run(checker)
    sender = make_client("source", "source_topic")
    assert sender.run(lambda *a: None)

    started = time.monotonic()
    deadline = started + BUDGET_S
    send = sender.send_to
    pad = b"." * 90
    busy = 0
    for i in range(1, N + 1):
        payload = b"%010d" % i + pad
        while not send("sink_topic", payload, True):
            code = sender.last_error_code()
            assert code == liner.ERR_BUSY, (i, code, sender.last_error_message())
            assert time.monotonic() < deadline, "still sending message %d after %.0f s" % (i, BUDGET_S)
            busy += 1
            time.sleep(0.001)
    sent_in = time.monotonic() - started

    got = checker.wait_count(N, max(1.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - started
    print("1M messages: sent in %.1f s (%d busy retries), delivered in %.1f s" % (sent_in, busy, elapsed))
    assert got == N, "%d of %d delivered in %.1f s" % (got, N, elapsed)
    time.sleep(0.5)  # a duplicate would show up here
    assert checker.count == N
    assert checker.errors == []
    assert checker.bad_meta == []
    ck = rdb.get("lnr_connection:source:source_topic:sink:key")
    assert wait_until(lambda: rdb.get("lnr_connection:%s:mess_number" % ck) == str(N), 3)
