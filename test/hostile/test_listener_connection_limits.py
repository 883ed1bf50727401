"""Connections that are opened and never used, against a live listener (fault_peer.py listen,
its own process, so that its CPU time and descriptors can be read from /proc):

- 400 idle connections to a listener whose process may open 256 descriptors. With the default
  cap (half the soft RLIMIT_NOFILE) the listener holds 128 and refuses the rest; with the cap
  raised above the limit (LINER_LISTENER_MAX_CONNECTIONS) accept fails with EMFILE and the
  listener backs off. Either way it stays nearly idle (< CPU_MAX of a core), logs a few lines
  (< LOG_LINES_MAX in the measured window), keeps serving a sender connected before the flood
  (its messages arrive during the flood), and a sender that first tries during the flood has
  every at-least-once message delivered once the flood ends.
- A connection that carries nothing for the idle timeout (LINER_LISTENER_IDLE_MS) is closed;
  one that keeps sending, and one stopped mid-frame (the stall timeout's case), are not. A
  liner sender whose idle connection was closed delivers its next message over a new one.
- With LINER_LISTENER_MAX_CONNECTIONS=8, the 9th connection is closed at once while the first 8
  stay open, and a slot freed by a closed connection is used again.
"""
import os
import socket
import struct
import threading
import time

import pytest

import liner

from faultkit import cpu_seconds, fd_count, listener_under_attack, read_records, report, wait_until

NOFILE = 256
FLOOD = 400
CPU_MAX = 0.20        # share of one core, over WINDOW_S
LOG_LINES_MAX = 20    # listener stderr lines over WINDOW_S
WINDOW_S = 2.0
GOOD_COUNT = 50
IMMEDIATE_S = 1.0
IDLE_MS = 1000
IDLE_CLOSE_MAX_S = 2.5  # the idle check runs every IDLE_MS / 4


