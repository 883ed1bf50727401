"""A listener acknowledges a stream that paused short of the ack window at once, not at its
once-a-second flush: a sender stopped at a queue cap below the window waits for exactly that ack
(native/core/ack_window.hpp)."""
import time

import liner
from liner_testkit import wait_until


def ack_of(rdb, ck):
    return rdb.get("lnr_connection:%s:mess_number" % ck)


def test_a_paused_stream_is_acknowledged_well_before_the_periodic_flush(make_pair, rdb):
    tx, inbox = make_pair("pause")
    assert tx.send_to("pause_rx_topic", b"first", True)
    assert inbox.wait_count(1, 5) == 1
    ck = rdb.get("lnr_connection:pause_tx:pause_tx_topic:pause_rx:key")
    assert wait_until(lambda: ack_of(rdb, ck) == "1", 5), ack_of(rdb, ck)

    # Just after an ack the periodic flush is a second away; a pause is acknowledged in ~20 ms.
    for i in range(10):
        assert tx.send_to("pause_rx_topic", b"m%d" % i, True)
    started = time.monotonic()
    assert wait_until(lambda: ack_of(rdb, ck) == "11", 5), ack_of(rdb, ck)
    assert time.monotonic() - started < 0.5


def test_a_sender_capped_below_the_window_streams_everything_in_order(make_pair):
    tx, inbox = make_pair("cap")
    saved = liner.get_max_send_queue()
    liner.set_max_send_queue(32)  # at-least-once messages count until acknowledged
    try:
        want = [b"c%d" % i for i in range(500)]
        sent, refusals = 0, 0
        # One ack per second would take ~16 s for this; acks after each pause take well under one.
        deadline = time.monotonic() + 10
        while sent < len(want) and time.monotonic() < deadline:
            if tx.send_to("cap_rx_topic", want[sent], True):
                sent += 1
            else:
                assert tx.last_error_code() == liner.ERR_BUSY
                refusals += 1
                time.sleep(0.001)
        assert sent == len(want)
        assert refusals > 0  # the cap was reached: the acks after pauses are what let it go on
        assert inbox.wait_count(len(want), 10) == len(want)
        assert inbox.payloads() == want
    finally:
        liner.set_max_send_queue(saved)
