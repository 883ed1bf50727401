"""Fixtures of the fault tests (test/conftest.py provides redis_server, redis and liner_lib):
peer processes that are always ended, private redis-servers that are always stopped, and a
temporary directory for the listeners' record files."""
import pytest

from faultkit import Peer, PrivateRedis


@pytest.fixture
def peers():
    """Factory of Peer processes: peers(role, unique, topic, redis_url, *options). Every process
    is resumed if stopped, asked to close, and killed if it does not, after the test."""
    made = []

    def make(*args, **options):
        p = Peer(*args, **options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def private_redis():
    """A redis-server of this test alone, persistent across restarts, on a fixed port."""
    servers = []

    def make(persistent=True):
        s = PrivateRedis(persistent)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()
