"""Fixtures of the fault tests (test/conftest.py provides redis_server, redis and liner_lib):
peer processes that are always ended (faultkit's `peers`), private redis-servers that are always
stopped, and a temporary directory for the listeners' record files."""
import pytest

from faultkit import PrivateRedis, made_and_closed, peers  # noqa: F401  (peers: a fixture)


@pytest.fixture
def private_redis():
    """A redis-server of this test alone, persistent across restarts, on a fixed port."""
    yield from made_and_closed(PrivateRedis)
