"""send_to_many: a batch arrives whole and in order; a bad message refuses the whole batch; a
full queue stops it part-way with ERR_BUSY, and the count says where to go on from."""
import time

import pytest

import liner


@pytest.fixture
def pair(make_pair):
    return make_pair("stm")


def test_every_kind_of_payload_arrives_in_order(pair):
    sender, inbox = pair
    batch = [b"bytes", "text \u00fc", bytearray(b"bytearray"), memoryview(b"__view__")[2:6], b"\0nul\0"]
    assert sender.send_to_many("stm_rx_topic", batch) == len(batch)
    assert sender.send_to_many("stm_rx_topic", [b"best", b"effort"], False) == 2
    assert sender.send_to_many("stm_rx_topic", []) == 0
    want = [b"bytes", "text \u00fc".encode(), b"bytearray", b"view", b"\0nul\0", b"best", b"effort"]
    assert inbox.wait_count(len(want), 5) == len(want)
    assert inbox.payloads() == want


def test_a_bad_message_refuses_the_whole_batch(pair):
    sender, inbox = pair
    assert sender.send_to_many("stm_rx_topic", [b"a", b"", b"c"]) == 0
    assert sender.last_error_code() == liner.ERR_INVALID_ARG
    assert "message 1" in sender.last_error_message()
    with pytest.raises(TypeError):
        sender.send_to_many("stm_rx_topic", [b"a", 42])
    assert sender.send_to_many("nobody_serves_this", [b"x"], False) == 0
    assert sender.last_error_code() == liner.ERR_NO_ADDR
    assert sender.send_to_many("stm_tx_topic", [b"x"]) == 0
    assert sender.last_error_code() == liner.ERR_SELF_TOPIC
    assert sender.send_to_many("stm_rx_topic", [b"after"]) == 1
    assert inbox.wait_count(1, 5) == 1
    time.sleep(0.1)
    assert inbox.payloads() == [b"after"]


def test_a_full_queue_stops_the_batch_and_the_rest_goes_later(pair):
    sender, inbox = pair
    saved = liner.get_max_send_queue()
    liner.set_max_send_queue(32)
    try:
        batch = [b"m%d" % i for i in range(100)]
        sent = sender.send_to_many("stm_rx_topic", batch)
        assert sent == 32  # at-least-once messages count until acknowledged
        assert sender.last_error_code() == liner.ERR_BUSY
        deadline = time.monotonic() + 30
        while sent < len(batch) and time.monotonic() < deadline:
            n = sender.send_to_many("stm_rx_topic", batch[sent:])
            if sent + n < len(batch):
                assert sender.last_error_code() == liner.ERR_BUSY
                time.sleep(0.02)
            sent += n
        assert sent == len(batch)
        assert inbox.wait_count(len(batch), 10) == len(batch)
        assert inbox.payloads() == batch
    finally:
        liner.set_max_send_queue(saved)
