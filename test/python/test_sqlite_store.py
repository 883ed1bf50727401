"""The SQLite store through liner_broker's Python constructor, Client.new_sqlite: peers that share
one file exchange messages and keep them while a receiver is away; peers on files of their own
find each other through liner_broker's receivers_json seeding; a file that cannot be opened is
an error that names it."""
import json
import time

import pytest

import liner
from liner_testkit import Inbox, free_port, made_and_closed, sqlite_query


@pytest.fixture
def sqlite_client(tmp_path):
    """sqlite_client(unique_name, topic, localhost="127.0.0.1:0", path=<tmp>/mesh.db, receivers_json="")"""
    def make(unique_name, topic, localhost="127.0.0.1:0", path=None, receivers_json=""):
        return liner.Client.new_sqlite(unique_name, topic, localhost, str(path or tmp_path / "mesh.db"), receivers_json)

    yield from made_and_closed(make, reverse=True)


def queued_rows(path, want, timeout=5.0):
    """Rows of liner_broker's offline-queue table, once there are `want` (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        [(rows,)] = sqlite_query(path, "SELECT COUNT(*) FROM conn_messages")
        if rows == want or time.monotonic() > deadline:
            return rows
        time.sleep(0.01)


def test_two_peers_on_one_file_exchange_messages(sqlite_client):
    rx = sqlite_client("rx", "rx_topic")
    inbox = Inbox()
    assert rx.run(inbox), rx.last_error_message()
    tx = sqlite_client("tx", "tx_topic")
    assert tx.run(Inbox()), tx.last_error_message()
    for i in range(100):
        assert tx.send_to("rx_topic", b"m%03d" % i, True), tx.last_error_message()
    assert inbox.wait_count(100) == 100
    assert inbox.payloads() == [b"m%03d" % i for i in range(100)]
    assert {(to, frm) for to, frm, _ in inbox.snapshot()} == {("rx_topic", "tx_topic")}


def test_messages_for_an_absent_receiver_wait_in_the_file(sqlite_client, tmp_path):
    # A fixed address, so that the receiver comes back where its sender looks for it.
    addr = f"127.0.0.1:{free_port()}"
    rx = sqlite_client("rx", "rx_topic", addr)
    first = Inbox()
    assert rx.run(first)
    tx = sqlite_client("tx", "tx_topic")
    assert tx.run(Inbox())
    assert tx.send_to("rx_topic", b"before", True)
    assert first.wait_count(1) == 1
    rx.close()
    for i in range(20):
        assert tx.send_to("rx_topic", b"away%02d" % i, True), tx.last_error_message()
    assert queued_rows(tmp_path / "mesh.db", want=20) == 20
    again = sqlite_client("rx", "rx_topic", addr)
    inbox = Inbox()
    assert again.run(inbox)
    assert inbox.wait_count(20, timeout=15) == 20
    assert inbox.payloads() == [b"away%02d" % i for i in range(20)]
    assert queued_rows(tmp_path / "mesh.db", want=0) == 0


def test_receivers_json_seeds_peers_on_files_of_their_own(sqlite_client, tmp_path):
    a_addr, b_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    seed_of = lambda topic, addr, name: json.dumps([{"topic": topic, "addr": addr, "client_name": name}])
    b = sqlite_client("client2", "topic_client2", b_addr, tmp_path / "b.db", seed_of("topic_client1", a_addr, "client1"))
    inbox = Inbox()
    assert b.run(inbox), b.last_error_message()
    a = sqlite_client("client1", "topic_client1", a_addr, tmp_path / "a.db", seed_of("topic_client2", b_addr, "client2"))
    assert a.run(Inbox()), a.last_error_message()
    assert a.send_to("topic_client2", b"seeded", True), a.last_error_message()
    assert inbox.wait_count(1) == 1
    assert inbox.snapshot()[0] == ("topic_client2", "topic_client1", b"seeded")
    # As liner_broker seeds: keys 1.
    assert sqlite_query(tmp_path / "a.db", "SELECT k FROM topic_key WHERE topic = 'topic_client2'") == [(1,)]
    assert sqlite_query(tmp_path / "a.db", "SELECT connection_key FROM conn_key_map") == [(1,)]


def test_a_file_that_cannot_be_created_is_an_error_naming_it(tmp_path):
    path = tmp_path / "missing" / "mesh.db"
    with pytest.raises(liner.LinerError) as e:
        liner.Client.new_sqlite("u", "t", "127.0.0.1:0", str(path))
    assert e.value.code == liner.ERR_STORE
    assert str(path) in e.value.message
