"""zstd bombs against a live listener (fault_peer.py listen, its own process).

A bomb is a COMPRESS frame (flag 0x01) whose data is one zstd frame of RLE blocks: 4 bytes per
128 KiB of zeros, so 33 KB claim 1 GiB, and the header declares no content size (the reference
encoder streams, so a listener cannot ask for one). It carries the connection key of a channel a
real liner sender opened and the listener topic's real key, so it passes every check before
decompression.

Expected (native/core/compress.hpp, the expansion rule): each bomb stops at
max(16 MiB, 256 x 33 KB) = 16 MiB of output and is dropped (logged, counted as undecodable,
not handed to the callback); the listener's RSS grows by less than RSS_BOUND (3 bombs, one at a
time; about 2 x 16 MiB is expected: the output buffer doubles up to 16 MiB), each costs well
under a second, and a well-behaved liner sender's messages sent right
after are all delivered, a 64 MiB payload of zeros included (liner's own sender pads what it
compresses up to the ratio cap). Under AddressSanitizer (scripts/sanitize.sh preloads it into the
listener) freed blocks stay resident in its quarantine, so there the bound allows every
allocation of the 3 bombs to stay: still far below the 3 GiB that unbounded output would cost.
"""
import socket
import struct
import time

import liner

from faultkit import cpu_seconds, listener_under_attack, read_records, report, rss_kib, status_kib, under_sanitizer, wait_until
from test_listener_hostile_streams import frame  # the raw frame builder of this suite

FLAG_COMPRESS = 0x01
BOMBS = 3
GOOD = 200
BIG = 64 << 20
RSS_BOUND = 64 << 20
RSS_BOUND_ASAN = 256 << 20
DROP_MAX_S = 1.0      # a bomb's output stops at 16 MiB: tens of ms, not the 1.5 s of 1 GiB
CPU_MAX_S = 1.0       # listener CPU for all 3 bombs (1 GiB each would be several seconds)


