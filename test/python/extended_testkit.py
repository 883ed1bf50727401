"""Helpers of the extended-API tests (liner_broker 1.4 surface): a status-event recorder, a peer
running in its own Python process (to be SIGKILLed), a private redis-server that a test may stop,
a fixture that restores the process-wide limits, and one that collects the log lines."""
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import liner
from liner_testkit import end_process, made_and_closed

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_SCRIPT = os.path.join(HERE, "peer_process.py")

KIND_NAMES = {
    liner.PEER_CONNECTED: "PEER_CONNECTED", liner.PEER_DISCONNECTED: "PEER_DISCONNECTED",
    liner.PEER_SUBSCRIBED: "PEER_SUBSCRIBED", liner.PEER_UNSUBSCRIBED: "PEER_UNSUBSCRIBED",
    liner.SENDER_ROUTE_LOST: "SENDER_ROUTE_LOST", liner.SENDER_STORE_ERROR: "SENDER_STORE_ERROR",
    liner.SENDER_SEND_ERROR: "SENDER_SEND_ERROR",
    liner.LISTENER_STORE_ERROR: "LISTENER_STORE_ERROR", liner.SENDER_BUSY: "SENDER_BUSY",
    liner.SENDER_WRITABLE: "SENDER_WRITABLE",
    liner.STORE_RECOVERED: "STORE_RECOVERED",
}


class LogLines:
    """A log callback (liner.set_log_callback) that keeps every line, and the thread of each."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lines = []
        self.thread_of = {}  # line -> ident of the thread that logged it

    def __call__(self, line):
        with self.lock:
            self.lines.append(line)
            self.thread_of[line] = threading.get_ident()

    def snapshot(self):
        with self.lock:
            return list(self.lines)


@pytest.fixture
def log_lines():
    """The process's log lines during the test (the callback is removed after it)."""
    lines = LogLines()
    assert liner.set_log_callback(lines)
    yield lines
    assert liner.set_log_callback(None)


class Event:
    __slots__ = ("at", "kind", "topic", "peer", "message")

    def __init__(self, at, kind, topic, peer, message):
        self.at, self.kind, self.topic, self.peer, self.message = at, kind, topic, peer, message

    def __repr__(self):
        return "%s(topic=%r, peer=%r, message=%r)" % (KIND_NAMES.get(self.kind, self.kind),
                                                      self.topic, self.peer, self.message)


class EventLog:
    """A status callback that records every event with its arrival time (time.monotonic())."""

    def __init__(self):
        self.cond = threading.Condition()
        self.events = []

    def __call__(self, kind, topic, peer, message):
        assert isinstance(kind, int) and isinstance(topic, str)
        assert isinstance(peer, str) and isinstance(message, str)
        with self.cond:
            self.events.append(Event(time.monotonic(), kind, topic, peer, message))
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def matching(self, kind, topic=None, peer=None, since=0.0):
        with self.cond:
            return [e for e in self.events if e.kind == kind and e.at >= since
                    and (topic is None or e.topic == topic) and (peer is None or e.peer == peer)]

    def wait(self, kind, topic=None, peer=None, since=0.0, timeout=10.0):
        """The first event of `kind` (and `topic`/`peer` when given) that arrived at or after
        `since`, waiting up to `timeout` seconds for it; None if none came."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e.kind == kind and e.at >= since and (topic is None or e.topic == topic) \
                            and (peer is None or e.peer == peer):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


class PeerProcess:
    """A liner client in a separate Python process (peer_process.py), so that a test can SIGKILL
    it. Its stdout lines are read by a thread; `expect(prefix)` waits for one."""

    def __init__(self, role, unique, topic, redis_url, to=None, count=0, subscribe=None):
        args = [sys.executable, PEER_SCRIPT, role, unique, topic, redis_url]
        if to:
            args += ["--to", to, "--count", str(count)]
        if subscribe:
            args += ["--subscribe", subscribe]
        env = dict(os.environ)
        # The peer imports the same liner as the test: the installed one under
        # LINER_PYTHON_FROM=installed (test/conftest.py), else the repository's.
        if env.get("LINER_PYTHON_FROM") != "installed":
            env["PYTHONPATH"] = os.pathsep.join(
                [os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"),
                 env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE, env=env, text=True)
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink(line.rstrip("\n"))

    def expect(self, prefix, timeout=20.0):
        """The rest of the first stdout line starting with `prefix` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("peer process printed no %r line; stderr: %s" % (
                    prefix, "\n".join(self.stderr)))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def kill(self):
        """SIGKILL: the peer gets no chance to unregister or close its sockets cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self):
        end_process(self.proc, 10, self.kill)  # the peer closes its client and exits on EOF


@pytest.fixture
def peer_processes():
    """Factory of PeerProcess objects; every process is ended after the test."""
    yield from made_and_closed(PeerProcess)


@pytest.fixture
def private_redis(redis_server):
    """A redis-server of this test alone, which the test may stop() and start() again."""
    server = type(redis_server)()  # test/conftest.py's RedisServer: no URL starts a new server
    yield server
    server.stop()
    if server.dir:
        shutil.rmtree(server.dir, ignore_errors=True)


LIMITS = ("max_message_size", "compress_threshold", "max_send_queue", "max_send_queue_bytes")


@pytest.fixture
def restore_limits():
    """Saves the process-wide limits and puts them back after the test."""
    saved = {name: getattr(liner, "get_" + name)() for name in LIMITS}
    yield saved
    for name, value in saved.items():
        getattr(liner, "set_" + name)(value)


def within(event, since, seconds):
    """Asserts that `event` came no later than `seconds` after `since`."""
    assert event is not None
    assert event.at - since <= seconds, "%r came %.3f s after the action" % (event, event.at - since)
