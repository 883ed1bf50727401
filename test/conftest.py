"""Shared pytest fixtures: a private redis-server and the liner Python binding.

Every test session gets its own redis-server on a free loopback port (or the one named by
LINER_TEST_REDIS_URL). Each test gets a fresh database: `redis` flushes it before the test.

`liner` is the repository's python/liner, unless LINER_PYTHON_FROM=installed: then it is the
copy installed in the running Python (e.g. from the wheel, see test/package/test_wheel.py), and
the session refuses to start if `import liner` still finds the repository's.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROM_INSTALLED = os.environ.get("LINER_PYTHON_FROM") == "installed"
if not FROM_INSTALLED:
    sys.path.insert(0, os.path.join(ROOT, "python"))
# The shared test kit (bounded waits, free ports, a tiny Redis client) for every suite.
sys.path.insert(0, os.path.join(ROOT, "test", "python"))

import liner  # noqa: E402

if FROM_INSTALLED and os.path.abspath(liner.__file__).startswith(os.path.join(ROOT, "python") + os.sep):
    raise RuntimeError("LINER_PYTHON_FROM=installed, but liner was imported from %s" % liner.__file__)
from liner_testkit import free_port  # noqa: E402,F401


class RedisServer:
    """A redis-server this test session owns, plus a tiny redis-cli wrapper."""

    def __init__(self, url=None):
        self.proc = None
        self.dir = None
        if url:
            self.url = url
            rest = url.split("://", 1)[1].split("/", 1)[0]
            self.host, self.port = rest.rsplit(":", 1)
            self.port = int(self.port)
        else:
            self.host, self.port = "127.0.0.1", free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self.start()

    def start(self):
        self.dir = self.dir or tempfile.mkdtemp(prefix="liner-redis-")
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.cli("PING") == "PONG":
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cli(self, *args, raw=False):
        """Runs one redis-cli command; returns stdout without the trailing newline."""
        out = subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port)]
                             + (["--raw"] if raw else []) + [str(a) for a in args],
                             capture_output=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode())
        return out.stdout.decode("utf-8", "replace").rstrip("\n")

    def keys(self):
        out = self.cli("--scan", raw=True)
        return sorted(k for k in out.split("\n") if k)


def pytest_report_header(config):
    # Which liner the session tests: the repository's or an installed one (LINER_PYTHON_FROM).
    return "liner package: %s" % os.path.abspath(liner.__file__)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer(os.environ.get("LINER_TEST_REDIS_URL"))
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server):
    redis_server.cli("FLUSHALL")
    yield redis_server


@pytest.fixture(scope="session", autouse=True)
def liner_lib():
    liner.loadLib()
    return liner