def reset_peak_rss(pid):
    """Starts VmHWM (the kernel's peak RSS) over at the current RSS (proc(5): clear_refs 5)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib(pid):
    return status_kib(pid, "VmHWM")


def rle_bomb(blocks=8192):
    """A zstd frame of `blocks` RLE blocks of 128 KiB (window 128 KiB, no content size)."""
    head = b"\x28\xb5\x2f\xfd" + bytes([0x00, 7 << 3])
    block = struct.pack("<I", (1 << 1) | (128 * 1024 << 3))[:3] + b"\0"
    last = struct.pack("<I", 1 | (1 << 1) | (128 * 1024 << 3))[:3] + b"\0"
    return head + block * (blocks - 1) + last


def test_zstd_bombs_are_dropped_at_a_small_bounded_cost(peers, redis, tmp_path):
    out = str(tmp_path / "listener.log")
    listener, addr, tk = listener_under_attack(peers, redis, "zb", out)

    # The attacker's channel is a real one: a liner sender opens it (the store then knows its
    # connection key and source topic) and closes again; the raw stream below reuses its key.
    opener = liner.Client("zb_attacker", "zb_attacker_topic", "127.0.0.1:0", redis.url)
    good = liner.Client("zb_good", "zb_good_topic", "127.0.0.1:0", redis.url)
    attacker = None
    try:
        assert opener.run(lambda *a: None)
        assert opener.send_to("zb_topic", b"opener:1:%.6f:" % time.monotonic(), True)
        assert good.run(lambda *a: None)
        assert good.send_to("zb_topic", b"warm:1:%.6f:" % time.monotonic(), True)
        assert wait_until(lambda: {r.tag for r in read_records(out)} >= {"opener", "warm"}, 10)
        assert opener.close()
        ck = int(redis.cli("GET", "lnr_connection:zb_attacker:zb_attacker_topic:zb_listener:key"))
        assert redis.cli("GET", "lnr_connection:%d:sender" % ck) == "zb_attacker_topic"
        assert wait_until(lambda: redis.cli("GET", "lnr_connection:%d:mess_number" % ck) == "1", 10)

        bomb = rle_bomb()
        assert len(bomb) < 33 * 1024
        host, port = addr.rsplit(":", 1)
        attacker = socket.create_connection((host, int(port)), timeout=5)
        time.sleep(0.3)
        sanitized = under_sanitizer(listener.pid)
        rss_base = rss_kib(listener.pid) * 1024
        exact_peak = reset_peak_rss(listener.pid)
        cpu_base = cpu_seconds(listener.pid)
        rss_peak = rss_base
        drops = []
        number = 1
        for i in range(1, BOMBS + 1):
            # Each bomb is followed on the same stream by a small plain frame: the listener
            # handles a stream's frames in order, so the marker's arrival ends the bomb's cost.
            sent = time.monotonic()
            attacker.sendall(frame(number + 1, ck, tk, bomb, flags=FLAG_COMPRESS)
                             + frame(number + 2, ck, tk, b"marker:%d:%.6f:" % (i, sent)))
            number += 2
            deadline = time.monotonic() + 20
            marker = None
            while marker is None and time.monotonic() < deadline:
                rss_peak = max(rss_peak, rss_kib(listener.pid) * 1024)
                marker = next((r for r in read_records(out) if r.tag == "marker" and r.seq == i), None)
                time.sleep(0.01)
            assert marker is not None, "marker %d after bomb %d never arrived" % (i, i)
            drops.append(marker.received - sent)
        cpu_used = cpu_seconds(listener.pid) - cpu_base
        rss_after = rss_kib(listener.pid) * 1024
        if exact_peak:  # the kernel's high-water mark sees the peaks between two samples too
            rss_peak = max(rss_peak, peak_rss_kib(listener.pid) * 1024)

        # A well-behaved sender right after: every message arrives.
        for seq in range(1, GOOD + 1):
            while not good.send_to("zb_topic", b"good:%d:%.6f:" % (seq, time.monotonic()), True):
                assert good.last_error_code() == liner.ERR_BUSY, good.last_error_message()
                time.sleep(0.001)
        assert wait_until(lambda: len([r for r in read_records(out) if r.tag == "good"]) >= GOOD, 15)
        # As compressible as the bombs and above the 16 MiB floor: liner's sender pads it to
        # the ratio cap, so it still arrives.
        big = b"big:1:%.6f:" % time.monotonic() + bytes(BIG)
        assert good.send_to("zb_topic", big, True)
        assert wait_until(lambda: any(r.tag == "big" for r in read_records(out)), 15)

        records = read_records(out)
        report("zstd_bomb", sanitized=sanitized, bombs=BOMBS, bomb_bytes=len(bomb), exact_peak=exact_peak,
               rss_base_mib=round(rss_base / 2**20, 1),
               rss_growth_peak_mib=round((rss_peak - rss_base) / 2**20, 1),
               rss_growth_after_mib=round((rss_after - rss_base) / 2**20, 1),
               listener_cpu_s=round(cpu_used, 3),
               drop_s=[round(d, 3) for d in drops])

        assert sorted(r.seq for r in records if r.tag == "good") == list(range(1, GOOD + 1))
        # No bomb reached the callback (it would be logged as a "raw" record of its length).
        assert [r for r in records if r.tag not in ("opener", "warm", "marker", "good", "big")] == []
        assert [r.seq for r in records if r.tag == "marker"] == list(range(1, BOMBS + 1))
        assert rss_peak - rss_base < (RSS_BOUND_ASAN if sanitized else RSS_BOUND)
        assert max(drops) < DROP_MAX_S * (5 if sanitized else 1), drops
        assert cpu_used < CPU_MAX_S * (5 if sanitized else 1), cpu_used
        assert any("zstd" in line for line in listener.stderr), listener.stderr[-5:]
        assert listener.proc.poll() is None, "the listener died"
    finally:
        if attacker is not None:
            attacker.close()
        good.close()
        opener.close()
