"""Helpers shared by the Python tests: bounded waits, a message inbox, a tiny binary-safe Redis
client, the frame layout of spec section 1 (to read frames stored in Redis), and queries on a
liner SQLite file."""
import ast
import os
import socket
import struct
import subprocess
import sys
import threading
import time


_handed_out = set()


def _sanitized():
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return False
    return "libasan" in maps or "libtsan" in maps


# How much slower this process runs: 3 under ASan or TSan (scripts/sanitize.sh preloads them),
# else 1. For the few bounds that tell a prompt reaction from a periodic one.
SLOWDOWN = 3 if _sanitized() else 1


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process has not been handed
    before: the kernel may give a just-closed port out again, and two callers asking in a row (two
    listeners to start later) must not get the same one."""
    for _ in range(64):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh loopback port after 64 tries")


def made_and_closed(make, reverse=False, close=lambda thing: thing.close()):
    """The body of a factory fixture (``yield from made_and_closed(Peer)``): yields a factory
    that passes its arguments to `make` and remembers what it made; after the test, closes every
    one (the last made first with reverse=True), whether the test passed or not."""
    made = []

    def factory(*args, **kwargs):
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing

    yield factory
    for thing in (reversed(made) if reverse else made):
        close(thing)


def end_process(proc, timeout, kill):
    """Ends a child that exits on stdin EOF: closes its stdin and waits up to `timeout` seconds,
    calls kill() when it does not end in time, then closes its pipes."""
    if proc.poll() is None:
        try:
            proc.stdin.close()
            proc.wait(timeout)
        except Exception:
            kill()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except Exception:
            pass


def loopback_server(handle, stop, backlog=16):
    """A TCP server on 127.0.0.1 that passes every connection it accepts to handle(conn), on a
    thread of its own, until `stop` (a threading.Event) is set. Returns its "127.0.0.1:port"."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(backlog)
    srv.settimeout(0.2)

    def serve():
        with srv:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except socket.timeout:
                    continue
                handle(conn)

    threading.Thread(target=serve, daemon=True).start()
    return "127.0.0.1:%d" % srv.getsockname()[1]


# Run by sqlite_query in a child process: one query, its rows printed with repr().
_SQLITE_QUERY = """
import sqlite3, sys, ast
from contextlib import closing
with closing(sqlite3.connect(sys.argv[1], timeout=10)) as db:
    print(repr(db.execute(sys.argv[2], ast.literal_eval(sys.argv[3])).fetchall()))
"""


