"""Compressed frames that lie, on a channel the listener knows (fault_peer.py listen, its own
process), between good frames of the same stream, while a real liner sender streams to the
listener on a connection of its own.

The channel is a real one: a liner sender opens it, sends one message and closes; the raw stream
then goes on with that channel's connection key and the next numbers. The lies (zstd frames
built by hand, raw blocks):

- data that is not zstd at all; a zstd frame with a block of the reserved type (corrupt);
- a declared content size (2 GiB) over the protocol's maximum, once with a window of that size
  and once with a small window and a 10-byte block;
- an honest frame (one RLE block) that expands to 100,000 bytes, past the listener's maximum
  message size (64 KiB here) but well within the ratio bound every decoder applies;
- a declared content size of 100 around a 12-byte block, and of 5 around the same block.

Expected (delivery.hpp, docs/security.md): each of them is refused alone: not handed to the
callback (liner_broker 1.3.1 called it with an empty payload), acknowledged (its sender must not
resend it forever), listed in lnr_connection:{ck}:refused as "number zstd: ..." and reported to
that channel's sender (SENDER_SEND_ERROR "message N refused by ..."); the connection stays open,
so the good frames after them on the same stream are delivered, in order; the other sender's
messages all arrive; the listener keeps running.
"""
import socket
import struct
import time

import liner

from extended_testkit import EventLog
from faultkit import GoodPump, listener_under_attack, read_records, report, wait_until
from test_listener_hostile_streams import frame  # the raw frame builder of this suite

FLAG_COMPRESS = 0x01
FLAG_AT_LEAST_ONCE = 0x02
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GOOD = 300


def raw_block(data, last=True, block_type=0):
    """A zstd block header (3 bytes, little-endian) and its content: type 0 = raw, 3 = reserved."""
    return struct.pack("<I", int(last) | (block_type << 1) | (len(data) << 3))[:3] + data


def zstd_frame(blocks, content_size=None, window_log=None):
    """A zstd frame of `blocks`. Without window_log: single segment, declaring `content_size`
    (1 byte below 256, else 8 bytes). With window_log: that window, and `content_size` in 8 bytes
    when given."""
    if window_log is None:
        if content_size < 256:
            return ZSTD_MAGIC + bytes([0x20]) + bytes([content_size]) + blocks
        return ZSTD_MAGIC + bytes([0xE0]) + struct.pack("<Q", content_size) + blocks
    window = bytes([(window_log - 10) << 3])
    if content_size is None:
        return ZSTD_MAGIC + bytes([0x00]) + window + blocks
    return ZSTD_MAGIC + bytes([0xC0]) + window + struct.pack("<Q", content_size) + blocks


def rle_block(byte, count, last=True):
    """A zstd RLE block: `byte` repeated `count` times (at most 128 KiB)."""
    return struct.pack("<I", int(last) | (1 << 1) | (count << 3))[:3] + byte


def honest(data):
    return zstd_frame(raw_block(data), content_size=len(data))


TWELVE = b"twelve bytes"
LIES = [
    ("not zstd", b"this is not a zstd frame at all"),
    ("reserved block type", zstd_frame(raw_block(TWELVE, block_type=3), content_size=len(TWELVE))),
    ("2 GiB declared, 2 GiB window", zstd_frame(raw_block(b"ten bytes!"), content_size=2 << 30)),
    ("2 GiB declared, 10 bytes", zstd_frame(raw_block(b"ten bytes!"), content_size=2 << 30, window_log=17)),
    ("100 declared, 12 bytes", zstd_frame(raw_block(TWELVE), content_size=100)),
    ("5 declared, 12 bytes", zstd_frame(raw_block(TWELVE), content_size=5)),
    ("100,000 bytes over a 64 KiB maximum", zstd_frame(rle_block(b"z", 100_000), content_size=100_000)),
]
MAX_MESSAGE = 64 << 10


