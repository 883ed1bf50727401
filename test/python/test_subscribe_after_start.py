"""A listener that subscribes to a topic after it started still gets the backlog stored for that
topic: frames for a topic it does not serve (yet) are refused, not acknowledged and dropped, so
the sender keeps them and delivers them once the subscription is there. A topic it deliberately
left is different: those frames are acknowledged and dropped, as liner_broker does (a 1.3.1
sender caches routes forever and would resend them forever)."""
import time

import pytest

from liner_testkit import Inbox, free_port, seq_of, seq_payload, wait_until

N = 200


def stored_for_topic(make_client, addr, topic):
    """A sender with N at-least-once messages for `topic` in its offline queue, meant for the
    listener "late_listener" (address `addr`) that served the topic and went away."""
    listener = make_client("late_listener", "late_listener_topic", addr)
    assert listener.subscribe(topic)
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("late_sender", "late_sender_topic")
    assert sender.run(Inbox())
    assert sender.send_to(topic, b"warm-up")
    assert inbox.wait_count(1) == 1
    assert listener.close()
    for i in range(1, N + 1):
        assert sender.send_to(topic, seq_payload(i), True), sender.last_error_message()
    assert wait_until(lambda: sender.pending_count() == N, 10), sender.pending_count()
    return sender


@pytest.mark.parametrize("delay", [0.005, 0.05])
def test_backlog_of_a_topic_subscribed_after_start_arrives(make_client, started_client, delay):
    addr = "127.0.0.1:%d" % free_port()
    sender = stored_for_topic(make_client, addr, "late_topic")
    listener, inbox = started_client("late_listener", "late_listener_topic", addr)
    time.sleep(delay)
    assert listener.subscribe("late_topic")
    assert inbox.wait_count(N, 15) == N, "%d of %d delivered" % (len(inbox), N)
    time.sleep(0.3)  # a late duplicate would show up here
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, N + 1))
    assert {to for to, _, _ in inbox.snapshot()} == {"late_topic"}
    assert wait_until(lambda: sender.pending_count() == 0, 5), sender.pending_count()


def test_frames_for_a_topic_left_on_purpose_are_acknowledged(make_client, started_client, rdb):
    listener = make_client("left_listener", "left_listener_topic")
    assert listener.subscribe("left_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender, _ = started_client("left_sender", "left_sender_topic")
    assert sender.send_to("left_topic", b"one")
    assert inbox.wait_count(1) == 1
    assert listener.unsubscribe("left_topic")
    # The sender has not heard of it yet if it sends at once; make the race certain by writing
    # to the connection it already has (liner_broker 1.3.1 senders never hear of it).
    ck = rdb.get("lnr_connection:left_sender:left_sender_topic:left_listener:key")
    for _ in range(3):
        if not sender.send_to("left_topic", b"late", True):
            break
    # Whatever reached the listener was acknowledged: nothing stays queued for it.
    assert wait_until(lambda: sender.pending_count() == 0, 5)
    assert wait_until(lambda: int(rdb.get("lnr_connection:%s:mess_number" % ck) or 0) >= 1, 5)
    assert len(inbox) == 1
