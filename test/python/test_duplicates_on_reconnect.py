"""A sender that really resends what the listener already delivered: the listener drops every
copy and counts it (stats()["duplicates"]), and the application sees each message once
(delivery.cpp, deliver_one: numbers at or below what the channel delivered).

Acknowledgements travel through Redis, written after the receive callback returned. So the
test holds the callback of the last message of the only batch: messages 1..N-1 are delivered
and N is in the callback, and no acknowledgement is written. A relay between sender and listener
(the address the listener advertises) then resets the sender's connection. The sender reads the
acknowledgement counter (still 0), stores all N messages in the offline queue, reconnects
through the relay and replays them. Only then is the callback released: the N replayed frames
are exactly N duplicates.
"""
import socket
import struct
import threading

import liner
from extended_testkit import EventLog
from liner_testkit import Inbox, free_port, seq_payload, wait_until

COUNT = 20


def frames_in(buf):
    """(complete frames at the head of buf, bytes they take)."""
    n = at = 0
    while len(buf) - at >= 4:
        size = 4 + struct.unpack_from(">I", buf, at)[0]
        if len(buf) - at < size:
            break
        n += 1
        at += size
    return n, at


class Relay:
    """Forwards each connection it accepts to `target`. The first one is held until `hold`
    whole frames arrived and then forwarded in one write (one read, one batch for the listener),
    and reset towards the sender on reset_first(). Later ones are forwarded as they come."""

    def __init__(self, hold):
        self.hold = hold
        self.target = None
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", free_port()))
        self.srv.listen(8)
        self.srv.settimeout(0.02)
        self.addr = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.reset = threading.Event()
        self.cond = threading.Condition()
        self.forwarded = []  # frames forwarded, per connection
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                index = len(self.forwarded)
                self.forwarded.append(0)
            t = threading.Thread(target=self._pipe, args=(conn, index), daemon=True)
            self.threads.append(t)
            t.start()

    def _pipe(self, conn, index):
        host, port = self.target.rsplit(":", 1)
        out = socket.create_connection((host, int(port)), timeout=5)
        conn.settimeout(0.02)
        first = index == 0
        buf = b""
        with conn, out:
            while not self.stop.is_set():
                if first and self.reset.is_set():
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                n, size = frames_in(buf)
                if first and n < self.hold:
                    continue
                out.sendall(buf[:size])
                buf = buf[size:]
                with self.cond:
                    self.forwarded[index] += n
                    self.cond.notify_all()

    def reset_first(self):
        self.reset.set()

    def wait_forwarded(self, index, n, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.forwarded) > index and self.forwarded[index] >= n, timeout)
            return self.forwarded[index] if len(self.forwarded) > index else 0

    def close(self):
        self.stop.set()
        self.srv.close()
        for t in self.threads:
            t.join(5)


def test_messages_replayed_after_a_cut_are_counted_as_duplicates_and_delivered_once(make_client, rdb):
    relay = Relay(hold=COUNT)
    got = []
    got_lock = threading.Lock()
    in_last = threading.Event()
    release = threading.Event()

    def on_message(to, from_, data):
        with got_lock:
            got.append(data)
            first_time_last = len(got) == COUNT
        if first_time_last:
            in_last.set()
            release.wait(10)

    sent = [seq_payload(i) for i in range(1, COUNT + 1)]
    try:
        listener = make_client("dr_listener", "dr_topic")
        assert listener.set_advertise_addr(relay.addr)
        assert listener.run(on_message)
        relay.target = listener.bound_listen_addr()
        sender = make_client("dr_sender", "dr_sender_topic")
        events = EventLog()
        assert sender.set_status_callback(events)
        assert sender.run(Inbox())

        for data in sent:
            assert sender.send_to("dr_topic", data, True)
        assert in_last.wait(5), "the listener got %d of %d messages" % (len(got), COUNT)
        ck = int(rdb.get("lnr_connection:dr_sender:dr_sender_topic:dr_listener:key"))
        # One batch, its last callback still running: nothing is acknowledged yet.
        assert rdb.get("lnr_connection:%d:mess_number" % ck) == "0"

        relay.reset_first()
        assert events.wait(liner.SENDER_ROUTE_LOST, "dr_topic", relay.addr, timeout=5) is not None, \
            events.snapshot()
        # The sender comes back through the relay and writes all of them again.
        assert relay.wait_forwarded(1, COUNT) == COUNT, (relay.forwarded, sender.stats())
        assert sender.stats()["persisted"] == COUNT
    finally:
        release.set()
    try:
        # Every replayed frame was handled: dropped as a duplicate, or (wrongly) delivered again.
        assert wait_until(lambda: listener.stats()["duplicates"] + listener.stats()["messages_delivered"]
                          >= 2 * COUNT, 5), listener.stats()
        assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0 and sender.pending_count() == 0, 5), \
            sender.stats()
        s = listener.stats()
        assert (s["duplicates"], s["messages_delivered"]) == (COUNT, COUNT), s
        with got_lock:
            assert got == sent
        assert relay.forwarded == [COUNT, COUNT]
    finally:
        relay.close()
