"""Two peers exchange messages both ways: `to`/`from_` are right and payloads of every size arrive
byte-identical (above 1 MiB they are zstd-compressed on the wire)."""
import os

import pytest

from liner_testkit import Inbox, send_retrying

MIB = 1024 * 1024


@pytest.fixture
def peers(make_client):
    a = make_client("peer_a", "topic_a")
    b = make_client("peer_b", "topic_b")
    a_inbox, b_inbox = Inbox(), Inbox()
    assert a.run(a_inbox)
    assert b.run(b_inbox)
    return a, a_inbox, b, b_inbox


def test_to_and_from_are_the_topics_in_both_directions(peers):
    a, a_inbox, b, b_inbox = peers
    assert a.send_to("topic_b", b"from a")
    assert b.send_to("topic_a", b"from b")
    assert b_inbox.wait_count(1) == 1 and a_inbox.wait_count(1) == 1
    assert b_inbox.snapshot() == [("topic_b", "topic_a", b"from a")]
    assert a_inbox.snapshot() == [("topic_a", "topic_b", b"from b")]


@pytest.mark.parametrize("size", [1, 1024, MIB, MIB + 1, 16 * MIB],
                         ids=["1B", "1KiB", "1MiB", "1MiB+1", "16MiB"])
@pytest.mark.parametrize("at_least_once", [True, False], ids=["at_least_once", "best_effort"])
def test_payload_arrives_byte_identical_both_ways(peers, size, at_least_once):
    a, a_inbox, b, b_inbox = peers
    # Half random (incompressible), half repetitive (compressible) bytes.
    half = size // 2
    payload_ab = os.urandom(half) + (b"ab" * size)[:size - half]
    payload_ba = bytes(reversed(payload_ab))
    assert len(payload_ab) == size
    assert send_retrying(a, "topic_b", payload_ab, at_least_once) == (True, 0)
    assert send_retrying(b, "topic_a", payload_ba, at_least_once) == (True, 0)
    assert b_inbox.wait_count(1, 20) == 1
    assert a_inbox.wait_count(1, 20) == 1
    to, from_, data = b_inbox.snapshot()[0]
    assert (to, from_, len(data)) == ("topic_b", "topic_a", size)
    assert data == payload_ab
    to, from_, data = a_inbox.snapshot()[0]
    assert (to, from_, len(data)) == ("topic_a", "topic_b", size)
    assert data == payload_ba


def test_many_sizes_in_one_stream_keep_order(peers):
    a, _, b, b_inbox = peers
    payloads = [os.urandom(n) for n in (1, 7, 1024, MIB, MIB + 1, 3, 2 * MIB + 5, 1)]
    for p in payloads:
        assert send_retrying(a, "topic_b", p) == (True, 0)
    assert b_inbox.wait_count(len(payloads), 20) == len(payloads)
    assert b_inbox.payloads() == payloads


def test_a_stream_of_frames_that_straddle_reads_arrives_intact(peers):
    """Frames of 16 KiB and more that span two socket reads are delivered from the buffer the
    listener assembled them in, not copied; smaller ones, and big ones after a much bigger frame
    left that buffer oversized, are copied. Every mix arrives byte-identical and in order."""
    a, _, b, b_inbox = peers
    sizes = [64 * 1024, 64 * 1024 + 3, 16 * 1024, 16 * 1024 - 1, 100, 200 * 1024, MIB,
             20 * 1024, 64 * 1024, 1, 70 * 1024] * 4
    payloads = [os.urandom(n) for n in sizes]
    for i, p in enumerate(payloads):
        assert send_retrying(a, "topic_b", p, at_least_once=i % 3 != 0) == (True, 0)
    assert b_inbox.wait_count(len(payloads), 20) == len(payloads)
    assert b_inbox.payloads() == payloads


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "readonly_memoryview", "str"])
def test_send_accepts_bytes_like_and_str(peers, kind):
    a, _, b, b_inbox = peers
    raw = "héllo wörld".encode()
    data = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(bytearray(raw)),
            "readonly_memoryview": memoryview(raw), "str": "héllo wörld"}[kind]
    assert a.send_to("topic_b", data)
    assert a.send_all("topic_b", data)
    assert b_inbox.wait_count(2) == 2
    assert b_inbox.payloads() == [raw, raw]
