"""A replica that starts after the sender already routed to its topic gets traffic: at once after
refresh_address_topic, and within about a second without it."""
import time

from liner_testkit import Inbox, wait_until


def start_first_replica_and_sender(started_client):
    _, first_inbox = started_client("replica1", "jobs")
    sender, _ = started_client("sender", "sender_topic")
    for i in range(4):
        assert sender.send_to("jobs", b"warm %d" % i)
    assert first_inbox.wait_count(4) == 4
    return sender, first_inbox


def test_new_replica_is_used_after_refresh_address_topic(started_client):
    sender, first_inbox = start_first_replica_and_sender(started_client)
    second, second_inbox = started_client("replica2", "jobs")

    assert sender.refresh_address_topic("jobs")
    for i in range(10):
        assert sender.send_to("jobs", b"job %d" % i)
    assert wait_until(lambda: len(first_inbox) + len(second_inbox) == 14, 5)
    # Round-robin over two replicas: five jobs each.
    assert len(second_inbox) == 5
    assert len(first_inbox) == 4 + 5


def test_new_replica_is_used_within_a_second_without_refresh(started_client):
    sender, first_inbox = start_first_replica_and_sender(started_client)
    second, second_inbox = started_client("replica2", "jobs")
    started = time.monotonic()
    sent = 0
    # A message every 20 ms until the new replica gets one; 1 s for the sender to notice plus
    # 0.5 s of slack for delivery on a loaded machine.
    while not len(second_inbox) and time.monotonic() - started < 1.5:
        assert sender.send_to("jobs", b"job %d" % sent)
        sent += 1
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert len(second_inbox) > 0, "new replica got nothing in %.2f s (%d sends)" % (elapsed, sent)
    assert wait_until(lambda: len(first_inbox) + len(second_inbox) == 4 + sent, 5)


def test_refresh_address_topic_is_false_for_an_empty_topic(make_client):
    sender = make_client("sender", "sender_topic")
    assert not sender.refresh_address_topic("nobody_here")
    assert sender.run(Inbox())
    assert not sender.refresh_address_topic("nobody_here")
