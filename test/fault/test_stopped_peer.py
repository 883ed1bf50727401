"""One of two listeners of a send_all topic is SIGSTOPped (alive, connected, reading nothing):

- the other keeps receiving, its latency p99 staying under LATENCY_P99_S (max under
  LATENCY_MAX_S) while its twin is stopped;
- the sender's memory stays bounded: its RSS grows by at most the per-peer queue cap (set to
  QUEUE_CAP here) plus RSS_SLACK (under AddressSanitizer, whose quarantine keeps freed blocks
  resident: 4 x QUEUE_CAP + 64 MiB); once the cap is reached send_all reports ERR_BUSY for the
  stopped peer's copy (the running peer's copy is still queued);
- after SIGCONT the stopped listener catches up: it receives every message whose copy was
  accepted for it (all but those refused with ERR_BUSY), at least once."""
import signal
import time

from faultkit import percentile, read_records, report, rss_kib, under_sanitizer, wait_until

RATE = 1_000
COUNT = 8_000          # 8 s of traffic
SIZE = 4_096
QUEUE_CAP = 8 << 20    # liner.set_max_send_queue_bytes in the sender process
STOP_AT = 1_500        # messages received by the running twin before the SIGSTOP
STOP_S = 4.0
LATENCY_P99_S = 0.2
LATENCY_MAX_S = 0.5
RSS_SLACK = 16 << 20


def test_a_stopped_listener_does_not_delay_its_twin_nor_grow_the_sender(peers, redis, tmp_path):
    out1, out2 = str(tmp_path / "one.log"), str(tmp_path / "two.log")
    one = peers("listen", "sp_one", "sp_topic", redis.url, "--out", out1)
    two = peers("listen", "sp_two", "sp_topic", redis.url, "--out", out2)
    one.expect("READY")
    two.expect("READY")
    sender = peers("send", "sp_sender", "sp_sender_topic", redis.url, "--to", "sp_topic", "--all",
                   "--count", COUNT, "--rate", RATE, "--size", SIZE,
                   "--max-send-queue-bytes", QUEUE_CAP)
    sender.expect("READY")
    assert wait_until(lambda: len(read_records(out1)) >= STOP_AT, 20)
    rss_before = rss_kib(sender.pid) * 1024

    two.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    rss_peak = rss_before
    while time.monotonic() - stopped_at < STOP_S:
        rss_peak = max(rss_peak, rss_kib(sender.pid) * 1024)
        time.sleep(0.1)
    two.signal(signal.SIGCONT)
    resumed_at = time.monotonic()

    done = int(sender.expect("DONE", timeout=COUNT / RATE + 20))
    busy = {int(s) for s in sender.lines_starting("BUSY")}
    refused = sender.lines_starting("REFUSED")
    assert not refused, refused[:5]
    assert done == COUNT - len(busy)  # every send_all call was accepted or refused with BUSY
    assert wait_until(lambda: len(read_records(out1)) >= COUNT, 20)
    assert wait_until(lambda: len({r.seq for r in read_records(out2)}) >= COUNT - len(busy), 20)
    caught_up_in = time.monotonic() - resumed_at
    time.sleep(1.2)
    recs1, recs2 = read_records(out1), read_records(out2)

    during = [r.received - r.sent for r in recs1 if stopped_at <= r.sent < resumed_at]
    before = [r.received - r.sent for r in recs1 if r.sent < stopped_at]
    seqs1, seqs2 = [r.seq for r in recs1], [r.seq for r in recs2]
    report("stopped_peer", stopped_s=STOP_S, busy_for_stopped_peer=len(busy),
           twin_p50_ms_before=round(percentile(before, 50) * 1e3, 1),
           twin_p99_ms_before=round(percentile(before, 99) * 1e3, 1),
           twin_p50_ms_during=round(percentile(during, 50) * 1e3, 1),
           twin_p99_ms_during=round(percentile(during, 99) * 1e3, 1),
           twin_max_ms_during=round(max(during) * 1e3, 1),
           sender_rss_growth_mib=round((rss_peak - rss_before) / 2**20, 1),
           queue_cap_mib=QUEUE_CAP >> 20, caught_up_in_s=round(caught_up_in, 2),
           stopped_peer_duplicates=len(seqs2) - len(set(seqs2)))

    assert len(during) >= RATE * STOP_S * 0.8, "the twin got only %d messages while stopped" % len(during)
    assert percentile(during, 99) < LATENCY_P99_S
    assert max(during) < LATENCY_MAX_S
    # Under AddressSanitizer freed blocks stay resident in its quarantine.
    rss_bound = 4 * QUEUE_CAP + (64 << 20) if under_sanitizer(sender.pid) else QUEUE_CAP + RSS_SLACK
    assert rss_peak - rss_before <= rss_bound
    # The running twin got every message once, in order.
    assert seqs1 == list(range(1, COUNT + 1))
    # The stopped one got every message accepted for it.
    missing = set(range(1, COUNT + 1)) - busy - set(seqs2)
    assert not missing, "stopped peer lost %d accepted messages, first %s" % (
        len(missing), sorted(missing)[:10])
