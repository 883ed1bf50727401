"""A channel's ack counter that holds something other than a number (lnr_connection:{ck}:
mess_number = "abc": a bug elsewhere, a hand edit) is reported, logged once, read as 0 and
rewritten: messages keep flowing (a resend may deliver some twice, never zero times). Before,
the channel stalled for good without a word."""
import liner
from extended_testkit import EventLog, log_lines  # noqa: F401  (fixture)
from liner_testkit import Inbox, free_port, seq_of, seq_payload, wait_until

N = 100


def not_a_number_lines(lines):
    return [line for line in lines.snapshot() if "is not a number" in line]


def test_a_garbage_ack_counter_is_reported_and_the_channel_flows(make_pair, rdb, log_lines):
    sender, inbox = make_pair("ga")
    assert sender.send_to("ga_rx_topic", seq_payload(0))
    assert inbox.wait_count(1) == 1
    ck = rdb.get("lnr_connection:ga_tx:ga_tx_topic:ga_rx:key")
    key = "lnr_connection:%s:mess_number" % ck
    assert wait_until(lambda: rdb.get(key) == "1", 5)
    rdb("SET", key, "abc")
    for i in range(1, N + 1):
        assert sender.send_to("ga_rx_topic", seq_payload(i), True), sender.last_error_message()
    assert inbox.wait_count(N + 1, 10) == N + 1
    assert set(seq_of(d) for d in inbox.payloads()) == set(range(N + 1))
    # The listener wrote a number over it, and the sender's queue emptied.
    assert wait_until(lambda: (rdb.get(key) or "").isdigit() and int(rdb.get(key)) >= N + 1, 5), rdb.get(key)
    assert wait_until(lambda: sender.stats()["send_queue_messages"] == 0, 5), sender.stats()
    # Whoever read it said so, once per side at most (the listener's next ack may overwrite
    # it before the sender looks: then nobody had to).
    assert len(not_a_number_lines(log_lines)) <= 2, not_a_number_lines(log_lines)


def test_a_garbage_ack_counter_does_not_strand_the_offline_queue(make_client, started_client, rdb, log_lines):
    addr = "127.0.0.1:%d" % free_port()
    receiver, inbox = started_client("gq_listener", "gq_topic", addr)
    sender = make_client("gq_sender", "gq_sender_topic")
    tx_events = EventLog()
    assert sender.set_status_callback(tx_events)
    assert sender.run(Inbox())
    assert sender.send_to("gq_topic", seq_payload(0))
    assert inbox.wait_count(1) == 1
    assert receiver.close()
    for i in range(1, N + 1):
        assert sender.send_to("gq_topic", seq_payload(i), True), sender.last_error_message()
    assert wait_until(lambda: sender.pending_count() == N, 5)
    ck = rdb.get("lnr_connection:gq_sender:gq_sender_topic:gq_listener:key")
    rdb("SET", "lnr_connection:%s:mess_number" % ck, "abc")
    receiver = make_client("gq_listener", "gq_topic", addr)
    inbox = Inbox()
    rx_events = EventLog()
    assert receiver.set_status_callback(rx_events)
    assert receiver.run(inbox)
    assert wait_until(lambda: set(range(1, N + 1)) <= set(seq_of(d) for d in inbox.payloads()), 10), len(inbox)
    assert wait_until(lambda: sender.pending_count() == 0, 5), sender.pending_count()
    # Both ends read it (the sender at connect, the listener at the channel's first frame):
    # each logged one line and reported it.
    assert 2 <= len(not_a_number_lines(log_lines)) <= 4, not_a_number_lines(log_lines)
    reported = tx_events.matching(liner.SENDER_STORE_ERROR) + rx_events.matching(liner.LISTENER_STORE_ERROR)
    assert len([e for e in reported if "not a number" in e.message]) >= 2, reported
