"""At-least-once messages that were written to a peer but never acknowledged go out again when
that connection fails (sender_connection.cpp, fail(): requeue_unacked, then spill): nothing is lost.

The peer is a raw TCP server registered in the directory as the topic's listener. It reads every
frame and never acknowledges (acknowledgements go through Redis: it writes none), then resets the
connection (SO_LINGER 0). A real liner listener with the same identity then takes over the
address, and must receive exactly the messages sent, in order, once each.
"""
import socket
import struct
import threading

import liner
from extended_testkit import EventLog
from liner_testkit import FLAG_AT_LEAST_ONCE, Inbox, free_port, seq_payload, wait_until

COUNT = 50


class SilentPeer:
    """Accepts one connection on `port`, reads frames from it and never acknowledges them."""

    def __init__(self, port):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(4)
        self.reset_now = threading.Event()
        self.frames = []  # (number_mess, connection_key, flags, data)
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.srv.settimeout(10)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        # This thread owns the connection: it reads until told to reset (a close from another
        # thread would not wake its recv).
        conn.settimeout(0.02)
        buf = b""
        with conn:
            while not self.reset_now.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 4:
                    body_len, = struct.unpack_from(">I", buf)
                    if len(buf) < 4 + body_len:
                        break
                    number, ck, _tk, flags, data_len = struct.unpack_from(">QiiBI", buf, 4)
                    with self.cond:
                        self.frames.append((number, ck, flags, buf[25:25 + data_len]))
                        self.cond.notify_all()
                    buf = buf[4 + body_len:]
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def wait_frames(self, n, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.frames) >= n, timeout)
            return len(self.frames)

    def reset(self):
        """Stops listening (reconnects are refused), then resets the connection it read."""
        self.srv.close()
        self.reset_now.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_unacknowledged_messages_of_a_reset_connection_reach_the_listener_that_takes_over(make_client, rdb):
    port = free_port()
    addr = "127.0.0.1:%d" % port
    silent = SilentPeer(port)
    try:
        # The directory says the listener "rq_listener" serves rq_topic at the silent peer's address.
        rdb("HSET", "lnr_topic:rq_topic:addr", addr, "rq_listener")
        sender = make_client("rq_sender", "rq_sender_topic")
        events = EventLog()
        assert sender.set_status_callback(events)
        assert sender.run(Inbox())

        sent = [seq_payload(i) for i in range(1, COUNT + 1)]
        for data in sent:
            assert sender.send_to("rq_topic", data, True)
        assert silent.wait_frames(COUNT) == COUNT
        ck = int(rdb.get("lnr_connection:rq_sender:rq_sender_topic:rq_listener:key"))
        # Every message was written to the peer, and none is acknowledged.
        assert [f[3] for f in silent.frames] == sent
        assert {(f[1], f[2]) for f in silent.frames} == {(ck, FLAG_AT_LEAST_ONCE)}
        assert [f[0] for f in silent.frames] == list(range(1, COUNT + 1))
        assert rdb.get("lnr_connection:%d:mess_number" % ck) == "0"  # created by the sender
    finally:
        silent.reset()
    lost = events.wait(liner.SENDER_ROUTE_LOST, "rq_topic", addr, timeout=5)
    assert lost is not None, events.snapshot()

    # A real listener with the identity the directory names takes the address over.
    listener = make_client("rq_listener", "rq_topic", addr)
    inbox = Inbox()
    assert listener.run(inbox)
    assert inbox.wait_count(COUNT, 5) == COUNT, sender.stats()
    # Once the sender holds nothing more (acknowledged, offline queue empty), nothing else came.
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0 and sender.pending_count() == 0, 5), \
        sender.stats()
    assert inbox.payloads() == sent
    assert {(to, from_) for to, from_, _ in inbox.snapshot()} == {("rq_topic", "rq_sender_topic")}
    s = sender.stats()
    # The fail path stored the unacknowledged messages, and the new connection replayed them.
    assert (s["persisted"], s["reloaded"]) == (COUNT, COUNT), s
    assert listener.stats()["duplicates"] == 0
