"""A sender or a listener closed and re-created (same identity) within a second of at-least-once
traffic loses nothing, delivers nothing twice and keeps the order."""
import time

import liner
from liner_testkit import SeqChecker, free_port, seq_payload, wait_until

PHASE_S = 0.5  # traffic before and after the restart


def pump(client, topic, first, seconds):
    """Sends numbered at-least-once messages for `seconds` (bursts of 50, 1 ms apart); returns the
    next number. ERR_BUSY is retried; any other refusal fails the test."""
    seq = first
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            deadline = time.monotonic() + 10
            while not client.send_to(topic, seq_payload(seq), True):
                code = client.last_error_code()
                assert code == liner.ERR_BUSY, "message %d refused: %d %s" % (
                    seq, code, client.last_error_message())
                assert time.monotonic() < deadline
                time.sleep(0.001)
            seq += 1
        time.sleep(0.001)
    return seq


def assert_exactly_once_in_order(checker, last, rdb, ck_key):
    assert checker.wait_count(last, 20) >= last, "%d of %d delivered" % (checker.count, last)
    time.sleep(1.0)  # a duplicate would show up here
    missing = sorted(set(range(1, last + 1)) - set(checker.seqs))
    assert missing == [], "lost %d messages, first %s" % (len(missing), missing[:10])
    assert checker.count == last, "%d deliveries for %d messages" % (checker.count, last)
    assert checker.seqs == list(range(1, last + 1)), "order broken: %s" % checker.errors
    assert checker.bad_meta == []
    ck = rdb.get(ck_key)
    assert wait_until(lambda: rdb.llen("lnr_connection:%s:messages" % ck) == 0, 3)


def test_sender_restart_mid_stream_loses_and_doubles_nothing(make_client, rdb):
    listener = make_client("listener", "listener_topic")
    checker = SeqChecker()
    checker.expect_meta("listener_topic", "sender_topic")
    assert listener.run(checker)

    sender = make_client("sender", "sender_topic")
    assert sender.run(lambda *a: None)
    seq = pump(sender, "listener_topic", 1, PHASE_S)
    assert sender.close()

    sender = make_client("sender", "sender_topic")
    assert sender.run(lambda *a: None)
    seq = pump(sender, "listener_topic", seq, PHASE_S)
    assert_exactly_once_in_order(checker, seq - 1, rdb,
                                 "lnr_connection:sender:sender_topic:listener:key")


def test_listener_restart_mid_stream_loses_and_doubles_nothing(make_client, rdb):
    addr = "127.0.0.1:%d" % free_port()
    checker = SeqChecker()
    checker.expect_meta("listener_topic", "sender_topic")
    listener = make_client("listener", "listener_topic", addr)
    assert listener.run(checker)

    sender = make_client("sender", "sender_topic")
    assert sender.run(lambda *a: None)
    seq = pump(sender, "listener_topic", 1, PHASE_S)
    assert listener.close()
    seq = pump(sender, "listener_topic", seq, 0.1)  # while nobody listens

    listener = make_client("listener", "listener_topic", addr)
    assert listener.run(checker)
    assert listener.bound_listen_addr() == addr
    seq = pump(sender, "listener_topic", seq, PHASE_S)
    assert_exactly_once_in_order(checker, seq - 1, rdb,
                                 "lnr_connection:sender:sender_topic:listener:key")


def test_both_restart_mid_stream_loses_and_doubles_nothing(make_client, rdb):
    addr = "127.0.0.1:%d" % free_port()
    checker = SeqChecker()
    listener = make_client("listener", "listener_topic", addr)
    assert listener.run(checker)
    sender = make_client("sender", "sender_topic")
    assert sender.run(lambda *a: None)
    seq = pump(sender, "listener_topic", 1, PHASE_S)
    assert listener.close()
    seq = pump(sender, "listener_topic", seq, 0.1)
    assert sender.close()

    sender = make_client("sender", "sender_topic")
    assert sender.run(lambda *a: None)
    listener = make_client("listener", "listener_topic", addr)
    assert listener.run(checker)
    seq = pump(sender, "listener_topic", seq, PHASE_S)
    assert_exactly_once_in_order(checker, seq - 1, rdb,
                                 "lnr_connection:sender:sender_topic:listener:key")
