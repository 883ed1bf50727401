"""Fixtures of the Python binding tests (test/conftest.py provides redis_server, redis, liner_lib)."""
import pytest

import liner
from liner_testkit import Resp


@pytest.fixture
def make_client(redis):
    """Factory of liner clients on the test Redis; every client made is closed after the test.

    make_client(unique_name, topic, localhost="127.0.0.1:0", url=None) -> liner.Client
    """
    made = []

    def make(unique_name, topic, localhost="127.0.0.1:0", url=None):
        client = liner.Client(unique_name, topic, localhost, url or redis.url)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


@pytest.fixture
def rdb(redis):
    """A binary-safe Redis connection to the (flushed) test database."""
    with Resp.of(redis) as conn:
        yield conn
