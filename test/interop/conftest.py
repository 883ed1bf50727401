"""Fixtures of the interop tests (test/conftest.py provides redis and liner_lib): the lbpeer
binary, and factories of lbpeer processes and liner clients over the `store` fixture that each
test module defines (a RedisStore or a SqliteStore of lbkit)."""
import os
import shutil
import subprocess

import pytest

from lbkit import PEER_BIN, PEER_DIR, Peer
from liner_testkit import made_and_closed


@pytest.fixture(scope="session")
def lbpeer_bin():
    """Builds test/interop/peer once per session (target dir test/interop/peer/target)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not installed: cannot build the liner_broker 1.3.1 reference peer")
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(PEER_DIR, "target"))
    out = subprocess.run([cargo, "build", "--release", "--locked", "--manifest-path",
                          os.path.join(PEER_DIR, "Cargo.toml")],
                         env=env, capture_output=True, timeout=900)
    if out.returncode != 0:
        pytest.fail("cargo build of lbpeer failed:\n"
                    + out.stderr.decode("utf-8", "replace")[-4000:])
    return PEER_BIN


@pytest.fixture
def peers(lbpeer_bin, store, tmp_path):
    """Factory of lbpeer processes on the test's store; every one is killed after the test.

    peers(name, topic, listen, *args, stdin=False, timeout_ms=60000) -> Peer
    """
    def make(name, topic, listen, *args, **kw):
        return Peer(str(tmp_path), store.peer_args(), name, topic, listen, *args, **kw)

    yield from made_and_closed(make, close=Peer.kill)


@pytest.fixture
def clients(store):
    """Factory of liner clients on the test's store; every one is closed after the test.

    clients(name, topic, localhost="127.0.0.1:0") -> liner.Client
    """
    yield from made_and_closed(store.client, reverse=True)
