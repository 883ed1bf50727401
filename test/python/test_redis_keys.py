"""A two-peer exchange writes exactly the Redis keys, types and values of spec section 2.4."""
from liner_testkit import Inbox, wait_until


def test_two_peer_exchange_writes_the_1_3_1_key_layout(started_client, rdb):
    b, b_inbox = started_client("client2", "topic_client2")
    a, _ = started_client("client1", "topic_client1")
    b_addr, a_addr = b.bound_listen_addr(), a.bound_listen_addr()
    assert b_addr.startswith("127.0.0.1:") and a_addr.startswith("127.0.0.1:")

    assert a.send_to("topic_client2", b"hello", True)
    assert b_inbox.wait_count(1, 5) == 1
    assert b_inbox.snapshot() == [("topic_client2", "topic_client1", b"hello")]

    ck_key = "lnr_connection:client1:topic_client1:client2:key"
    # The listener writes its ack within ~1 s of delivery.
    assert wait_until(lambda: rdb.get("lnr_connection:3:mess_number") == "1", 2.5), \
        rdb.get("lnr_connection:3:mess_number")

    # Check before closing: liner removes a client's address from the directory on close.
    expected = {
        "lnr_unique_key": ("string", "3"),
        "lnr_topic:topic_client2:addr": ("hash", {b_addr: "client2"}),
        "lnr_topic:topic_client2:key": ("string", "1"),
        "lnr_topic:topic_client1:addr": ("hash", {a_addr: "client1"}),
        "lnr_topic:topic_client1:key": ("string", "2"),
        ck_key: ("string", "3"),
        "lnr_connection:3:sender": ("string", "topic_client1"),
        "lnr_connection:3:mess_number": ("string", "1"),
        "lnr_sender:client1:topic_client1:listener": ("hash", {b_addr: "topic_client2"}),
        # liner only (docs/routing-and-redis-keys.md): the listener's name, for a restarted sender
        "lnr_sender:client1:topic_client1:listener_name": ("hash", {b_addr: "client2"}),
    }
    actual = {}
    for key in rdb.keys():
        t = rdb.type(key)
        actual[key] = (t, rdb.hgetall(key) if t == "hash" else rdb.get(key) if t == "string" else None)
    # liner only: each running peer's lease, when its entry lapses (ms, Redis's clock): within
    # the 7 s lease of now, renewed every second.
    seconds, micros = rdb("TIME")
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    for topic, addr in (("topic_client1", a_addr), ("topic_client2", b_addr)):
        kind, lease = actual.pop("lnr_topic:%s:lease" % topic)
        assert kind == "hash" and list(lease) == [addr], lease
        assert now_ms < int(lease[addr]) <= now_ms + 7000, (now_ms, lease)
    assert actual == expected
    assert rdb.llen("lnr_connection:3:messages") == 0


def test_close_removes_the_address_from_the_directory(make_client, rdb):
    b = make_client("client2", "topic_client2")
    assert b.subscribe("news")
    assert b.run(Inbox())
    addr = b.bound_listen_addr()
    assert rdb.hgetall("lnr_topic:topic_client2:addr") == {addr: "client2"}
    assert rdb.hgetall("lnr_topic:news:addr") == {addr: "client2"}
    assert b.close()
    assert rdb.hgetall("lnr_topic:topic_client2:addr") == {}
    assert rdb.hgetall("lnr_topic:news:addr") == {}
    # The keys 1.3.1 never deletes stay.
    assert rdb.get("lnr_topic:topic_client2:key") is not None