def connect(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(None)  # blocking, so that MSG_DONTWAIT alone decides (is_open)
    return sock


def connect_or_refused(addr):
    """A connected socket, or None when the listener reset the connection so fast that even the
    connect saw it (a refusal at the cap, as seen from a loopback client)."""
    try:
        return connect(addr)
    except ConnectionResetError:
        return None


def is_open(sock):
    """False once the listener closed (EOF) or reset the connection; never blocks."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def closed_within(sock, seconds):
    """Seconds until the listener closed `sock`, or None if it was still open after `seconds`."""
    if sock is None:
        return 0.0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not is_open(sock):
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def held_connections(pid, addr):
    """TCP connections to `addr` that the process `pid` holds open (its accepted sockets), from
    /proc/PID/fd and /proc/net/tcp: the process's other sockets (its store connections, opened
    lazily) are not counted."""
    port = int(addr.rsplit(":", 1)[1])
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            # State 0A is LISTEN: the listening socket itself.
            if local_port == port and cols[3] != "0A" and cols[9] in inodes:
                held += 1
    return held


def frame(number, ck, tk, data):
    return struct.pack(">IQiiBI", 21 + len(data), number, ck, tk, 0, len(data)) + data


def send_all_good(client, to, tag, first, count):
    for seq in range(first, first + count):
        payload = b"%s:%d:%.6f:" % (tag, seq, time.monotonic())
        deadline = time.monotonic() + 10
        while not client.send_to(to, payload, True):
            assert client.last_error_code() == liner.ERR_BUSY, client.last_error_message()
            assert time.monotonic() < deadline, "send_to stayed busy"
            time.sleep(0.001)


def seqs(out, tag):
    return sorted(r.seq for r in read_records(out) if r.tag == tag)


def good_seqs(out):
    return seqs(out, "good")


@pytest.mark.parametrize("limit", ["cap", "emfile"])
def test_an_idle_flood_under_a_low_fd_limit_costs_little_and_spares_a_sender(
        limit, peers, redis, tmp_path):
    out = str(tmp_path / "listener.log")
    env = {} if limit == "cap" else {"LINER_LISTENER_MAX_CONNECTIONS": "100000"}
    listener = peers("listen", "cl_listener", "cl_topic", redis.url, "--out", out,
                     env=env, nofile=NOFILE)
    addr = listener.expect("READY")
    early = liner.Client("cl_early", "cl_early_topic", "127.0.0.1:0", redis.url)
    late = liner.Client("cl_late", "cl_late_topic", "127.0.0.1:0", redis.url)
    flood = []
    try:
        # A sender connected before the flood: the listener holds its connection throughout.
        assert early.run(lambda *a: None)
        send_all_good(early, "cl_topic", b"early", 1, 1)
        assert wait_until(lambda: seqs(out, "early") == [1], 5)

        started = time.monotonic()
        for _ in range(FLOOD):
            flood.append(connect_or_refused(addr))
        if limit == "cap":
            # NOFILE / 2 connections are held (the early sender's among them), the rest refused.
            assert wait_until(lambda: sum(map(is_open, flood)) == NOFILE // 2 - 1, 5), \
                sum(map(is_open, flood))
        else:
            # The listener took what its descriptors allowed; the rest wait in the backlog.
            assert wait_until(lambda: fd_count(listener.pid) >= NOFILE - 2, 5), \
                fd_count(listener.pid)
        # Both send during the flood: the early sender is served at once, the late one is
        # refused (cap) or waits in the backlog (EMFILE).
        assert late.run(lambda *a: None)
        send_all_good(late, "cl_topic", b"late", 1, GOOD_COUNT)
        send_all_good(early, "cl_topic", b"early", 2, GOOD_COUNT)
        served = wait_until(lambda: seqs(out, "early") == list(range(1, GOOD_COUNT + 2)), 10)
        served_s = time.monotonic() - started

        lines_before, cpu_before = len(listener.stderr), cpu_seconds(listener.pid)
        time.sleep(WINDOW_S)
        cpu = (cpu_seconds(listener.pid) - cpu_before) / WINDOW_S
        lines = len(listener.stderr) - lines_before
        open_at_end = sum(map(is_open, flood))
        fds = fd_count(listener.pid)
        held = held_connections(listener.pid, addr)
        late_during = len(seqs(out, "late"))

        for s in flood:
            if s:
                s.close()
        flood_closed = time.monotonic()
        delivered = wait_until(lambda: seqs(out, "late") == list(range(1, GOOD_COUNT + 1)), 15)
        report("connection_flood_" + limit, nofile=NOFILE, flood=FLOOD, cpu_share=round(cpu, 3),
               log_lines_in_window=lines, flood_open=open_at_end, listener_fds=fds, held=held,
               early_served_during_flood=bool(served), early_served_s=round(served_s, 2),
               late_delivered_during_flood=late_during,
               late_delivered=len(seqs(out, "late")),
               late_deliver_s_after_flood=round(time.monotonic() - flood_closed, 2),
               total_s=round(time.monotonic() - started, 1))
        assert cpu < CPU_MAX, (cpu, listener.stderr[-5:])
        assert lines < LOG_LINES_MAX, listener.stderr[-5:]
        if limit == "emfile":
            assert any("Too many open files" in l for l in listener.stderr), listener.stderr[-5:]
        else:
            assert open_at_end == NOFILE // 2 - 1 and held == NOFILE // 2, (open_at_end, held)
            assert any(l.startswith("liner: refused ") for l in listener.stderr), \
                listener.stderr[-5:]
        assert served, seqs(out, "early")
        assert delivered, seqs(out, "late")
        assert listener.proc.poll() is None, "the listener died"
    finally:
        for s in flood:
            if s:
                s.close()
        early.close()
        late.close()


def test_an_idle_connection_is_closed_and_its_sender_reconnects(peers, redis, tmp_path):
    out = str(tmp_path / "listener.log")
    listener, addr, tk = listener_under_attack(peers, redis, "il", out, env={"LINER_LISTENER_IDLE_MS": str(IDLE_MS)})
    redis.cli("SET", "lnr_connection:999101:sender", "chatty_topic")  # a key the listener accepts
    sender = liner.Client("il_sender", "il_sender_topic", "127.0.0.1:0", redis.url)
    socks = []
    try:
        silent, chatty, half = connect(addr), connect(addr), connect(addr)
        socks += [silent, chatty, half]
        half.sendall(frame(1, 999_102, tk, b"half:1:0:")[:10])
        stop = threading.Event()

        def chatter():
            n = 0
            while not stop.wait(IDLE_MS / 3000):
                n += 1
                try:
                    chatty.sendall(frame(n, 999_101, tk, b"chatter:%d:0:" % n))
                except OSError:  # closed by the listener: is_open(chatty) says so
                    return
        talker = threading.Thread(target=chatter)
        talker.start()
        try:
            silent_closed = closed_within(silent, IDLE_CLOSE_MAX_S + 1)
            time.sleep(max(0.0, 3 * IDLE_MS / 1000 - (silent_closed or 0)))
            chatty_open, half_open = is_open(chatty), is_open(half)
        finally:
            stop.set()
            talker.join()
        for s in socks:
            s.close()
        assert wait_until(lambda: held_connections(listener.pid, addr) == 0, 5), \
            held_connections(listener.pid, addr)

        # A liner sender's connection goes quiet and is closed; its next message still arrives.
        assert sender.run(lambda *a: None)
        assert sender.send_to("il_topic", b"good:1:%.6f:" % time.monotonic(), True)
        assert wait_until(lambda: good_seqs(out) == [1], 5), good_seqs(out)
        quiet_from = time.monotonic()
        assert held_connections(listener.pid, addr) == 1
        sender_closed = wait_until(lambda: held_connections(listener.pid, addr) == 0,
                                   IDLE_CLOSE_MAX_S + 1)
        sender_closed_after = time.monotonic() - quiet_from
        assert sender.send_to("il_topic", b"good:2:%.6f:" % time.monotonic(), True)
        resent = time.monotonic()
        second = wait_until(lambda: good_seqs(out) == [1, 2], 10)
        idle_lines = [l for l in listener.stderr if "carried nothing" in l]
        report("idle_timeout", idle_ms=IDLE_MS,
               silent_closed_after_s=None if silent_closed is None else round(silent_closed, 2),
               chatty_open=chatty_open, mid_frame_open=half_open,
               sender_closed_after_s=round(sender_closed_after, 2),
               second_message_after_s=round(time.monotonic() - resent, 2),
               idle_log_lines=len(idle_lines))
        # (The listener's idle clock starts at its accept, a little after closed_within started.)
        assert silent_closed is not None and \
            IDLE_MS / 1000 - 0.05 <= silent_closed <= IDLE_CLOSE_MAX_S, silent_closed
        assert chatty_open, "a connection that keeps sending was closed as idle"
        assert half_open, "a connection stopped mid-frame was closed before its stall timeout"
        assert sender_closed, "the sender's idle connection was not closed"
        assert second, good_seqs(out)
        assert 1 <= len(idle_lines) <= 3, listener.stderr[-5:]
        assert listener.proc.poll() is None, "the listener died"
    finally:
        for s in socks:
            s.close()
        sender.close()


def test_the_connection_over_the_cap_is_closed_at_once(peers, redis):
    listener = peers("listen", "cap_listener", "cap_topic", redis.url, "--out", os.devnull,
                     env={"LINER_LISTENER_MAX_CONNECTIONS": "8"})
    addr = listener.expect("READY")
    socks = []
    try:
        first = [connect(addr) for _ in range(8)]
        socks += first
        assert wait_until(lambda: held_connections(listener.pid, addr) == 8, 5), \
            held_connections(listener.pid, addr)
        ninth_started = time.monotonic()
        ninth = connect_or_refused(addr)
        if ninth:
            socks.append(ninth)
        closed = closed_within(ninth, IMMEDIATE_S + 1) is not None
        ninth_closed = time.monotonic() - ninth_started if closed else None
        first_open = sum(map(is_open, first))

        # A slot freed is a slot given again.
        first[0].close()
        assert wait_until(lambda: held_connections(listener.pid, addr) == 7, 5)
        tenth = connect(addr)
        socks.append(tenth)
        tenth_closed = closed_within(tenth, 0.5)
        report("connection_cap", cap=8,
               ninth_closed_after_s=None if ninth_closed is None else round(ninth_closed, 3),
               first_open=first_open, tenth_closed=tenth_closed)
        assert ninth_closed is not None and ninth_closed < IMMEDIATE_S, ninth_closed
        assert first_open == 8
        assert tenth_closed is None and held_connections(listener.pid, addr) == 8
        assert any(l.startswith("liner: refused 1 connection") for l in listener.stderr), \
            listener.stderr[-5:]
        assert listener.proc.poll() is None, "the listener died"
    finally:
        for s in socks:
            s.close()
