"""send_all under backpressure: a retry after BUSY delivers no duplicates.

One of two subscribers is stuck, so its queue fills and send_all reports BUSY after queueing the
other copy. The caller's only sensible move is to send again; that retry (same thread, topic,
bytes and mode) must send only the refused copy. Before, every retry gave the healthy subscriber
another copy (in a 4-subscriber fan-out, 5 runs of 5 had duplicates)."""
import threading


import liner
from extended_testkit import restore_limits  # noqa: F401  (fixture)
from liner_testkit import Inbox, seq_of, seq_payload, wait_until

N = 300
SIZE = 1024


def test_retrying_a_busy_send_all_sends_only_the_refused_copies(make_client, restore_limits):  # noqa: F811
    # At-least-once: copies stay queued until acknowledged, so the stuck subscriber's queue fills
    # for certain (best-effort copies leave the queue for the socket buffers first).
    at_least_once = True
    assert liner.set_max_send_queue_bytes(16 * SIZE)
    healthy = Inbox()
    stuck = Inbox()
    gate = threading.Event()

    def stuck_callback(to, from_, data):
        gate.wait(20)
        stuck(to, from_, data)

    a = make_client("fan_a", "fan_a_topic")
    b = make_client("fan_b", "fan_b_topic")
    for client, callback in ((a, healthy), (b, stuck_callback)):
        assert client.subscribe("fan")
        assert client.run(callback)
    sender = make_client("fan_sender", "fan_sender_topic")
    assert sender.run(Inbox())

    refusals = 0
    for i in range(1, N + 1):
        def sent():
            nonlocal refusals
            if sender.send_all("fan", seq_payload(i, SIZE), at_least_once):
                return True
            assert sender.last_error_code() == liner.ERR_BUSY, sender.last_error_message()
            refusals += 1
            if refusals >= 20:
                gate.set()  # the stuck subscriber recovers once the retries are well under way
            return False
        assert wait_until(sent, 20, 0.001), "message %d never accepted" % i

    assert refusals >= 20, "the stuck subscriber never filled its queue: nothing was tested"
    assert healthy.wait_count(N, 20) == N and stuck.wait_count(N, 20) == N
    assert wait_until(lambda: len(healthy) > N or len(stuck) > N, 0.5) is False
    assert [seq_of(d) for d in healthy.payloads()] == list(range(1, N + 1))
    assert [seq_of(d) for d in stuck.payloads()] == list(range(1, N + 1))


def test_a_different_send_all_ends_the_retry(make_client, restore_limits):  # noqa: F811
    # The same bytes sent again after another message are a new message: every peer gets it.
    inbox_a, inbox_b = Inbox(), Inbox()
    for name, inbox in (("again_a", inbox_a), ("again_b", inbox_b)):
        client = make_client(name, name + "_topic")
        assert client.subscribe("again")
        assert client.run(inbox)
    sender = make_client("again_sender", "again_sender_topic")
    assert sender.run(Inbox())
    for data in (b"x", b"y", b"x"):
        assert sender.send_all("again", data)
    assert inbox_a.wait_count(3) == 3 and inbox_b.wait_count(3) == 3
    assert inbox_a.payloads() == inbox_b.payloads() == [b"x", b"y", b"x"]
