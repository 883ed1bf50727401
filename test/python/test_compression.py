"""Payloads above 1 MiB travel zstd-compressed (frame flag 0x01); 1 MiB and less travel raw.
Checked on the frames an offline listener's queue holds in Redis (spec sections 1.5, 1.8)."""
import os

from liner_testkit import FLAG_AT_LEAST_ONCE, FLAG_COMPRESS, free_port, parse_frame, wait_until

MIB = 1024 * 1024
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def test_only_payloads_above_1_mib_are_compressed(started_client, rdb):
    addr = "127.0.0.1:%d" % free_port()
    listener, inbox = started_client("listener", "listener_topic", addr)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"warm-up")
    assert inbox.wait_count(1) == 1
    assert listener.close()

    exactly = (b"liner " * MIB)[:MIB]
    above = (b"liner " * MIB)[:MIB + 1]
    incompressible = os.urandom(MIB + 1)
    for payload in (exactly, above, incompressible):
        assert sender.send_to("listener_topic", payload, True)
    ck = rdb.get("lnr_connection:sender:sender_topic:listener:key")
    key = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: rdb.llen(key) == 3, 5)

    frames = [parse_frame(f) for f in rdb.lrange(key)]
    n, _, _, flags, data = frames[0]
    assert (n, flags, data) == (2, FLAG_AT_LEAST_ONCE, exactly)
    n, _, _, flags, data = frames[1]
    assert (n, flags) == (3, FLAG_AT_LEAST_ONCE | FLAG_COMPRESS)
    assert data.startswith(ZSTD_MAGIC) and len(data) < MIB // 10
    n, _, _, flags, data = frames[2]
    # 1.3.1 compresses even when that does not make it smaller; sending such a payload raw
    # would be just as readable, so only the numbering is pinned here.
    assert n == 4 and flags & FLAG_AT_LEAST_ONCE
    assert data.startswith(ZSTD_MAGIC) if flags & FLAG_COMPRESS else data == incompressible

    listener, inbox = started_client("listener", "listener_topic", addr)
    assert inbox.wait_count(3, 15) == 3
    assert inbox.payloads() == [exactly, above, incompressible]
