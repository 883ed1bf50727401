"""send_to round-robins over the replicas of a topic; send_all reaches every replica."""
import pytest

from liner_testkit import Inbox

REPLICAS = 3


@pytest.fixture
def replicas(make_client):
    inboxes = []
    for i in range(REPLICAS):
        replica = make_client("worker%d" % (i + 1), "work")
        inbox = Inbox()
        assert replica.run(inbox)
        inboxes.append(inbox)
    sender = make_client("boss", "boss_topic")
    assert sender.run(Inbox())
    return sender, inboxes


def test_send_to_rotates_over_three_replicas(replicas):
    sender, inboxes = replicas
    n = 30
    for i in range(n):
        assert sender.send_to("work", b"job %d" % i)
    assert all(inbox.wait_count(n // REPLICAS, 5) >= n // REPLICAS for inbox in inboxes)
    assert [len(inbox) for inbox in inboxes] == [n // REPLICAS] * REPLICAS
    # Each replica got every third job, in order: job i goes to replica (i + offset) % 3.
    jobs = [[int(p.split()[1]) for p in inbox.payloads()] for inbox in inboxes]
    for got in jobs:
        assert got == sorted(got)
        assert len({j % REPLICAS for j in got}) == 1, got
    assert sorted(j for got in jobs for j in got) == list(range(n))
    for inbox in inboxes:
        assert {(to, from_) for to, from_, _ in inbox.snapshot()} == {("work", "boss_topic")}


def test_send_all_reaches_all_three_replicas(replicas):
    sender, inboxes = replicas
    n = 5
    for i in range(n):
        assert sender.send_all("work", b"broadcast %d" % i)
    for inbox in inboxes:
        assert inbox.wait_count(n, 5) == n
    for inbox in inboxes:
        assert inbox.payloads() == [b"broadcast %d" % i for i in range(n)]
        assert {(to, from_) for to, from_, _ in inbox.snapshot()} == {("work", "boss_topic")}


def test_send_all_best_effort_reaches_all_three_replicas(replicas):
    sender, inboxes = replicas
    assert sender.send_all("work", b"once", False)
    for inbox in inboxes:
        assert inbox.wait_count(1, 5) == 1
        assert inbox.payloads() == [b"once"]
