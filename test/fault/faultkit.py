"""Helpers of the fault tests: peers in their own processes (fault_peer.py) that a test may
SIGKILL, SIGSTOP and SIGCONT, a private redis-server that a test may stop and start again on the
same port, and readers of /proc (CPU time, RSS, file descriptors, threads)."""
import collections
import contextlib
import os
import resource
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER_SCRIPT = os.path.join(HERE, "fault_peer.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, os.path.join(ROOT, "test", "python"))
from liner_testkit import end_process, free_port, made_and_closed, wait_until  # noqa: E402,F401  (one implementation for all suites)


def report(name, **numbers):
    """One line of measurements on stdout (pytest -s or -rA shows it), e.g. for the CI log."""
    print("fault[%s] %s" % (name, " ".join("%s=%s" % kv for kv in numbers.items())), flush=True)


# ---- /proc --------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_share(pid, seconds=2.0):
    """Share of one core the process used over `seconds` (0.0 .. n_threads)."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def status_kib(pid, field):
    """A size field of /proc/PID/status in KiB (VmRSS, VmHWM, ...); 0 when it is missing."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def under_sanitizer(pid):
    """True when AddressSanitizer or ThreadSanitizer is loaded in the process (scripts/sanitize.sh
    preloads them). ASan's quarantine keeps freed blocks resident and TSan shadows every byte
    touched (several times over), so RSS bounds must allow for either."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def fd_count(pid="self"):
    return len(os.listdir("/proc/%s/fd" % pid))


def thread_count(pid="self"):
    return len(os.listdir("/proc/%s/task" % pid))


# ---- the listener's record file -----------------------------------------------------------

Record = collections.namedtuple("Record", "tag seq sent received sender")


def read_records(path):
    """The lines a `fault_peer.py listen` wrote, as Records (a torn last line is ignored)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5 and line.endswith("\n"):
                    out.append(Record(parts[0], int(parts[1]), float(parts[2]), float(parts[3]),
                                      parts[4]))
    except FileNotFoundError:
        pass
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


# ---- Redis, binary-safe ------------------------------------------------------------------

def redis_command(host, port, *args):
    """One command over a fresh connection (RESP2, binary-safe); returns the decoded reply."""
    with socket.create_connection((host, port), timeout=10) as sock:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        sock.sendall(b"".join(parts))
        reader = sock.makefile("rb")
        return _reply(reader)


def _reply(reader):
    line = reader.readline()[:-2]
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_reply(reader) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % line)


def parse_frame(frame):
    """(number_mess, connection_key, topic_key, flags, data) of a stored frame (spec 1.8)."""
    body_len, = struct.unpack_from(">I", frame, 0)
    number, ck, tk, flags, data_len = struct.unpack_from(">QiiBI", frame, 4)
    assert body_len == len(frame) - 4 and 21 + data_len == body_len
    return number, ck, tk, flags, frame[25:25 + data_len]


def stored_numbers(server, key):
    """number_mess of the frames in an offline queue."""
    frames = redis_command(server.host, server.port, "LRANGE", key, 0, -1) or []
    return [parse_frame(f)[0] for f in frames]


def stored_payload_seqs(server, key):
    """Sequence numbers (fault_peer.py payloads) of the frames in an offline queue."""
    frames = redis_command(server.host, server.port, "LRANGE", key, 0, -1) or []
    return [int(parse_frame(f)[4].split(b":")[1]) for f in frames]


# ---- peer processes -----------------------------------------------------------------------

class Peer:
    """fault_peer.py in a subprocess; stdout lines are collected by a thread. `env` adds
    environment variables; `nofile` (when given) sets its RLIMIT_NOFILE, soft and hard; `netns`
    runs it in that network namespace."""

    def __init__(self, role, unique, topic, redis_url, *options, env=None, nofile=None, netns=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), full_env.get("PYTHONPATH", "")])
        self.args = [sys.executable, PEER_SCRIPT, role, unique, topic, redis_url] + [str(o) for o in options]
        if netns:  # a "host" of the multi-host test bed (test/netns)
            self.args = ["ip", "netns", "exec", netns] + self.args

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, preexec_fn=limit)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr = []
        self.stopped = False
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream, is_stdout):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if is_stdout:
                self.all_lines.append(line)
                self.lines.put(line)
            else:
                self.stderr.append(line)

    def expect(self, prefix, timeout=20.0):
        """Rest of the next stdout line starting with `prefix` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.lines.empty()):
                raise AssertionError("peer %s printed no %r line (exit %s); stderr:\n%s" % (
                    " ".join(self.args[2:5]), prefix, self.proc.poll(), "\n".join(self.stderr[-30:])))
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def lines_starting(self, prefix):
        return [l[len(prefix):].strip() for l in list(self.all_lines) if l.startswith(prefix)]

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGSTOP:
                self.stopped = True
            elif sig == signal.SIGCONT:
                self.stopped = False

    def kill(self):
        """SIGKILL: no goodbye, no unregistering, no final acknowledgement."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self, timeout=20):
        """Asks for a clean close (stdin EOF) and waits; kills what does not end in time.
        Returns the exit code (negative: killed by that signal)."""
        if self.stopped:
            self.signal(signal.SIGCONT)
        end_process(self.proc, timeout, self.kill)
        return self.proc.returncode


@pytest.fixture
def peers():
    """Factory of fault_peer.py processes: peers(role, unique, topic, redis_url, *options). Every
    process is resumed if stopped, asked to close, and killed if it does not, after the test.
    The fault and hostile suites' conftests import it."""
    yield from made_and_closed(Peer)


