"""Fixtures of the hostile-input tests (test/conftest.py provides redis_server, redis and
liner_lib). The listener under attack runs in its own process, fault_peer.py of test/fault, so
that its RSS can be read from /proc; faultkit's helpers are shared with the fault tests."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fault"))

from faultkit import Peer  # noqa: E402


@pytest.fixture
def peers():
    """Factory of fault_peer.py processes, each closed (or killed) after the test."""
    made = []

    def make(*args, **options):
        p = Peer(*args, **options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
