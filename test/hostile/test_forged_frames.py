"""Forged frames against a live listener (fault_peer.py listen, its own process) while a real liner
sender keeps sending to it:

- one frame with the real channel's connection key and number_mess = 2^64-1: before, the listener
  stored that number as the channel's ack and dropped every later real message as a duplicate,
  even after both peers restarted. Now the jump is refused (the connection is closed, nothing is
  acknowledged), the ack counter stays where the real traffic put it and the real messages flow;
- thousands of connections, each with one frame under a made-up connection key: before, every
  key became a Redis key and a channel record the listener never freed, and the look-ups ran
  inline with real traffic (p50 latency 0.3 ms -> 891 ms). Now each is refused: no Redis key,
  no memory kept, and the real traffic's latency stays low.

What a forged frame can still do (docs/security.md): one whose number is within 2^32 of the
real channel's makes the listener drop that many real messages as duplicates; only
authenticated peers (the secured mesh) close that.
"""
import socket
import time

import pytest

import liner

from faultkit import GoodPump, listener_under_attack, made_and_closed, percentile, read_records, report, rss_kib, under_sanitizer, wait_until
from test_listener_hostile_streams import frame

FLAG_AT_LEAST_ONCE = 0x02
FORGED_CONNECTIONS = 2000
RSS_SLACK = 8 << 20
P99_MAX_S = 0.2


def closed_by_listener(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.fixture
def target(peers, redis, tmp_path):
    """Makes the listener under attack (its own process) and a real sender in this process:
    target(name) -> (listener peer, record file, (host, port), topic key, sender)."""
    def make(name):
        out = str(tmp_path / (name + ".log"))
        listener, addr, tk = listener_under_attack(peers, redis, name, out)
        host, port = addr.rsplit(":", 1)
        sender = liner.Client(name + "_sender", name + "_sender_topic", "127.0.0.1:0", redis.url)
        return listener, out, (host, int(port)), tk, sender

    yield from made_and_closed(make, close=lambda made: made[4].close())


def test_a_forged_huge_number_cannot_silence_a_channel(target, redis):
    listener, out, (host, port), tk, sender = target("fn")
    try:
        assert sender.run(lambda *a: None)
        with GoodPump(sender, "fn_topic") as pump:
            assert wait_until(lambda: len(read_records(out)) >= 50, 10)
            ck = int(redis.cli("GET", "lnr_connection:fn_sender:fn_sender_topic:fn_listener:key"))
            with socket.create_connection((host, int(port)), timeout=5) as raw:
                raw.sendall(frame(2 ** 64 - 1, ck, tk, b"forged:1:0:", FLAG_AT_LEAST_ONCE))
                assert closed_by_listener(raw), "the listener kept the forged stream open"
            time.sleep(1.5)  # the real traffic goes on; acks are written
        sent = list(pump.sent)
        assert wait_until(lambda: {r.seq for r in read_records(out) if r.tag == "good"} >= set(sent), 10)
        acked = int(redis.cli("GET", "lnr_connection:%d:mess_number" % ck))
    finally:
        sender.close()
    records = read_records(out)
    forged = [r for r in records if r.tag == "forged"]
    report("forged_number", sent=len(sent), delivered=len({r.seq for r in records if r.tag == "good"}),
           forged_delivered=len(forged), ack=acked)
    assert not forged
    assert acked <= len(sent) + 1, "the forged number reached the ack counter: %d" % acked


def test_made_up_connection_keys_leave_no_state_and_do_not_slow_real_traffic(target, redis):
    listener, out, (host, port), tk, sender = target("fk")
    refused = [0]
    try:
        assert sender.run(lambda *a: None)
        with GoodPump(sender, "fk_topic") as pump:
            assert wait_until(lambda: len(read_records(out)) >= 50, 10)
            time.sleep(0.5)
            keys_before = int(redis.cli("DBSIZE"))
            rss_before = rss_kib(listener.pid) * 1024
            attack_started = time.monotonic()
            for i in range(FORGED_CONNECTIONS):
                with socket.create_connection((host, int(port)), timeout=5) as raw:
                    raw.sendall(frame(1, 50_000_000 + i, tk, b"forged:%d:0:" % i, FLAG_AT_LEAST_ONCE))
                    refused[0] += closed_by_listener(raw)
            attack_s = time.monotonic() - attack_started
            time.sleep(0.5)
            keys_after = int(redis.cli("DBSIZE"))
            rss_after = rss_kib(listener.pid) * 1024
        sent = list(pump.sent)
        assert wait_until(lambda: {r.seq for r in read_records(out) if r.tag == "good"} >= set(sent), 10)
    finally:
        sender.close()
    records = read_records(out)
    during = [r.received - r.sent for r in records
              if r.tag == "good" and attack_started <= r.sent <= attack_started + attack_s]
    new_keys = [k for k in redis.cli("KEYS", "lnr_connection:5*").split() if k.startswith("lnr_connection:5")]
    report("forged_connection_keys", connections=FORGED_CONNECTIONS, refused=refused[0],
           attack_s=round(attack_s, 2), keys_before=keys_before, keys_after=keys_after,
           rss_growth_kib=(rss_after - rss_before) // 1024, real_during=len(during),
           p50_ms=round(percentile(during, 50) * 1e3, 2), p99_ms=round(percentile(during, 99) * 1e3, 2))
    assert refused[0] == FORGED_CONNECTIONS
    assert not [r for r in records if r.tag == "forged"]
    assert keys_after == keys_before and not new_keys, new_keys[:5]
    slack = 64 << 20 if under_sanitizer(listener.pid) else RSS_SLACK
    assert rss_after - rss_before <= slack
    assert len(during) >= 10
    assert percentile(during, 99) < P99_MAX_S