def sqlite_query(path, sql, *params):
    """The rows of one query on an SQLite file, read by Python's sqlite3 module in a child process.

    Never in this process while a liner client here may have the file open: liner carries its own
    SQLite, and two copies of SQLite in one process do not see each other's POSIX locks, so one
    may reset the WAL index the other has mapped (a SIGBUS) or corrupt the file
    (sqlite.org/howtocorrupt.html, "multiple copies of SQLite linked into the same application").
    Rows hold what repr() round-trips: ints, floats, strings, bytes, None."""
    out = subprocess.run([sys.executable, "-c", _SQLITE_QUERY, os.fspath(path), sql, repr(tuple(params))],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("sqlite_query %r on %s failed: %s" % (sql, path, out.stderr.strip()))
    return ast.literal_eval(out.stdout)


def wait_until(condition, timeout=5.0, interval=0.01):
    """Polls `condition()` until it is truthy or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Inbox:
    """Collects (to, from_, data) triples from a receive callback, thread-safely."""

    def __init__(self, keep_data=True):
        self.lock = threading.Condition()
        self.items = []
        self.keep_data = keep_data

    def __call__(self, to, from_, data):
        with self.lock:
            self.items.append((to, from_, data if self.keep_data else len(data)))
            self.lock.notify_all()

    def __len__(self):
        with self.lock:
            return len(self.items)

    def snapshot(self):
        with self.lock:
            return list(self.items)

    def payloads(self):
        with self.lock:
            return [item[2] for item in self.items]

    def wait_count(self, n, timeout=5.0):
        """Waits until at least `n` messages arrived; returns the count seen."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            return len(self.items)


class RespError(RuntimeError):
    """An error reply from Redis, or a reply the client cannot read."""


class RespConnection:
    """A minimal synchronous RESP2 client (binary-safe) over a connected socket, one command
    per call: enough for test assertions. Shared by every suite (test/redis subclasses it)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(max(65536, n + 2 - len(self.buf)))
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError("bad RESP reply %r" % line)


class Resp(RespConnection):
    """A RESP connection to host:port, called like a function: resp("GET", key)."""

    def __init__(self, host, port, timeout=10.0):
        super().__init__(socket.create_connection((host, port), timeout=timeout))

    @classmethod
    def of(cls, server):
        return cls(server.host, server.port)

    def __call__(self, *args):
        return self.command(*args)

    # conveniences
    def keys(self):
        return sorted(k.decode() for k in self("KEYS", "*"))

    def get(self, key):
        v = self("GET", key)
        return None if v is None else v.decode()

    def type(self, key):
        return self("TYPE", key)

    def hgetall(self, key):
        flat = self("HGETALL", key)
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}

    def llen(self, key):
        return self("LLEN", key)

    def lrange(self, key):
        return self("LRANGE", key, 0, -1)

    def dump_values(self):
        """{key: (type, value)} of every key, values in comparable form."""
        out = {}
        for key in self.keys():
            t = self.type(key)
            if t == "string":
                out[key] = (t, self("GET", key))
            elif t == "hash":
                out[key] = (t, self.hgetall(key))
            elif t == "list":
                out[key] = (t, tuple(self.lrange(key)))
            else:
                out[key] = (t, None)
        return out


FLAG_COMPRESS = 0x01
FLAG_AT_LEAST_ONCE = 0x02


def parse_frame(frame):
    """Splits a stored frame (spec section 1.8: full bytes with the length prefix) into
    (number_mess, connection_key, topic_key, flags, data)."""
    body_len, = struct.unpack_from(">I", frame, 0)
    assert body_len == len(frame) - 4, "body_len %d but frame is %d bytes" % (body_len, len(frame))
    number_mess, ck, tk, flags, data_len = struct.unpack_from(">QiiBI", frame, 4)
    assert 21 + data_len == body_len
    return number_mess, ck, tk, flags, frame[25:25 + data_len]


def seq_payload(i, size=100):
    """A payload of `size` bytes that starts with its sequence number."""
    head = b"%010d" % i
    return head + b"." * (size - len(head))


def seq_of(data):
    return int(data[:10])


def send_retrying(client, topic, data, at_least_once=True, timeout=10.0, all_=False):
    """send_to (or send_all) that backs off and retries while the library answers ERR_BUSY.
    Returns (ok, error_code)."""
    import liner
    send = client.send_all if all_ else client.send_to
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if send(topic, data, at_least_once):
            return True, liner.OK
        code = client.last_error_code()
        if code != liner.ERR_BUSY or time.monotonic() >= deadline:
            return False, code
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


class SeqChecker:
    """Receive callback for sequence-numbered payloads (seq_payload): counts them and records
    every number, so a test can check that nothing is lost, doubled or reordered."""

    def __init__(self, keep=True):
        self.lock = threading.Condition()
        self.seqs = []
        self.keep = keep
        self.count = 0
        self.next = 1
        self.errors = []   # first few out-of-order numbers: (expected, got)
        self.bad_meta = []

    def expect_meta(self, to, from_):
        self.meta = (to, from_)

    def __call__(self, to, from_, data):
        n = int(data[:10])
        with self.lock:
            if n != self.next and len(self.errors) < 20:
                self.errors.append((self.next, n))
            self.next = n + 1
            self.count += 1
            if self.keep:
                self.seqs.append(n)
            meta = getattr(self, "meta", None)
            if meta is not None and (to, from_) != meta and len(self.bad_meta) < 20:
                self.bad_meta.append((to, from_))
            self.lock.notify_all()

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            return self.count


def stats_record():
    """The stats record as native/core/client_stats.hpp defines it, once for every face:
    [(c_name, js_name, meaning)] in order."""
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "native", "core", "client_stats.hpp")) as f:
        text = f.read()
    return re.findall(r'^\s*X\((\w+), (\w+), "([^"]*)"\)', text, re.M)
