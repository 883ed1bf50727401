"""Route semantics of liner_broker 1.4.1 (compat spec §6.1).

- A peer that unsubscribed from T is no longer waited for: once `unsubscribe` returned and the
  sender called `refresh_address_topic(T)`, an at-least-once send to T with nobody else fails
  with ERR_NO_ADDR and queues nothing, whether or not the directory notification arrived; a
  sender that starts later does not wait for it either.
- A peer that stopped (close) still is: at-least-once messages to it wait in Redis, also when
  they are sent by a sender process that restarted since (the listeners it remembers in the
  store), and arrive in order when it comes back.
"""
import liner
from liner_testkit import free_port, wait_until

ROUNDS = 10


def test_after_unsubscribe_and_refresh_at_least_once_sends_fail_at_once(started_client):
    consumer, inbox = started_client("rs_consumer", "rs_consumer_topic")
    producer, _ = started_client("rs_producer", "rs_producer_topic")
    for i in range(ROUNDS):
        topic = "rs_news_%d" % i
        assert consumer.subscribe(topic)
        assert wait_until(lambda: producer.send_to(topic, b"before %d" % i, True), 2)
        assert inbox.wait_count(i + 1) == i + 1
        pending = producer.pending_count()
        assert consumer.unsubscribe(topic)
        # No wait: what refresh_address_topic read decides, not the notification's timing.
        assert not producer.refresh_address_topic(topic)
        assert producer.last_error_code() == liner.ERR_NO_ADDR
        assert not producer.send_to(topic, b"after %d" % i, True)
        assert producer.last_error_code() == liner.ERR_NO_ADDR
        assert producer.pending_count() == pending


def test_refresh_settles_an_unsubscribe_whose_notification_was_lost(started_client, rdb):
    # Pub/Sub is fire-and-forget: a sender whose watch connection was down misses the
    # notification. What unsubscribe wrote to the store is what refresh_address_topic reads:
    # here those writes are made without the PUBLISH.
    consumer, inbox = started_client("rs4_consumer", "rs4_consumer_topic", subscribe=["rs4_news"])
    producer, _ = started_client("rs4_producer", "rs4_producer_topic")
    assert producer.send_to("rs4_news", b"before", True)
    assert inbox.wait_count(1) == 1
    addr = consumer.bound_listen_addr()
    rdb("HDEL", "lnr_topic:rs4_news:addr", addr)
    rdb("HSET", "lnr_topic:rs4_news:unsubscribed", addr, "1")
    pending = producer.pending_count()
    assert not producer.refresh_address_topic("rs4_news")
    assert not producer.send_to("rs4_news", b"after", True)
    assert producer.last_error_code() == liner.ERR_NO_ADDR
    assert producer.pending_count() == pending


def test_a_sender_started_after_an_unsubscribe_does_not_wait_for_that_peer(started_client):
    consumer, inbox = started_client("rs2_consumer", "rs2_consumer_topic", subscribe=["rs2_news"])
    producer, _ = started_client("rs2_producer", "rs2_producer_topic")
    assert producer.send_to("rs2_news", b"before", True)
    assert inbox.wait_count(1) == 1
    assert producer.close()
    assert consumer.unsubscribe("rs2_news")

    again, _ = started_client("rs2_producer", "rs2_producer_topic")
    assert not again.send_to("rs2_news", b"after", True)
    assert again.last_error_code() == liner.ERR_NO_ADDR
    assert again.pending_count() == 0


def test_a_restarted_sender_keeps_messages_for_a_stopped_listener(started_client):
    # A sends to B; B closes; A sends (queued); A closes; A starts again and sends 2 more;
    # B starts: B gets all of them, in order.
    addr = "127.0.0.1:%d" % free_port()
    b, inbox = started_client("rs3_b", "rs3_b_topic", addr)
    a, _ = started_client("rs3_a", "rs3_a_topic")
    assert a.send_to("rs3_b_topic", b"1", True)
    assert inbox.wait_count(1) == 1
    assert b.close()
    assert a.send_to("rs3_b_topic", b"2", True), a.last_error_message()
    assert a.close()

    a2, _ = started_client("rs3_a", "rs3_a_topic")
    for payload in (b"3", b"4"):
        assert a2.send_to("rs3_b_topic", payload, True), a2.last_error_message()
    assert not a2.send_to("rs3_b_topic", b"best effort", False)  # nobody to send it to now
    assert a2.last_error_code() == liner.ERR_NO_ADDR

    b2, inbox2 = started_client("rs3_b", "rs3_b_topic", addr)
    assert inbox2.wait_count(3, 15) == 3, inbox2.snapshot()
    assert inbox2.payloads() == [b"2", b"3", b"4"]
    assert wait_until(lambda: a2.pending_count() == 0, 5), a2.pending_count()
