"""Programs written for liner_broker 1.3.1 run unchanged: its names are aliases of the
snake_case API (loadLib, Client(uniqName=, redisPath=), the keywords to_topic= and
at_least_once_delivery=), and the new keywords work alike."""
import pytest

import liner
from liner_testkit import Inbox


def test_client_takes_the_new_and_the_1_3_1_keywords(redis):
    with liner.Client(unique_name="kw_new", topic="kw_new_topic", localhost="127.0.0.1:0",
                      redis_url=redis.url) as new:
        assert new.unique_name() == "kw_new"
    with liner.Client(uniqName="kw_old", topic="kw_old_topic", localhost="127.0.0.1:0",
                      redisPath=redis.url) as old:
        assert old.unique_name() == "kw_old"


def test_a_name_given_twice_is_a_type_error(redis):
    with pytest.raises(TypeError):
        liner.Client("kw_twice", "kw_twice_topic", "127.0.0.1:0", redis.url, redisPath=redis.url)
    with pytest.raises(TypeError):
        liner.Client(unique_name="a", uniqName="a", topic="t", localhost="127.0.0.1:0",
                     redis_url=redis.url)


def test_send_and_topic_calls_take_the_new_and_the_1_3_1_keywords(make_client):
    receiver = make_client("kw_rx", "kw_rx_topic")
    inbox = Inbox()
    assert receiver.subscribe(to_topic="kw_news")
    assert receiver.subscribe(topic="kw_more")
    assert receiver.run(inbox)
    sender = make_client("kw_tx", "kw_tx_topic")
    assert sender.run(Inbox())
    assert sender.refresh_address_topic(to_topic="kw_news")
    assert sender.refresh_address_topic(topic="kw_more")
    assert sender.send_to(to_topic="kw_news", data=b"1", at_least_once_delivery=True)
    assert sender.send_to(topic="kw_news", data=b"2", at_least_once=False)
    assert sender.send_all(to_topic="kw_more", data=b"3", at_least_once_delivery=False)
    assert sender.send_all(topic="kw_more", data=b"4", at_least_once=True)
    assert sender.send_to_many(to_topic="kw_news", messages=[b"5"], at_least_once_delivery=True) == 1
    assert sender.send_to_many(topic="kw_more", messages=[b"6"], at_least_once=True) == 1
    assert inbox.wait_count(6) == 6
    assert sorted(inbox.payloads()) == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert receiver.unsubscribe(to_topic="kw_news")
    assert receiver.unsubscribe(topic="kw_more")


def test_send_refuses_a_keyword_given_under_both_names(make_client):
    sender = make_client("kw_both", "kw_both_topic")
    with pytest.raises(TypeError):
        sender.send_to(topic="t", to_topic="t", data=b"x")
    with pytest.raises(TypeError):
        sender.send_to("t", b"x", True, at_least_once_delivery=True)
