"""What the Redis integration scenarios share: the Redis they run against, the liner binding,
names that no other run uses, bounded waits, and removing every key a scenario created.

Redis: ``LINER_TEST_REDIS_URL`` when set (used as given, never started or flushed); otherwise
``redis://127.0.0.1:$LINER_TEST_REDIS_PORT/0`` (port 16379 by default), and when nothing
answers there a private ``redis-server`` is started on that port (temporary directory, no
persistence) and stopped when the process exits. run_integration.py does this once for all
scenarios and hands them the URL; a scenario run on its own does it itself.

Scenarios never flush a database: they use names with a random suffix and delete their own
keys at the end, so they can share a Redis with other runs.
"""
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "test", "python"))  # the shared test kit

import liner  # noqa: E402  (the python/liner package)
from liner_testkit import RespConnection  # noqa: E402
from liner_testkit import RespError as RedisError  # noqa: E402,F401

DEFAULT_PORT = 16379


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(pred, timeout_s=5.0, what="condition", step_s=0.02):
    """Polls pred() until it is truthy; raises TimeoutError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timeout after {timeout_s:.1f} s waiting for {what}")
        time.sleep(step_s)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix):
    """A name no other run uses (names become parts of Redis keys: no ':' or '\\')."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ---- a minimal Redis client: the shared test kit's, opened from a URL ------------------------

class Redis(RespConnection):
    """One connection to the Redis of a URL (redis://[user:pass@]host[:port][/db] or unix:///path)."""

    def __init__(self, url, timeout=5.0):
        self.url = url
        parts = urlsplit(url)
        if parts.scheme in ("unix", "redis+unix"):
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(timeout)
            sock.connect(parts.path)
            db = parts.query[3:] if parts.query.startswith("db=") else ""
        elif parts.scheme == "redis":
            sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
            db = parts.path.lstrip("/")
        else:
            raise ValueError(f"unsupported Redis URL {url!r}")
        super().__init__(sock)
        if parts.password is not None:
            auth = [unquote(parts.username), unquote(parts.password)] if parts.username else [unquote(parts.password)]
            self.cmd("AUTH", *auth)
        if db:
            self.cmd("SELECT", db)

    cmd = RespConnection.command  # the name the scenarios use

    def scan(self, pattern):
        cursor, found = b"0", set()
        while True:
            cursor, names = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.update(n.decode() for n in names)
            if cursor == b"0":
                return sorted(found)


def answers(url, timeout=0.5):
    try:
        with Redis(url, timeout=timeout) as r:
            return r.cmd("PING") == "PONG"
    except (OSError, RedisError, ValueError):
        return False


# ---- which Redis --------------------------------------------------------------------------

class PrivateRedis:
    """A redis-server this process started; stop() is idempotent."""

    def __init__(self, port):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.dir = tempfile.mkdtemp(prefix="liner-harness-redis-")
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("nothing answers on port %d and redis-server is not installed "
                               "(Debian: apt-get install redis-server), or set LINER_TEST_REDIS_URL" % port)
        self.proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: answers(self.url) or self.proc.poll() is not None, 10.0, "redis-server to start")
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"redis-server could not start on port {port} (taken?)")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_url():
    """The URL the scenarios use: LINER_TEST_REDIS_URL, else the one on LINER_TEST_REDIS_PORT."""
    url = os.environ.get("LINER_TEST_REDIS_URL")
    if url:
        return url
    return f"redis://127.0.0.1:{int(os.environ.get('LINER_TEST_REDIS_PORT', DEFAULT_PORT))}/0"


def ensure_redis():
    """Returns (url, server): server is the PrivateRedis started here, or None when one answered.

    A started server is stopped at exit as well.
    """
    url = redis_url()
    if answers(url):
        return url, None
    if os.environ.get("LINER_TEST_REDIS_URL"):
        raise RuntimeError(f"LINER_TEST_REDIS_URL={url} does not answer")
    server = PrivateRedis(int(os.environ.get("LINER_TEST_REDIS_PORT", DEFAULT_PORT)))
    atexit.register(server.stop)
    return server.url, server


# ---- a scenario's peers and keys -----------------------------------------------------------

class Mesh:
    """The peers of one scenario: created on the scenario's Redis, closed and their keys
    deleted by close() (every key whose name contains the scenario's suffix, and the channel
    keys lnr_connection:{ck}:* of those channels)."""

    def __init__(self, url):
        self.url = url
        self.suffix = uuid.uuid4().hex[:10]
        self.clients = []
        liner.load_lib()

    def name(self, base):
        return f"{base}_{self.suffix}"

    def client(self, base, topic_base=None):
        """A new client named base_<suffix> on topic (topic_base or base)_<suffix>."""
        c = liner.Client(self.name(base), self.name(topic_base or base), "127.0.0.1:0", self.url)
        self.clients.append(c)
        return c

    def redis(self):
        return Redis(self.url)

    def close(self):
        for c in reversed(self.clients):
            c.close()
        self.clients.clear()
        with self.redis() as r:
            names = r.scan(f"*{self.suffix}*")
            for key in [n for n in names if n.startswith("lnr_connection:") and n.endswith(":key")]:
                ck = r.cmd("GET", key)
                if ck is not None:
                    names += [f"lnr_connection:{ck.decode()}:{f}" for f in ("sender", "mess_number", "messages")]
            if names:
                r.cmd("DEL", *names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Inbox:
    """A receive callback that records (to, from, data); thread-safe enough for list.append."""

    def __init__(self):
        self.items = []

    def __call__(self, to, from_, data):
        self.items.append((to, from_, bytes(data)))

    def payloads(self):
        return [d for _, _, d in self.items]

    def wait_count(self, n, timeout_s=5.0):
        wait_until(lambda: len(self.items) >= n, timeout_s, f"{n} message(s), got {len(self.items)}")


def scenario(main):
    """Runs a scenario's main(mesh) against the Redis of ensure_redis(); exit status 0 = passed."""
    url, _server = ensure_redis()
    with Mesh(url) as mesh:
        main(mesh)
    return 0
