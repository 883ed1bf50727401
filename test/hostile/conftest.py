"""Fixtures of the hostile-input tests (test/conftest.py provides redis_server, redis and
liner_lib). The listener under attack runs in its own process, fault_peer.py of test/fault, so
that its RSS can be read from /proc; faultkit's helpers and its `peers` fixture are shared with
the fault tests."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fault"))

from faultkit import peers  # noqa: E402,F401  (a fixture: factory of fault_peer.py processes)
