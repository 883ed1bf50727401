"""The PostgreSQL store through liner_broker's Python constructor, Client.new_postgres: peers that
share one database exchange messages and keep them while a receiver is away; libpq's keyword form
of a connection string works like the URL; an unreachable server is an error without the
password. Each test gets a database of its own on the run's throwaway server
($LINER_TEST_POSTGRES_URL, which scripts/test.sh sets)."""
import os
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

import liner
from liner_testkit import Inbox, free_port, made_and_closed


@pytest.fixture
def database():
    """postgres://…/<a new database>, dropped with the server at the end of the run."""
    server = os.environ.get("LINER_TEST_POSTGRES_URL")
    assert server, "LINER_TEST_POSTGRES_URL is not set: run through scripts/test.sh, or start a server " \
                   "with scripts/lib/postgres.sh (start_throwaway_postgres) and export it"
    name = "py_" + uuid.uuid4().hex[:12]
    # psql is not this test's code: not under the sanitizer the run may preload
    # (scripts/sanitize.sh), whose leak check at exit hangs it.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run(["psql", server, "-qc", "CREATE DATABASE " + name], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL, env=env, timeout=30)
    return server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_client(database):
    """pg_client(unique_name, topic, localhost="127.0.0.1:0", url=<the test's database>)"""
    def make(unique_name, topic, localhost="127.0.0.1:0", url=None):
        return liner.Client.new_postgres(unique_name, topic, localhost, url or database)

    yield from made_and_closed(make, reverse=True)


def test_two_peers_on_one_database_exchange_messages(pg_client):
    rx = pg_client("rx", "rx_topic")
    inbox = Inbox()
    assert rx.run(inbox), rx.last_error_message()
    tx = pg_client("tx", "tx_topic")
    assert tx.run(Inbox()), tx.last_error_message()
    for i in range(100):
        assert tx.send_to("rx_topic", b"m%03d" % i, True), tx.last_error_message()
    assert inbox.wait_count(100) == 100
    assert inbox.payloads() == [b"m%03d" % i for i in range(100)]
    assert {(to, frm) for to, frm, _ in inbox.snapshot()} == {("rx_topic", "tx_topic")}


def test_messages_for_an_absent_receiver_wait_in_the_database(pg_client):
    # A fixed address, so that the receiver comes back where its sender looks for it.
    addr = f"127.0.0.1:{free_port()}"
    rx = pg_client("rx", "rx_topic", addr)
    first = Inbox()
    assert rx.run(first)
    tx = pg_client("tx", "tx_topic")
    assert tx.run(Inbox())
    assert tx.send_to("rx_topic", b"before", True)
    assert first.wait_count(1) == 1
    rx.close()
    for i in range(20):
        assert tx.send_to("rx_topic", b"away%02d" % i, True), tx.last_error_message()
    again = pg_client("rx", "rx_topic", addr)
    inbox = Inbox()
    assert again.run(inbox)
    assert inbox.wait_count(20, timeout=15) == 20
    assert inbox.payloads() == [b"away%02d" % i for i in range(20)]


def test_libpq_keyword_form_names_the_same_database(pg_client, database):
    u = urlsplit(database)
    keywords = "host=%s port=%d dbname='%s' user=%s" % (u.hostname, u.port, u.path.lstrip("/"), u.username)
    rx = pg_client("rx", "rx_topic", url=keywords)
    inbox = Inbox()
    assert rx.run(inbox), rx.last_error_message()
    tx = pg_client("tx", "tx_topic")  # the URL form, same database
    assert tx.run(Inbox())
    assert tx.send_to("rx_topic", b"hello", True), tx.last_error_message()
    assert inbox.wait_count(1) == 1


def test_an_unreachable_server_is_a_store_error_without_the_password():
    with pytest.raises(liner.LinerError) as e:
        liner.Client.new_postgres("u", "t", "127.0.0.1:0", "postgres://u:Pw-SECRET@127.0.0.1:%d/db" % free_port())
    assert e.value.code == liner.ERR_STORE
    assert "Pw-SECRET" not in e.value.message
