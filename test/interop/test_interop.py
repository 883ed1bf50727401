"""Interop with liner_broker 1.3.1: liner peers and reference peers on one Redis.

The reference side is `lbpeer` (test/interop/peer, a tiny Rust program over the crate pinned at
=1.3.1), run as a child process; the liner side is the python/liner package over
build/libliner_broker.so, in this process; lbkit.py holds both and the scenarios that
test_interop_sql_stores.py runs again on one SQLite file and one PostgreSQL database. Each test pins one behaviour of
spec/compat-1.3.1.md section 0 "Match exactly":

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
import re
import socket
import struct
import threading
import time

import pytest

from lbkit import (MIB, OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT, OFFLINE_SIZE, FLOW_TIMEOUT,
                   Inbox, RedisStore, assert_offline_queue_drained, describe, deliver,
                   flow_lb_to_liner_listener, flow_liner_to_lb_listener, flow_plan, gen_payload,
                   offline_delivery_to_restarted_lb_listener,
                   offline_delivery_to_restarted_liner_listener, pair_scenario, run_client,
                   send_all_to_mixed_replicas)
from liner_testkit import free_port, made_and_closed


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


# ---- fixtures (conftest.py makes peers and clients on this store) ---------------------------

@pytest.fixture
def store(redis):
    """The session's redis-server, flushed for this test."""
    return RedisStore(redis)


@pytest.fixture
def taps():
    """Factory of TapProxy relays; all are closed after the test. taps(upstream) -> TapProxy"""
    yield from made_and_closed(TapProxy)


# ---- liner -> liner_broker and liner_broker -> liner -----------------------------------------

def tapped_route(taps, redis, topics, tapped):
    """A `route` for the flow scenarios: puts a TapProxy (appended to `tapped`) between the
    senders and the listener's address under each of `topics`."""
    def route(addr):
        tapped.append(taps(addr))
        for topic in topics:
            redirect_topic(redis, topic, addr, tapped[-1].addr)
    return route


def topic_keys(redis, *topics):
    return {t: int(redis.cli("GET", "lnr_topic:%s:key" % t)) for t in topics}


def test_liner_sender_to_liner_broker_listener(peers, clients, taps, store, redis):
    """Every payload arrives byte-identical, in order, with `to` = the topic it was sent to (own
    topic or a subscription) and `from` = the liner sender's source topic; liner's frames are
    1.3.1 frames (checked on the wire through a relay)."""
    plan, tapped = flow_plan("lb_topic", "lb_sub"), []
    route = tapped_route(taps, redis, ("lb_topic", "lb_sub", "lb_nudge"), tapped)
    flow_liner_to_lb_listener(peers, clients, plan, route)
    ck = store.connection_key("ln_sender", "ln_topic", "lb_listener")
    check_wire(tapped[0], plan, ck, topic_keys(redis, "lb_topic", "lb_sub"))


def test_liner_broker_sender_to_liner_listener(peers, clients, taps, store, redis):
    """The reverse direction: frames written by 1.3.1 (zstd included) decode to the same bytes,
    and the liner listener never writes to the connection."""
    plan, tapped = flow_plan("ln_topic", "ln_sub"), []
    route = tapped_route(taps, redis, ("ln_topic", "ln_sub"), tapped)
    flow_lb_to_liner_listener(peers, clients, plan, route)
    # The relay saw the reference encoder's frames (the same checks, as a control) and not a
    # byte written back by liner.
    ck = store.connection_key("lb_sender", "lb_topic", "ln_listener")
    check_wire(tapped[0], plan, ck, topic_keys(redis, "ln_topic", "ln_sub"))


# ---- at-least-once offline delivery -------------------------------------------------------

def test_offline_delivery_to_restarted_liner_broker_listener(peers, clients, store):
    """liner sender, liner_broker listener offline: messages sent while it is down reach it once,
    in order, after it restarts with the same name, topic and address."""
    offline_delivery_to_restarted_lb_listener(peers, clients, store)


def test_offline_delivery_to_restarted_liner_listener(peers, clients, store):
    """liner_broker sender, liner listener offline: same contract in the other direction."""
    offline_delivery_to_restarted_liner_listener(peers, clients, store)


@pytest.mark.parametrize("first,then", [("liner", "liner_broker"), ("liner_broker", "liner")])
def test_stored_messages_handed_over_between_implementations(peers, clients, store, redis,
                                                           first, then):
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
    ck = store.connection_key("snd", "snd_t", "lb_listener")
    assert ck is not None, store.describe()
    assert store.queued(ck) == OFFLINE_COUNT, (
        "%s stored this after stopping:\n%s" % (first, store.describe()))
    assert redis.cli("HGET", "lnr_sender:snd:snd_t:listener", listen) == "lb_topic", (
        store.describe())

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
    assert listener.wait_exit(10) == 0, "%s\n%s" % (listener.log(), store.describe())
    got = listener.received()
    assert [d for _, _, d in got] == expected, (
        "got %s\n%s" % (describe([d for _, _, d in got]), listener.log()))
    assert {(to, frm) for to, frm, _ in got} == {("lb_topic", "snd_t")}
    assert_offline_queue_drained(store, "snd", "snd_t", "lb_listener")
    if then == "liner_broker":
        assert s2.quit() == 0, s2.log()


# ---- send_all over mixed replicas ---------------------------------------------------------

@pytest.mark.parametrize("layout", ["subscribers", "source_replicas"])
@pytest.mark.parametrize("sender_kind", ["liner", "liner_broker"])
def test_send_all_reaches_mixed_replicas(peers, clients, store, sender_kind, layout):
    """send_all to a topic served by 2 liner clients and 1 liner_broker peer (as subscribers, or
    as replicas with it as their source topic) delivers every message to each, once, in order."""
    send_all_to_mixed_replicas(peers, clients, store, sender_kind, layout)


# ---- Redis key compatibility -------------------------------------------------------------

@pytest.mark.parametrize("kind_sender,kind_listener", [
    ("liner", "liner"), ("liner", "liner_broker"), ("liner_broker", "liner")])
def test_redis_keys_match_liner_broker(peers, clients, store, kind_sender, kind_listener):
    """The same scenario leaves the same key names, types and (normalised) values as a pure
    liner_broker 1.3.1 pair."""
    reference = pair_scenario("liner_broker", "liner_broker", peers, clients, store, "a")
    store.clear()
    observed = pair_scenario(kind_sender, kind_listener, peers, clients, store, "b")
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
