"""Fixtures of the Python binding tests (test/conftest.py provides redis_server, redis, liner_lib)."""
import pytest

import liner
from liner_testkit import Inbox, Resp, made_and_closed


@pytest.fixture
def make_client(redis):
    """Factory of liner clients on the test Redis; every client made is closed after the test.

    make_client(unique_name, topic, localhost="127.0.0.1:0", url=None) -> liner.Client
    """
    def make(unique_name, topic, localhost="127.0.0.1:0", url=None):
        return liner.Client(unique_name, topic, localhost, url or redis.url)

    yield from made_and_closed(make, reverse=True)


@pytest.fixture
def started_client(make_client):
    """Factory of running clients (made by make_client, so closed after the test), each with an
    Inbox for what it receives.

    started_client(unique_name, topic, localhost="127.0.0.1:0", url=None, subscribe=())
        -> (liner.Client, Inbox); the topics in `subscribe` are subscribed to before run.
    """
    def start(*args, subscribe=(), **kwargs):
        client = make_client(*args, **kwargs)
        for topic in subscribe:
            assert client.subscribe(topic), client.last_error_message()
        inbox = Inbox()
        assert client.run(inbox), client.last_error_message()
        return client, inbox

    return start


@pytest.fixture
def make_pair(make_client):
    """A running receiver "{name}_rx" (topic "{name}_rx_topic") with an Inbox, and a running
    sender "{name}_tx" (topic "{name}_tx_topic").

    make_pair(name) -> (sender, inbox)
    """
    def make(name):
        receiver = make_client(name + "_rx", name + "_rx_topic")
        inbox = Inbox()
        assert receiver.run(inbox)
        sender = make_client(name + "_tx", name + "_tx_topic")
        assert sender.run(Inbox())
        return sender, inbox

    return make


@pytest.fixture
def rdb(redis):
    """A binary-safe Redis connection to the (flushed) test database."""
    with Resp.of(redis) as conn:
        yield conn