# ---- a private redis-server ---------------------------------------------------------------

def end_server(proc):
    """Ends a server process, frozen (SIGSTOP) or not: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class PrivateRedis:
    """A redis-server owned by one test, on a port fixed for its whole life, so that it can be
    stopped (SIGTERM), frozen (SIGSTOP) and started again where the clients expect it.

    persistent=True keeps the data across a restart (append-only file, fsync always), as a
    production Redis would; persistent=False starts empty again."""

    def __init__(self, persistent=True):
        self.port = free_port()
        self.host = "127.0.0.1"
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.dir = tempfile.mkdtemp(prefix="liner-fault-redis-")
        self.persistent = persistent
        self.proc = None
        self.start()

    def start(self):
        args = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: self._ping(), 10, 0.02):
            raise RuntimeError("redis-server did not start on port %d" % self.port)

    def _ping(self):
        try:
            return self.cli("PING") == "PONG"
        except Exception:
            return False

    def stop(self):
        if self.proc:
            end_server(self.proc)
            self.proc = None

    def freeze(self):
        """SIGSTOP: connections are still accepted by the kernel but nothing answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port), "--raw"]
                             + [str(a) for a in args], capture_output=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode())
        return out.stdout.decode("utf-8", "replace").rstrip("\n")


def listener_at(peers, redis_url, name, addr, out, *options):
    """A `fault_peer.py listen` peer "<name>_listener" of topic "<name>_topic" on the fixed
    address `addr` (where a sender expects it back), its records in `out`; ready when returned."""
    listener = peers("listen", name + "_listener", name + "_topic", redis_url, "--addr", addr, "--out", out, *options)
    assert listener.expect("READY") == addr
    return listener


def stored_backlog(peers, redis_url, name, out, count, size=0, sender_url=None):
    """A backlog in the offline queue: a listener "<name>_listener" (its own process, a fixed
    address, records in `out`) serves "<name>_topic" and receives one warm-up message (tag w)
    from a liner sender "<name>_sender" of this process, then closes; the sender then sends
    `count` at-least-once messages "m:<seq>:<time>:" (padded to `size`), which go to Redis.
    Returns (address, sender); the caller closes the sender."""
    import liner
    from liner_testkit import Inbox
    addr = "127.0.0.1:%d" % free_port()
    listener = listener_at(peers, redis_url, name, addr, out)
    sender = liner.Client(name + "_sender", name + "_sender_topic", "127.0.0.1:0", sender_url or redis_url)
    assert sender.run(Inbox())
    assert sender.send_to(name + "_topic", b"w:0:0:", True)
    assert wait_until(lambda: len(read_records(out)) == 1, 10)
    listener.close()
    for seq in range(1, count + 1):
        data = b"m:%d:%.6f:" % (seq, time.monotonic())
        data += b"." * (size - len(data))
        # The queue in RAM fills faster than it is stored: BUSY says wait.
        assert wait_until(lambda: sender.send_to(name + "_topic", data, True)
                          or sender.last_error_code() != liner.ERR_BUSY, 10, 0.001)
        assert sender.last_error_code() == liner.OK, sender.last_error_message()
    assert wait_until(lambda: sender.pending_count() == count, 30), sender.pending_count()
    return addr, sender


@contextlib.contextmanager
def backlog_behind_a_late_pop(peers, redis, name, out, count, size):
    """stored_backlog(name, count, size) whose sender reaches Redis through a RedisProxy that
    holds back the reply to its first offline-queue pop for 2.5 s, past the client's 2 s time-out
    (Redis ran the pop, the sender is not told). Yields (proxy, address, sender); the sender is
    closed, then the proxy, when the block ends."""
    from redis_proxy import RedisProxy
    with RedisProxy(redis.port) as proxy:
        addr, sender = stored_backlog(peers, redis.url, name, out, count, size, sender_url=proxy.url)
        try:
            proxy.delay_reply({"EVAL", "LPOP"}, seconds=2.5, times=1)
            yield proxy, addr, sender
        finally:
            sender.close()


# ---- the hostile suite's listener and its well-behaved sender -------------------------------

def listener_under_attack(peers, redis, name, out, *options, **kwargs):
    """A `fault_peer.py listen` peer "<name>_listener" of topic "<name>_topic", its records in
    `out`: returns (the peer, the address it listens on, the topic's key)."""
    listener = peers("listen", name + "_listener", name + "_topic", redis.url, "--out", out, *options, **kwargs)
    addr = listener.expect("READY")
    return listener, addr, int(redis.cli("GET", "lnr_topic:%s_topic:key" % name))


class GoodPump:
    """A real sender sending at-least-once messages good:<seq>:<time>: to `topic` every `every`
    seconds on a thread of its own (as `with` block, or start() .. finish()), until finished or
    `limit` messages were sent; `sent` lists the sequence numbers sent."""

    def __init__(self, client, topic, every=0.002, limit=None):
        self.client, self.topic, self.every, self.limit = client, topic, every, limit
        self.sent = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        import liner
        while not self.stop.is_set() and (self.limit is None or len(self.sent) < self.limit):
            seq = len(self.sent) + 1
            data = b"good:%d:%.6f:" % (seq, time.monotonic())
            while not self.client.send_to(self.topic, data, True):
                assert self.client.last_error_code() == liner.ERR_BUSY, self.client.last_error_message()
                time.sleep(0.001)
            self.sent.append(seq)
            time.sleep(self.every)

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.finish()
