"""Peers on dead addresses, registered by hand in lnr_topic:T:addr as a crashed peer leaves
them:

- refused: a port where nothing listens (connect fails at once with ECONNREFUSED);
- blackholed: a listening socket whose accept queue is full (listen backlog 0, filled by
  connections nobody accepts). The kernel drops further SYNs, so connect hangs until liner's
  2 s connect timeout - the loopback stand-in for a firewalled or vanished host, without
  iptables;
- flapping: a server that accepts and at once closes every connection.

While the sender keeps sending at-least-once messages to all of them (send_all) and to a live
peer (send_to):
- no send call blocks (each returns within CALL_BOUND_S);
- the live peer's latency stays low (p99 < LIVE_P99_S);
- connect attempts back off (100 ms doubling to 2 s): counted per dead peer over WINDOW_S -
  accepted connections for the flapping one, distinct SYN-SENT sockets (sampled with ss every
  100 ms; each lives 2 s) for the blackholed one.

A refused connect leaves no trace outside the sender (no socket state lasts, and the
namespace-wide TCP ActiveOpens counter also counts every other process's connects), so the
refused peer's attempts are not counted here; it goes through the same back-off code as the
blackholed one (Sender::on_failure), which is counted.
"""
import socket
import subprocess
import threading
import time

import liner

from faultkit import percentile, read_records, report, wait_until

WINDOW_S = 6.0
CALL_BOUND_S = 0.25  # a blocking connect would take the 2 s connect timeout
LIVE_P99_S = 0.1
# Back-off 100, 200, 400, 800, 1600, 2000, 2000 ms: about 7 attempts in 6 s per peer that
# fails at once, 3 for one that times out after 2 s. The bounds leave room for timing jitter;
# without back-off there would be hundreds.
MAX_FAST_ATTEMPTS = 12
MAX_BLACKHOLE_ATTEMPTS = 5


class FlappingServer:
    """Accepts every connection and closes it at once; counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.accepted.append(time.monotonic())
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


class Blackhole:
    """A listening socket whose accept queue is full: SYNs to it go unanswered."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.fillers = []
        for _ in range(2):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(c)
        time.sleep(0.2)
        self.own_ports = {c.getsockname()[1] for c in self.fillers}
        self.seen = set()

    def sample(self):
        """Records local ports of liner's SYN-SENT sockets to the blackhole."""
        out = subprocess.run(["ss", "-tnH", "state", "syn-sent", "dst", self.addr],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            local = line.split()[-2] if len(line.split()) >= 2 else ""
            port = int(local.rsplit(":", 1)[1]) if ":" in local else 0
            if port and port not in self.own_ports:
                self.seen.add(port)

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def free_addr():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


def test_dead_addresses_delay_nobody_and_are_retried_with_back_off(peers, redis, tmp_path):
    out = str(tmp_path / "live.log")
    live = peers("listen", "da_live", "da_live_topic", redis.url, "--out", out)
    live.expect("READY")
    flapping, blackhole, refused = FlappingServer(), Blackhole(), free_addr()
    sender = liner.Client("da_sender", "da_sender_topic", "127.0.0.1:0", redis.url)
    try:
        for addr, name in ((refused, "da_refused"), (blackhole.addr, "da_blackhole"),
                           (flapping.addr, "da_flapping")):
            redis.cli("HSET", "lnr_topic:da_dead_topic:addr", addr, name)
        assert sender.run(lambda *a: None)

        calls, seq = [], 0
        start = time.monotonic()
        next_sample = start
        while time.monotonic() - start < WINDOW_S:
            seq += 1
            t = time.monotonic()
            ok_dead = sender.send_all("da_dead_topic", b"dead:%d:%.6f:" % (seq, t), True)
            t1 = time.monotonic()
            ok_live = sender.send_to("da_live_topic", b"m:%d:%.6f:" % (seq, t1), True)
            t2 = time.monotonic()
            calls += [t1 - t, t2 - t1]
            assert ok_dead, sender.last_error_message()
            assert ok_live, sender.last_error_message()
            if t2 >= next_sample:
                blackhole.sample()
                next_sample = t2 + 0.1
            time.sleep(0.01)
        assert wait_until(lambda: len(read_records(out)) >= seq, 10)
        latencies = [r.received - r.sent for r in read_records(out)]
        flapping_attempts = len([a for a in flapping.accepted if start <= a < start + WINDOW_S])
        report("dead_address", window_s=WINDOW_S, sends=seq * 2,
               slowest_send_call_ms=round(max(calls) * 1e3, 2),
               live_p99_ms=round(percentile(latencies, 99) * 1e3, 1),
               live_max_ms=round(max(latencies) * 1e3, 1),
               flapping_attempts=flapping_attempts, blackhole_attempts=len(blackhole.seen),
               pending_in_redis=sender.pending_count())

        assert max(calls) < CALL_BOUND_S, "a send call blocked for %.3f s" % max(calls)
        assert percentile(latencies, 99) < LIVE_P99_S
        assert sorted(r.seq for r in read_records(out)) == list(range(1, seq + 1))
        assert 2 <= len(blackhole.seen) <= MAX_BLACKHOLE_ATTEMPTS, blackhole.seen
        # Nothing was lost: what could not be delivered waits in the dead peers' offline queues.
        assert sender.pending_count() >= seq
        assert 2 <= flapping_attempts <= MAX_FAST_ATTEMPTS, \
            "%d connections to a peer that closes them at once in %.0f s" % (flapping_attempts, WINDOW_S)
    finally:
        sender.close()
        flapping.close()
        blackhole.close()
