"""subscribe works before and after run; unsubscribe at runtime stops delivery and makes later
sends return False with ERR_NO_ADDR."""
import time

import liner
from liner_testkit import Inbox, wait_until


def test_subscribe_before_run(started_client, rdb):
    consumer, inbox = started_client("consumer", "consumer_topic", subscribe=["news"])
    producer, _ = started_client("producer", "producer_topic")
    # The directory holds the bound address, not the "127.0.0.1:0" given at creation.
    assert rdb.hgetall("lnr_topic:news:addr") == {consumer.bound_listen_addr(): "consumer"}
    assert producer.send_to("news", b"n1")
    assert producer.send_to("consumer_topic", b"direct")
    assert inbox.wait_count(2) == 2
    assert sorted(inbox.snapshot()) == sorted([("news", "producer_topic", b"n1"),
                                               ("consumer_topic", "producer_topic", b"direct")])


def test_subscribe_after_run(started_client, rdb):
    consumer, inbox = started_client("consumer", "consumer_topic")
    producer, _ = started_client("producer", "producer_topic")
    assert not producer.send_to("news", b"nobody yet")
    assert producer.last_error_code() == liner.ERR_NO_ADDR
    assert consumer.subscribe("news")
    assert rdb.hgetall("lnr_topic:news:addr") == {consumer.bound_listen_addr(): "consumer"}
    assert wait_until(lambda: producer.send_to("news", b"n1"), 2)
    assert inbox.wait_count(1) == 1
    assert inbox.snapshot() == [("news", "producer_topic", b"n1")]


def test_subscribe_own_topic_is_refused(make_client):
    consumer = make_client("consumer", "consumer_topic")
    assert not consumer.subscribe("consumer_topic")
    assert consumer.last_error_code() == liner.ERR_SELF_TOPIC
    assert consumer.run(Inbox())
    assert not consumer.subscribe("consumer_topic")
    assert consumer.last_error_code() == liner.ERR_SELF_TOPIC
    assert not consumer.unsubscribe("consumer_topic")
    assert consumer.last_error_code() == liner.ERR_SELF_TOPIC


def test_unsubscribe_at_runtime_stops_delivery_and_later_sends_fail(started_client, rdb):
    consumer, inbox = started_client("consumer", "consumer_topic", subscribe=["news"])
    producer, _ = started_client("producer", "producer_topic")
    assert producer.send_to("news", b"before")
    assert inbox.wait_count(1) == 1

    assert consumer.unsubscribe("news")
    assert rdb.hgetall("lnr_topic:news:addr") == {}
    unsubscribed_at = time.monotonic()
    # Within about a second the producer learns that nobody serves "news" any more.
    refused = wait_until(lambda: not producer.send_to("news", b"after"), 1.5, 0.02)
    assert refused, "send_to still accepted %.2f s after unsubscribe" % (time.monotonic() - unsubscribed_at)
    assert producer.last_error_code() == liner.ERR_NO_ADDR
    assert not producer.send_all("news", b"after")
    assert producer.last_error_code() == liner.ERR_NO_ADDR
    time.sleep(0.5)
    # Nothing addressed to "news" was delivered after unsubscribe returned.
    assert [item for item in inbox.snapshot() if item[0] == "news"] == [("news", "producer_topic", b"before")]
    # The consumer still gets its own topic.
    assert producer.send_to("consumer_topic", b"direct")
    assert inbox.wait_count(2) == 2
    assert inbox.snapshot()[-1] == ("consumer_topic", "producer_topic", b"direct")


def test_unsubscribe_before_run(make_client, rdb):
    consumer = make_client("consumer", "consumer_topic")
    producer = make_client("producer", "producer_topic")
    assert consumer.subscribe("news")
    assert consumer.unsubscribe("news")
    assert consumer.run(Inbox())
    assert producer.run(Inbox())
    assert rdb.hgetall("lnr_topic:news:addr") == {}
    assert not producer.send_to("news", b"x")
    assert producer.last_error_code() == liner.ERR_NO_ADDR
