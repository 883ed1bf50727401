"""clear_stored_messages / clear_addresses_of_topic: refused while running, otherwise exactly the
deletions of spec section 2.3."""
import time

import pytest

import liner
from liner_testkit import Inbox, free_port, seq_of, seq_payload, wait_until

SENDER_MAP = "lnr_sender:sender:sender_topic:listener"
SENDER_NAMES = "lnr_sender:sender:sender_topic:listener_name"  # liner only, beside SENDER_MAP
CK_KEY = "lnr_connection:sender:sender_topic:listener:key"


def test_clear_is_refused_while_running(started_client, rdb):
    client, _ = started_client("client", "client_topic")
    before = rdb.dump_values()
    assert not client.clear_stored_messages()
    assert client.last_error_code() == liner.ERR_CLEAR_WHILE_RUNNING
    assert client.last_error_message()
    assert not client.clear_addresses_of_topic()
    assert client.last_error_code() == liner.ERR_CLEAR_WHILE_RUNNING
    assert rdb.dump_values() == before


def test_clear_on_a_fresh_store_creates_nothing(make_client, rdb):
    client = make_client("client", "client_topic")
    assert client.clear_stored_messages()
    assert client.last_error_code() == liner.OK
    assert client.clear_addresses_of_topic()
    assert rdb.keys() == []


@pytest.fixture
def acked_channel(make_client, rdb):
    """A running listener that acknowledged 3 messages of a sender that is closed again."""
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()
    assert listener.run(inbox)
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    for i in range(1, 4):
        assert sender.send_to("listener_topic", seq_payload(i))
    assert inbox.wait_count(3) == 3
    ck = rdb.get(CK_KEY)
    assert wait_until(lambda: rdb.get("lnr_connection:%s:mess_number" % ck) == "3", 3)
    assert sender.close()
    return listener, inbox, ck


def test_clear_stored_messages_deletes_the_channel_state_only(acked_channel, make_client, rdb):
    _, _, ck = acked_channel
    # Something in the offline queue too (a frame-shaped element is enough: nobody reads it).
    rdb("RPUSH", "lnr_connection:%s:messages" % ck, b"x")
    before = rdb.dump_values()
    assert SENDER_MAP in before and SENDER_NAMES in before

    sender = make_client("sender", "sender_topic")
    assert sender.clear_stored_messages()
    after = rdb.dump_values()
    deleted = {"lnr_connection:%s:messages" % ck, "lnr_connection:%s:mess_number" % ck, SENDER_MAP,
               SENDER_NAMES}
    assert set(before) - set(after) == deleted
    assert after == {k: v for k, v in before.items() if k not in deleted}


def test_running_listener_accepts_restarted_numbering_after_clear(acked_channel, make_client, rdb):
    _, inbox, ck = acked_channel
    sender = make_client("sender", "sender_topic")
    assert sender.clear_stored_messages()
    assert sender.run(Inbox())
    for i in range(4, 7):
        assert sender.send_to("listener_topic", seq_payload(i))
    assert inbox.wait_count(6, 5) == 6, "messages sent after clear_stored_messages were dropped"
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, 7))
    assert rdb.get(CK_KEY) == ck  # same channel, numbering restarted
    assert wait_until(lambda: rdb.get("lnr_connection:%s:mess_number" % ck) == "3", 3)


def test_clear_stored_messages_of_an_offline_listener_drops_its_queue(make_client, started_client, rdb):
    addr = "127.0.0.1:%d" % free_port()
    listener, inbox = started_client("listener", "listener_topic", addr)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", seq_payload(1))
    assert inbox.wait_count(1) == 1
    assert listener.close()
    for i in range(2, 12):
        assert sender.send_to("listener_topic", seq_payload(i))
    ck = rdb.get(CK_KEY)
    messages_key = "lnr_connection:%s:messages" % ck
    assert wait_until(lambda: rdb.llen(messages_key) == 10, 5)
    assert sender.close()
    assert rdb.llen(messages_key) == 10

    # The listener's address has left the directory; the queue must still be found and dropped.
    sender = make_client("sender", "sender_topic")
    before = rdb.dump_values()
    assert sender.clear_stored_messages()
    after = rdb.dump_values()
    # The queue's hand-over marks (its messages were sent with send_to) go with it.
    deleted = {messages_key, "lnr_connection:%s:mess_number" % ck, "lnr_connection:%s:handover" % ck,
               SENDER_MAP, SENDER_NAMES}
    assert set(before) - set(after) == deleted
    assert after == {k: v for k, v in before.items() if k not in deleted}

    listener, inbox2 = started_client("listener", "listener_topic", addr)
    assert sender.run(Inbox())
    time.sleep(2.0)
    assert inbox2.snapshot() == []


def test_clear_addresses_of_topic_deletes_every_replica(make_client, started_client, rdb):
    r1 = make_client("replica1", "jobs")
    r2 = make_client("replica2", "jobs")
    assert r1.run(Inbox()) and r2.run(Inbox())
    other, _ = started_client("other", "other_topic")
    assert len(rdb.hgetall("lnr_topic:jobs:addr")) == 2
    before = rdb.dump_values()

    r3 = make_client("replica3", "jobs")
    assert r3.clear_addresses_of_topic()
    after = rdb.dump_values()
    assert set(before) - set(after) == {"lnr_topic:jobs:addr"}
    assert after == {k: v for k, v in before.items() if k != "lnr_topic:jobs:addr"}