def test_lying_compressed_frames_are_refused_alone_on_a_known_channel(peers, redis, tmp_path):
    out = str(tmp_path / "listener.log")
    listener, addr, tk = listener_under_attack(peers, redis, "cf", out, "--max-message-size", str(MAX_MESSAGE))
    host, port = addr.rsplit(":", 1)

    opener = liner.Client("cf_attacker", "cf_attacker_topic", "127.0.0.1:0", redis.url)
    good = liner.Client("cf_good", "cf_good_topic", "127.0.0.1:0", redis.url)
    owner = None
    raw = None
    try:
        assert opener.run(lambda *a: None)
        assert opener.send_to("cf_topic", b"opener:1:%.6f:" % time.monotonic(), True)
        assert good.run(lambda *a: None)
        assert wait_until(lambda: [r.tag for r in read_records(out)] == ["opener"], 10)
        assert opener.close()
        ck = int(redis.cli("GET", "lnr_connection:cf_attacker:cf_attacker_topic:cf_listener:key"))
        assert redis.cli("GET", "lnr_connection:%d:mess_number" % ck) == "1"
        # The channel's owner runs again (it does not connect: nothing waits for the listener),
        # to hear about the refusals of its channel.
        owner = liner.Client("cf_attacker", "cf_attacker_topic", "127.0.0.1:0", redis.url)
        events = EventLog()
        assert owner.set_status_callback(events)
        assert owner.run(lambda *a: None)

        # The stream: honest frames (tag "atk") around every lie, numbers going on from 2.
        stream, number, refused, atk = [], 1, {}, 0
        for name, data in [(None, None)] + LIES:
            if name is not None:
                number += 1
                refused[number] = name
                stream.append(frame(number, ck, tk, data, FLAG_COMPRESS | FLAG_AT_LEAST_ONCE))
            atk += 1
            number += 1
            text = b"atk:%d:%.6f:" % (atk, time.monotonic())
            # Every other honest message compressed too: the decoder works on this stream.
            payload, flags = (honest(text), FLAG_COMPRESS) if atk % 2 else (text, 0)
            stream.append(frame(number, ck, tk, payload, flags | FLAG_AT_LEAST_ONCE))
        last = number

        with GoodPump(good, "cf_topic", limit=GOOD) as pump:
            raw = socket.create_connection((host, int(port)), timeout=5)
            raw.sendall(b"".join(stream))
            assert wait_until(lambda: sum(r.tag == "atk" for r in read_records(out)) == atk, 10), \
                (read_records(out)[-5:], listener.stderr[-5:])
            # Nothing came back on the stream (a listener never writes), and it is still open.
            raw.setblocking(False)
            try:
                came = raw.recv(1)  # b"": closed by the listener
            except BlockingIOError:
                came = None
            assert came is None, "the listener closed the stream or wrote %r" % came
            pump.thread.join(30)
        assert len(pump.sent) == GOOD
        assert wait_until(lambda: sum(r.tag == "good" for r in read_records(out)) >= GOOD, 10)
        assert wait_until(lambda: redis.cli("GET", "lnr_connection:%d:mess_number" % ck) == str(last), 10)
        assert wait_until(lambda: len(events.matching(liner.SENDER_SEND_ERROR)) >= len(refused), 10), \
            events.snapshot()

        records = read_records(out)
        entries = redis.cli("LRANGE", "lnr_connection:%d:refused" % ck, 0, -1).split("\n")
        report("compressed_lies", lies=len(LIES), refused=len(entries),
               reasons=sorted({e.split(" ", 1)[1] for e in entries}))
        # The honest frames of the stream, in order; no lie reached the callback.
        assert [r.seq for r in records if r.tag == "atk"] == list(range(1, atk + 1))
        assert sorted(r.seq for r in records if r.tag == "good") == list(range(1, GOOD + 1))
        assert sorted({r.tag for r in records}) == ["atk", "good", "opener"]
        # Each lie refused once, by number, as a zstd error, and its sender told.
        assert [int(e.split(" ", 1)[0]) for e in entries] == sorted(refused), entries
        assert all(e.split(" ", 1)[1].startswith("zstd: ") for e in entries), entries
        told = sorted(int(e.message.split()[1]) for e in events.matching(liner.SENDER_SEND_ERROR))
        assert told == sorted(refused), events.snapshot()
        assert all(e.topic == "cf_topic" and "refused by cf_listener" in e.message
                   for e in events.matching(liner.SENDER_SEND_ERROR))
        assert any("dropping message %d of channel %d" % (min(refused), ck) in line
                   for line in listener.stderr), listener.stderr[-5:]
        assert listener.proc.poll() is None, "the listener died"
    finally:
        if raw is not None:
            raw.close()
        for c in (owner, good, opener):
            if c is not None:
                c.close()
