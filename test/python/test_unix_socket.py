"""A Redis reached over a unix socket (unix:// and redis+unix:// URLs) works like TCP."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import liner
from liner_testkit import Inbox


@pytest.fixture
def unix_redis():
    d = tempfile.mkdtemp(prefix="liner-unix-")
    sock = os.path.join(d, "redis.sock")
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                             "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.02)
    yield sock
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("scheme", ["unix://", "redis+unix://"])
def test_two_peers_over_a_unix_socket_store(unix_redis, scheme):
    url = scheme + unix_redis
    receiver = liner.Client("ux_r", "ux_rt", "127.0.0.1:0", url)
    sender = liner.Client("ux_s", "ux_st", "127.0.0.1:0", url)
    try:
        inbox = Inbox()
        assert receiver.run(inbox), receiver.last_error_message()
        assert sender.run(Inbox()), sender.last_error_message()
        assert sender.send_to("ux_rt", b"over a unix socket")
        assert inbox.wait_count(1) == 1
        assert inbox.payloads() == [b"over a unix socket"]
    finally:
        sender.close()
        receiver.close()
