"""Interop with liner_broker 1.3.1: liner peers and reference peers on one Redis.

The reference side is `lbpeer` (test/interop/peer, a tiny Rust program over the crate pinned at
=1.3.1), run as a child process; the liner side is the python/liner package over
build/libliner_broker.so, in this process. Each test pins one behaviour of spec/compat-1.3.1.md
section 0 "Match exactly":

- frames flow both ways with byte-identical payloads and the right `to`/`from`, including
  payloads over 1 MiB (zstd on the wire);
- at-least-once messages sent while the listener is down arrive once and in order after it
  restarts with the same identity and address, whichever side is offline;
- messages stored in Redis by one implementation's sender are delivered by the other when the
  sender identity is restarted with it;
- send_all reaches a mixed set of liner and liner_broker replicas;
- a liner pair writes the same Redis key names, types and values as a liner_broker pair.

1.3.1 behaviour the tests allow for (peer/src/main.rs has the details):
- its sender sees a dead connection only when a write fails and then reconnects on a 10 s tick, so
  offline tests wait up to ~45 s;
- its listener writes acks about once a second, and can leave the tail of a burst unread until
  another packet arrives: tests "nudge" an lbpeer listener with extra messages to a topic it
  ignores, or space their sends;
- a subscription made before `run` with port 0 is unusable, so lbpeer subscribes after `run`;
- it never removes its address from the directory when it stops.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

import liner
# The shared test kit (test/conftest.py puts it on the path).
from liner_testkit import free_port, made_and_closed, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_DIR = os.path.join(HERE, "peer")
PEER_BIN = os.path.join(PEER_DIR, "target", "release", "lbpeer")

# 1.3.1's reconnect tick is 10 s; a restarted listener is reached within one tick after it is up.
OFFLINE_DELIVERY_TIMEOUT = 45.0
FLOW_TIMEOUT = 20.0


# ---- helpers ------------------------------------------------------------------------------

def gen_payload(seq, size):
    """Twin of lbpeer's gen_payload: b"seq=NNNNNN|" then bytes (seq + j) & 0xff, cut to size."""
    head = b"seq=%06d|" % seq
    n = max(0, size - len(head))
    pattern = bytes((seq + j) & 0xff for j in range(256))
    return (head + pattern * (n // 256 + 1))[:size]


def deliver(count, n, timeout, nudge=None, grace=15.0):
    """Waits until count() >= n; returns count().

    With `nudge` (used when an lbpeer listens): calls it every 0.25 s once something arrived
    (or after `grace` seconds), so that a burst tail that 1.3.1's listener left unread is read.
    """
    start = deadline = time.monotonic()
    deadline += timeout
    while count() < n and time.monotonic() < deadline:
        time.sleep(0.25)
        if nudge and (count() > 0 or time.monotonic() - start > grace):
            nudge()
    return count()


def seq_of(data):
    """Sequence number of a gen_payload() payload (None for anything else)."""
    m = re.match(rb"seq=(\d{6})\|", data)
    return int(m.group(1)) if m else None


def redis_dump(redis):
    """Every key with its type and (short) value, one per line, for assertion messages."""
    lines = []
    for key in redis.keys():
        kind = redis.cli("TYPE", key)
        if kind == "string":
            value = redis.cli("GET", key)[:60]
        elif kind == "hash":
            value = redis.cli("HGETALL", key).replace("\n", " ")
        elif kind == "list":
            value = "%s elements" % redis.cli("LLEN", key)
        else:
            value = ""
        lines.append("  %s (%s) %s" % (key, kind, value))
    return "\n".join(lines)


def describe(payloads):
    """Short form of a payload list for assertion messages."""
    return [(len(p), p[:16]) for p in payloads]


class Inbox:
    """Receive callback of a liner client: collects (to, from_, data) thread-safely."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []

    def __call__(self, to, from_, data):
        with self.cond:
            self.items.append((to, from_, bytes(data)))
            self.cond.notify_all()

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < n and time.monotonic() < deadline:
                self.cond.wait(max(0.0, deadline - time.monotonic()))
            return len(self.items)

    def snapshot(self):
        with self.cond:
            return list(self.items)


class Peer:
    """One lbpeer process; a thread collects its stdout lines (see peer/src/main.rs)."""

    def __init__(self, log_dir, redis_url, name, topic, listen, *args, stdin=False,
                 timeout_ms=60000):
        self.name = name
        self.log_path = os.path.join(log_dir, "lbpeer-%s-%d.log" % (name, time.monotonic_ns()))
        self.cond = threading.Condition()
        self.lines = []
        self.cursor = 0  # first line not yet consumed by command()
        cmd = [PEER_BIN, "--name", name, "--topic", topic, "--listen", listen,
               "--redis", redis_url, "--timeout-ms", str(timeout_ms)] + [str(a) for a in args]
        if stdin:
            cmd.append("--stdin")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF marker
            self.cond.notify_all()

    def _wait_line(self, pred, start, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        return None, i
                    if pred(line):
                        return line, i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, i
                self.cond.wait(left)

    def wait_ready(self, timeout=15.0):
        """Waits for READY; returns the bound address."""
        line, i = self._wait_line(lambda l: l.startswith(("READY\t", "FAIL\t")), 0, timeout)
        assert line and line.startswith("READY\t"), "lbpeer %s did not start: %r\n%s" % (
            self.name, line, self.log())
        self.cursor = i + 1
        return line.split("\t", 1)[1]

    def command(self, text, timeout=30.0):
        """Sends one stdin command and waits for its OK/FAIL answer; returns True on OK."""
        try:
            self.proc.stdin.write(text.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError("lbpeer %s is gone\n%s" % (self.name, self.log())) from None
        line, i = self._wait_line(lambda l: l.startswith(("OK\t", "FAIL\t")), self.cursor, timeout)
        assert line is not None, "lbpeer %s: no answer to %r\n%s" % (
            self.name, text[:80], self.log())
        self.cursor = i + 1
        return line.startswith("OK\t")

    def quit(self, timeout=15.0):
        """Ends the stdin session gracefully (the client is dropped); returns the exit code."""
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        return self.wait_exit(timeout)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def received(self):
        """[(to, from_, data)] in callback order."""
        with self.cond:
            lines = [l for l in self.lines if l is not None and l.startswith("RECV\t")]
        out = []
        for l in lines:
            _, to, from_, hexdata = l.split("\t", 3)
            out.append((to, from_, bytes.fromhex(hexdata)))
        return out

    def log(self):
        """The tail of this peer's stdout events and stderr, for assertion messages."""
        with self.cond:
            events = [l[:120] for l in self.lines if l is not None][-15:]
        try:
            with open(self.log_path, "rb") as f:
                err = f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            err = ""
        return "lbpeer %s exit=%s\nstdout tail:\n  %s\nstderr tail:\n%s" % (
            self.name, self.proc.poll(), "\n  ".join(events), err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass


class TapProxy:
    """A TCP relay that records what crosses it, to check liner's frames on the wire.

    Tests point a topic's directory entry at the relay instead of the listener. `sent(i)` is what
    the sender wrote on connection i, `answered(i)` what the listener wrote back (spec 1.1: a
    listener never writes).
    """

    def __init__(self, upstream):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.addr = "127.0.0.1:%d" % self.server.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # [(downstream bytearray, upstream bytearray)]
        self.sockets = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            record = (bytearray(), bytearray())
            with self.lock:
                self.conns.append(record)
                self.sockets += [down, up]
            threading.Thread(target=self._pump, args=(down, up, record[0]), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, record[1]), daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                with self.lock:
                    record += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass

    def connections(self):
        with self.lock:
            return len(self.conns)

    def sent(self, i):
        with self.lock:
            return bytes(self.conns[i][0])

    def answered(self, i):
        with self.lock:
            return bytes(self.conns[i][1])

    def close(self):
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.close()
                except OSError:
                    pass


def parse_frames(stream):
    """Splits a sender's byte stream (spec 1.2/1.3) into
    [(number_mess, connection_key, topic_key, flags, data)]; asserts it is well formed."""
    frames, pos = [], 0
    while pos < len(stream):
        assert len(stream) - pos >= 4 + 21, "truncated frame at offset %d" % pos
        body_len, = struct.unpack_from(">I", stream, pos)
        number_mess, ck, tk, flags, data_len = struct.unpack_from(">QiiBI", stream, pos + 4)
        assert body_len == 21 + data_len, "frame at %d: body_len %d, data_len %d" % (
            pos, body_len, data_len)
        assert flags & ~0x03 == 0, "frame at %d: reserved flag bits set: %#x" % (pos, flags)
        data = stream[pos + 25:pos + 25 + data_len]
        assert len(data) == data_len, "truncated frame data at offset %d" % pos
        frames.append((number_mess, ck, tk, flags, data))
        pos += 4 + body_len
    return frames


def redirect_topic(redis, topic, addr, proxy_addr):
    """Points `topic`'s directory entry for `addr` at `proxy_addr` (same registrant name)."""
    key = "lnr_topic:%s:addr" % topic
    name = redis.cli("HGET", key, addr)
    assert name, "%s is not registered under %s: %s" % (addr, topic, redis.cli("HGETALL", key))
    redis.cli("HSET", key, proxy_addr, name)
    redis.cli("HDEL", key, addr)


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def check_wire(tap, plan, ck, topic_keys):
    """The frames of `plan` [(topic, payload, at_least_once)] on the tapped connection: one
    connection, right ck and tk, AT_LEAST_ONCE flag as requested, COMPRESS iff the payload is
    over 1 MiB (then a zstd frame), plain payload bytes otherwise, rising numbers, and not a
    byte from the listener."""
    assert tap.connections() == 1, "expected one connection per address, got %d" % (
        tap.connections())
    assert tap.answered(0) == b"", "the listener wrote %d bytes" % len(tap.answered(0))
    wanted = set(topic_keys.values())
    frames = [f for f in parse_frames(tap.sent(0)) if f[2] in wanted]  # not the nudges
    assert len(frames) >= len(plan), "%d frames for %d messages" % (len(frames), len(plan))
    numbers = [f[0] for f in frames]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1, numbers
    for i, ((number, fck, tk, flags, data), (topic, payload, alo)) in enumerate(zip(frames, plan)):
        where = "frame %d (number %d, %d-byte payload)" % (i, number, len(payload))
        assert fck == ck, "%s: connection_key %d, Redis has %d" % (where, fck, ck)
        assert tk == topic_keys[topic], "%s: topic_key %d, %s has %d" % (
            where, tk, topic, topic_keys[topic])
        assert bool(flags & 0x02) == alo, "%s: flags %#x, at_least_once=%s" % (where, flags, alo)
        if len(payload) > MIB:
            assert flags & 0x01 and data[:4] == ZSTD_MAGIC, "%s: not zstd: flags %#x, %r" % (
                where, flags, data[:4])
        else:
            assert not flags & 0x01 and data == payload, "%s: flags %#x, data differs" % (
                where, flags)


# ---- fixtures -----------------------------------------------------------------------------

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
def peers(lbpeer_bin, redis, tmp_path):
    """Factory of lbpeer processes on the test Redis; every one is killed after the test.

    peers(name, topic, listen, *args, stdin=False, timeout_ms=60000) -> Peer
    """
    def make(name, topic, listen, *args, **kw):
        return Peer(str(tmp_path), redis.url, name, topic, listen, *args, **kw)

    yield from made_and_closed(make, close=Peer.kill)


@pytest.fixture
def clients(redis):
    """Factory of liner clients on the test Redis; every one is closed after the test.

    clients(name, topic, localhost="127.0.0.1:0") -> liner.Client
    """
    def make(name, topic, localhost="127.0.0.1:0"):
        return liner.Client(name, topic, localhost, redis.url)

    yield from made_and_closed(make, reverse=True)


@pytest.fixture
def taps():
    """Factory of TapProxy relays; all are closed after the test. taps(upstream) -> TapProxy"""
    yield from made_and_closed(TapProxy)


def assert_flow(got, plan, source, log):
    """The (to, from, data) triples `got` are the (topic, data, at-least-once) `plan`, in order:
    the same topics, `source` as from, byte-identical payloads. log() explains a failure."""
    assert [(to, frm) for to, frm, _ in got] == [(t, source) for t, _, _ in plan], log()
    for i, ((_, _, data), (_, sent, _)) in enumerate(zip(got, plan)):
        assert data == sent, "payload #%d differs: got %d bytes, sent %d" % (i, len(data), len(sent))


def run_client(client, inbox):
    assert client.run(inbox), "liner run failed: %s %s" % (client.last_error_code(),
                                                           client.last_error_message())
    return client.bound_listen_addr()


# Payloads for the flow tests: edge sizes around the compression threshold (> 1 MiB is zstd,
# exactly 1 MiB is not), binary with NULs, incompressible and compressible big ones.
MIB = 1024 * 1024


def flow_payloads():
    rnd = os.urandom
    return [
        b"x",
        b"hello from the other side",
        bytes(range(256)) * 4,                      # every byte value, NULs included
        rnd(200 * 1024),                            # spans many 64 KiB buffers
        rnd(MIB),                                   # exactly 1 MiB: not compressed
        b"\x00" + b"compressible " * (MIB // 13 + 1),   # 1 MiB + a bit: zstd, shrinks a lot
        rnd(3 * MIB + 7),                           # zstd output larger than input, still used
        b"tail",
    ]


# ---- liner -> liner_broker and liner_broker -> liner -----------------------------------------

def test_liner_sender_to_liner_broker_listener(peers, clients, taps, redis):
    """Every payload arrives byte-identical, in order, with `to` = the topic it was sent to (own
    topic or a subscription) and `from` = the liner sender's source topic; liner's frames are
    1.3.1 frames (checked on the wire through a relay)."""
    plan = [("lb_topic" if i % 3 else "lb_sub", p, i % 2 == 0)
            for i, p in enumerate(flow_payloads())]
    lb = peers("lb_listener", "lb_topic", "127.0.0.1:0", "--subscribe", "lb_sub",
               "--nudge-topic", "lb_nudge", "--expect", len(plan), "--linger-ms", 1500)
    lb_addr = lb.wait_ready()
    tap = taps(lb_addr)
    for topic in ("lb_topic", "lb_sub", "lb_nudge"):
        redirect_topic(redis, topic, lb_addr, tap.addr)

    sender = clients("ln_sender", "ln_topic")
    run_client(sender, Inbox())
    for i, (topic, data, alo) in enumerate(plan):
        assert sender.send_to(topic, data, alo), "send_to #%d failed: %s %s" % (
            i, sender.last_error_code(), sender.last_error_message())

    deliver(lambda: len(lb.received()), len(plan), FLOW_TIMEOUT,
            nudge=lambda: sender.send_to("lb_nudge", b"nudge", False))
    assert lb.wait_exit(10) == 0, lb.log()
    got = lb.received()  # everything, including late duplicates during the linger
    assert_flow(got, plan, "ln_topic", lb.log)

    ck = int(redis.cli("GET", "lnr_connection:ln_sender:ln_topic:lb_listener:key"))
    topic_keys = {t: int(redis.cli("GET", "lnr_topic:%s:key" % t)) for t in ("lb_topic", "lb_sub")}
    check_wire(tap, plan, ck, topic_keys)


def test_liner_broker_sender_to_liner_listener(peers, clients, taps, redis):
    """The reverse direction: frames written by 1.3.1 (zstd included) decode to the same bytes,
    and the liner listener never writes to the connection."""
    plan = [("ln_topic" if i % 3 else "ln_sub", p, i % 2 == 0)
            for i, p in enumerate(flow_payloads())]
    inbox = Inbox()
    listener = clients("ln_listener", "ln_topic")
    ln_addr = run_client(listener, inbox)
    assert listener.subscribe("ln_sub")  # after run, like lbpeer (send_all tests do it before)
    tap = taps(ln_addr)
    for topic in ("ln_topic", "ln_sub"):
        redirect_topic(redis, topic, ln_addr, tap.addr)

    lb = peers("lb_sender", "lb_topic", "127.0.0.1:0", stdin=True)
    lb.wait_ready()
    for topic, data, alo in plan:
        assert lb.command("send_to %s %s %s" % (topic, data.hex(), "alo" if alo else "be")), (
            lb.log())

    inbox.wait_count(len(plan), FLOW_TIMEOUT)
    time.sleep(1.5)  # late duplicates would show up here
    assert_flow(inbox.snapshot(), plan, "lb_topic", lb.log)
    # The relay saw the reference encoder's frames (the same checks, as a control) and not a
    # byte written back by liner.
    ck = int(redis.cli("GET", "lnr_connection:lb_sender:lb_topic:ln_listener:key"))
    topic_keys = {t: int(redis.cli("GET", "lnr_topic:%s:key" % t)) for t in ("ln_topic", "ln_sub")}
    check_wire(tap, plan, ck, topic_keys)
    assert lb.quit() == 0, lb.log()


# ---- at-least-once offline delivery -------------------------------------------------------

OFFLINE_COUNT = 20
OFFLINE_SIZE = 300


def assert_offline_queue_drained(redis, sender, sender_topic, listener):
    """Once everything is delivered, the channel's offline queue (spec 2.2
    `lnr_connection:{ck}:messages`) is empty, so a later restart of the sender cannot replay it."""
    ck = redis.cli("GET", "lnr_connection:%s:%s:%s:key" % (sender, sender_topic, listener))
    assert ck, redis_dump(redis)
    key = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: redis.cli("LLEN", key) == "0", 5), (
        "%s still holds %s frames after delivery\n%s" % (key, redis.cli("LLEN", key),
                                                          redis_dump(redis)))


def test_offline_delivery_to_restarted_liner_broker_listener(peers, clients, redis):
    """liner sender, liner_broker listener offline: messages sent while it is down reach it once,
    in order, after it restarts with the same name, topic and address."""
    port = free_port()
    listen = "127.0.0.1:%d" % port
    first = peers("lb_listener", "lb_topic", listen, "--expect", 1)
    first.wait_ready()

    sender = clients("ln_sender", "ln_topic")
    run_client(sender, Inbox())
    assert sender.send_to("lb_topic", b"warm-up", True)
    # The first run ends by itself after the warm-up, flushing its ack on the way out.
    assert first.wait_exit(FLOW_TIMEOUT) == 0, first.log()
    assert [d for _, _, d in first.received()] == [b"warm-up"], first.log()

    expected = [gen_payload(seq, OFFLINE_SIZE) for seq in range(1, OFFLINE_COUNT + 1)]
    for i, data in enumerate(expected):
        assert sender.send_to("lb_topic", data, True), (
            "send_to #%d while the listener is down: %s %s" % (
                i, sender.last_error_code(), sender.last_error_message()))
    time.sleep(1.0)  # the listener stays down a little while

    second = peers("lb_listener", "lb_topic", listen, "--nudge-topic", "lb_nudge",
                   "--expect", OFFLINE_COUNT, "--linger-ms", 2000,
                   timeout_ms=int(OFFLINE_DELIVERY_TIMEOUT * 1000))
    assert second.wait_ready() == listen
    # Nudges are best-effort and numbered after the backlog, so they never overtake it.
    deliver(lambda: len(second.received()), OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT,
            nudge=lambda: sender.send_to("lb_nudge", b"nudge", False))
    assert second.wait_exit(10) == 0, second.log()
    got = second.received()
    assert [(to, frm) for to, frm, _ in got] == [("lb_topic", "ln_topic")] * len(got)
    assert [d for _, _, d in got] == expected, (
        "got %s\n%s" % (describe([d for _, _, d in got]), second.log()))
    assert_offline_queue_drained(redis, "ln_sender", "ln_topic", "lb_listener")


def test_offline_delivery_to_restarted_liner_listener(peers, clients, redis):
    """liner_broker sender, liner listener offline: same contract in the other direction."""
    port = free_port()
    listen = "127.0.0.1:%d" % port
    inbox = Inbox()
    first = clients("ln_listener", "ln_topic", listen)
    assert run_client(first, inbox) == listen

    lb = peers("lb_sender", "lb_topic", "127.0.0.1:0", stdin=True,
               timeout_ms=int((OFFLINE_DELIVERY_TIMEOUT + 60) * 1000))
    lb.wait_ready()
    assert lb.command("gen_to ln_topic 0 1 %d alo" % OFFLINE_SIZE)
    assert inbox.wait_count(1, FLOW_TIMEOUT) == 1, lb.log()
    assert first.close()  # stops the listener; acks what it delivered

    # 1.3.1 notices the closed connection only when a write fails, which takes a second write
    # after the peer went away: hence the 100 ms spacing. Then it stores the messages in Redis
    # and retries the connection every 10 s.
    assert lb.command("gen_to ln_topic 1 %d %d alo 100" % (OFFLINE_COUNT, OFFLINE_SIZE)), lb.log()
    time.sleep(1.0)

    inbox2 = Inbox()
    second = clients("ln_listener", "ln_topic", listen)
    assert run_client(second, inbox2) == listen
    inbox2.wait_count(OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT)
    time.sleep(2.0)  # late duplicates would show up here
    got = inbox2.snapshot()
    expected = [gen_payload(seq, OFFLINE_SIZE) for seq in range(1, OFFLINE_COUNT + 1)]
    assert [d for _, _, d in got] == expected, (
        "got %s\nredis keys %s\n%s" % (describe([d for _, _, d in got]), redis.keys(), lb.log()))
    assert [(to, frm) for to, frm, _ in got] == [("ln_topic", "lb_topic")] * len(got)
    assert_offline_queue_drained(redis, "lb_sender", "lb_topic", "ln_listener")
    assert lb.quit() == 0, lb.log()


@pytest.mark.parametrize("first,then", [("liner", "liner_broker"), ("liner_broker", "liner")])
def test_stored_messages_handed_over_between_implementations(peers, clients, redis, first, then):
    """A sender whose at-least-once messages wait in Redis for an offline listener is restarted
    with the same name and topic but the other implementation, which delivers them once, in
    order: both read and write the stored frames (spec 1.8) and the sender->listener map (2.2)
    the same way."""
    listen = "127.0.0.1:%d" % free_port()
    # Runs once so that its address is listed (1.3.1 never removes it), then stays down.
    boot = peers("lb_listener", "lb_topic", listen)
    assert boot.wait_exit(15) == 0, boot.log()
    expected = [gen_payload(seq, OFFLINE_SIZE) for seq in range(1, OFFLINE_COUNT + 1)]

    if first == "liner":
        s1 = clients("snd", "snd_t")
        run_client(s1, Inbox())
        for data in expected:
            assert s1.send_to("lb_topic", data, True), (s1.last_error_code(),
                                                        s1.last_error_message())
        assert s1.close()  # stores what the listener did not acknowledge
    else:
        s1 = peers("snd", "snd_t", "127.0.0.1:0", stdin=True)
        s1.wait_ready()
        assert s1.command("gen_to lb_topic 1 %d %d alo" % (OFFLINE_COUNT, OFFLINE_SIZE))
        assert s1.quit() == 0, s1.log()  # dropping the client stores its queue
    ck = redis.cli("GET", "lnr_connection:snd:snd_t:lb_listener:key")
    assert ck, redis_dump(redis)
    assert redis.cli("LLEN", "lnr_connection:%s:messages" % ck) == str(OFFLINE_COUNT), (
        "%s stored this after stopping:\n%s" % (first, redis_dump(redis)))
    assert redis.cli("HGET", "lnr_sender:snd:snd_t:listener", listen) == "lb_topic", (
        redis_dump(redis))

    if then == "liner":
        s2 = clients("snd", "snd_t")
        run_client(s2, Inbox())
        nudge = lambda: s2.send_to("lb_nudge", b"nudge", False)  # noqa: E731
    else:
        s2 = peers("snd", "snd_t", "127.0.0.1:0", stdin=True,
                   timeout_ms=int((OFFLINE_DELIVERY_TIMEOUT + 60) * 1000))
        s2.wait_ready()
        nudge = lambda: s2.command("send_to lb_nudge %s be" % b"nudge".hex())  # noqa: E731
    time.sleep(0.5)
    listener = peers("lb_listener", "lb_topic", listen, "--nudge-topic", "lb_nudge",
                     "--expect", OFFLINE_COUNT, "--linger-ms", 2000,
                     timeout_ms=int(OFFLINE_DELIVERY_TIMEOUT * 1000))
    assert listener.wait_ready() == listen
    deliver(lambda: len(listener.received()), OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT,
            nudge=nudge)
    assert listener.wait_exit(10) == 0, "%s\n%s" % (listener.log(), redis_dump(redis))
    got = listener.received()
    assert [d for _, _, d in got] == expected, (
        "got %s\n%s" % (describe([d for _, _, d in got]), listener.log()))
    assert {(to, frm) for to, frm, _ in got} == {("lb_topic", "snd_t")}
    assert_offline_queue_drained(redis, "snd", "snd_t", "lb_listener")
    if then == "liner_broker":
        assert s2.quit() == 0, s2.log()


# ---- send_all over mixed replicas ---------------------------------------------------------

FANOUT_COUNT = 5
WARM_UP = b"warm-up"


@pytest.mark.parametrize("layout", ["subscribers", "source_replicas"])
@pytest.mark.parametrize("sender_kind", ["liner", "liner_broker"])
def test_send_all_reaches_mixed_replicas(peers, clients, redis, sender_kind, layout):
    """send_all to a topic served by 2 liner clients and 1 liner_broker peer (as subscribers, or
    as replicas with it as their source topic) delivers every message to each, once, in order."""
    topic = "fanout"

    def identity(name):
        # (source topic, extra lbpeer args / liner subscription)
        return (name + "_t", topic) if layout == "subscribers" else (topic, None)

    # ln_r1 subscribes before run, ln_r2 after: liner registers its bound address either way
    # (1.3.1 registered the unresolved "127.0.0.1:0" before run, which is why lbpeer subscribes
    # after run).
    inboxes, bound = [], {}
    for name, before_run in (("ln_r1", True), ("ln_r2", False)):
        own, sub = identity(name)
        client = clients(name, own)
        if sub and before_run:
            assert client.subscribe(sub)
        inbox = Inbox()
        bound[name] = run_client(client, inbox)
        if sub and not before_run:
            assert client.subscribe(sub)
        inboxes.append((name, inbox))
    messages = [gen_payload(seq, 64) for seq in range(1, FANOUT_COUNT + 1)]
    if sender_kind == "liner_broker":
        # 1.3.1's sender can lose a new address added while it is connecting another one (its
        # write loop overwrites the pending-address list after connecting), which a send_all to
        # three new replicas hits at random. So it meets them one by one first: send_to
        # round-robins over the directory, one warm-up message each.
        messages = [WARM_UP] + messages
    own, sub = identity("lb_r3")
    lb_replica = peers("lb_r3", own, "127.0.0.1:0", *(["--subscribe", sub] if sub else []),
                       "--expect", len(messages), "--linger-ms", 1500)
    bound["lb_r3"] = lb_replica.wait_ready()

    # Spaced by 200 ms so that the lbpeer replica reads each message on its own (no nudging here:
    # a nudge topic would be one more send_all target).
    if sender_kind == "liner":
        sender = clients("ln_sender", "sender_t")
        run_client(sender, Inbox())
        for data in messages:
            assert sender.send_all(topic, data, True), (sender.last_error_code(),
                                                        sender.last_error_message())
            time.sleep(0.2)
    else:
        lb_sender = peers("lb_sender", "sender_t", "127.0.0.1:0", stdin=True)
        lb_sender.wait_ready()
        for _ in range(3):
            assert lb_sender.command("send_to %s %s alo" % (topic, WARM_UP.hex())), lb_sender.log()
            time.sleep(0.3)
        assert lb_sender.command("gen_all %s 1 %d 64 alo 200" % (topic, FANOUT_COUNT)), (
            lb_sender.log())

    for name, inbox in inboxes:
        inbox.wait_count(len(messages), FLOW_TIMEOUT)
    assert lb_replica.wait_exit(FLOW_TIMEOUT) == 0, lb_replica.log()
    time.sleep(0.5)
    results = {name: inbox.snapshot() for name, inbox in inboxes}
    results["lb_r3"] = lb_replica.received()
    wrong = {name: ([seq_of(d) for _, _, d in got], sorted({(to, frm) for to, frm, _ in got}))
             for name, got in results.items()
             if [d for _, _, d in got] != messages
             or {(to, frm) for to, frm, _ in got} != {(topic, "sender_t")}}
    assert not wrong, (
        "replicas that did not get %s with (to, from) = %s: %s\nbound: %s\n"
        "redis:\n%s\n%s\n%s" % (
            [seq_of(d) for d in messages], (topic, "sender_t"), wrong, bound, redis_dump(redis),
            lb_replica.log(), lb_sender.log() if sender_kind == "liner_broker" else ""))
    if sender_kind == "liner_broker":
        assert lb_sender.quit() == 0, lb_sender.log()


# ---- Redis key compatibility -------------------------------------------------------------

KEYS_MESSAGES = [(b"one", True), (b"two", True), (b"three", False), (b"four", True)]


def pair_scenario(kind_sender, kind_listener, peers, clients, redis, tag):
    """A listener runs, a sender runs and sends KEYS_MESSAGES to it, the listener acks them.

    Returns {normalised key: (type, normalised value)} (see dump()), read while both still run:
    a liner client removes its address on close, which 1.3.1 never does; that difference is
    deliberate and not compared here.
    """
    names = {"S_name": tag + "snd", "S_topic": tag + "snd_t",
             "L_name": tag + "lsn", "L_topic": tag + "lsn_t"}
    stop = []
    received = None
    if kind_listener == "liner":
        inbox = Inbox()
        listener = clients(names["L_name"], names["L_topic"])
        l_addr = run_client(listener, inbox)
        received = lambda: len(inbox.snapshot())  # noqa: E731
    else:
        lp = peers(names["L_name"], names["L_topic"], "127.0.0.1:0", stdin=True)
        l_addr = lp.wait_ready()
        received = lambda: len(lp.received())  # noqa: E731
        stop.append(lp.quit)
    if kind_sender == "liner":
        sender = clients(names["S_name"], names["S_topic"])
        s_addr = run_client(sender, Inbox())
        for data, alo in KEYS_MESSAGES:
            assert sender.send_to(names["L_topic"], data, alo)
            time.sleep(0.3)  # spaced: an lbpeer listener then reads each message on its own
    else:
        sp = peers(names["S_name"], names["S_topic"], "127.0.0.1:0", stdin=True)
        s_addr = sp.wait_ready()
        for data, alo in KEYS_MESSAGES:
            assert sp.command("send_to %s %s %s" % (names["L_topic"], data.hex(),
                                                     "alo" if alo else "be"))
            time.sleep(0.3)
        stop.insert(0, sp.quit)

    assert wait_until(lambda: received() >= len(KEYS_MESSAGES), FLOW_TIMEOUT), (
        kind_sender, kind_listener, received())
    ck_key = "lnr_connection:%s:%s:%s:key" % (names["S_name"], names["S_topic"], names["L_name"])
    ck = wait_until(lambda: redis.cli("GET", ck_key), 5)
    assert re.fullmatch(r"-?\d+", ck or ""), (ck_key, ck, redis.keys())
    ack_key = "lnr_connection:%s:mess_number" % ck
    # Acks are written about once a second after delivery.
    assert wait_until(lambda: redis.cli("GET", ack_key) == str(len(KEYS_MESSAGES)), 5), (
        ack_key, redis.cli("GET", ack_key))
    time.sleep(1.5)  # let any periodic writer run once more before the snapshot
    snapshot = dump(redis, names, ck, {l_addr: "{L_addr}", s_addr: "{S_addr}"})
    for fn in stop:
        fn()
    return snapshot


def dump(redis, names, ck, addrs):
    """Every key as {normalised name: (type, normalised value)}; names, the connection key and
    addresses are replaced by placeholders, allocated integers by "{int}"."""
    def norm(text):
        for placeholder, value in sorted(names.items(), key=lambda kv: -len(kv[1])):
            text = text.replace(value, "{%s}" % placeholder)
        return text

    out = {}
    for key in redis.keys():
        kind = redis.cli("TYPE", key)
        name = norm(key).replace("lnr_connection:%s:" % ck, "lnr_connection:{ck}:")
        if kind == "string":
            value = redis.cli("GET", key, raw=True)
            if key == "lnr_unique_key" or key.endswith(":key"):
                value = "{int}" if re.fullmatch(r"-?\d+", value) else value
            else:
                value = norm(value)
        elif kind == "hash":
            flat = redis.cli("HGETALL", key, raw=True).split("\n")
            value = {addrs.get(flat[i], flat[i]): norm(flat[i + 1])
                     for i in range(0, len(flat) - 1, 2)}
        elif kind == "list":
            value = "list of %s" % redis.cli("LLEN", key)
        else:
            value = None
        out[name] = (kind, value)
    return out


@pytest.mark.parametrize("kind_sender,kind_listener", [
    ("liner", "liner"), ("liner", "liner_broker"), ("liner_broker", "liner")])
def test_redis_keys_match_liner_broker(peers, clients, redis, kind_sender, kind_listener):
    """The same scenario leaves the same key names, types and (normalised) values as a pure
    liner_broker 1.3.1 pair."""
    reference = pair_scenario("liner_broker", "liner_broker", peers, clients, redis, "a")
    redis.cli("FLUSHALL")
    observed = pair_scenario(kind_sender, kind_listener, peers, clients, redis, "b")
    # Keys liner adds beside liner_broker's (docs/routing-and-redis-keys.md), never instead of
    # one: a liner sender names the listeners it remembers.
    if kind_sender == "liner":
        assert observed.pop("lnr_sender:{S_name}:{S_topic}:listener_name", None) == \
            ("hash", {"{L_addr}": "{L_name}"}), sorted(observed)
    # Each running liner peer's lease on its entry: when it lapses, a time in milliseconds.
    for role, kind in (("S", kind_sender), ("L", kind_listener)):
        if kind == "liner":
            lease = observed.pop("lnr_topic:{%s_topic}:lease" % role, None)
            assert lease and lease[0] == "hash" and list(lease[1]) == ["{%s_addr}" % role], lease
            assert re.fullmatch(r"\d{13}", list(lease[1].values())[0]), lease
    assert sorted(observed) == sorted(reference), "key names differ:\n  liner_broker: %s\n  " \
        "%s->%s: %s" % (sorted(reference), kind_sender, kind_listener, sorted(observed))
    types = {k: v[0] for k, v in observed.items()}
    assert types == {k: v[0] for k, v in reference.items()}
    assert observed == reference
