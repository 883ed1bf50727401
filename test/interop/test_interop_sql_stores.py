"""Interop with liner_broker 1.3.1 over ONE shared SQL store instead of Redis: an SQLite file or a
PostgreSQL database, each test on both.

liner clients (`liner.Client.new_sqlite` / `new_postgres`, the python/liner package over
build/libliner_broker.so) and lbpeer processes (`lbpeer --sqlite PATH` / `--postgres URL`, the
crate's `Liner::new_sqlite` with an empty receivers JSON / `Liner::new_postgres`, built with its
`postgres` feature) use the same store, a new one per test (a file in the test's temp dir; a new
database on the run's throwaway server, $LINER_TEST_POSTGRES_URL, which scripts/test.sh starts
through scripts/lib/postgres.sh). So the directory, keys, acks and offline queues of both
implementations live in liner_broker's tables (src/store/sqlite.rs and src/store/postgres.rs of
the crate). The scenarios are lbkit's, the ones test_interop.py runs on Redis; each test pins:

- frames flow both ways, at-least-once, with byte-identical payloads (zstd above 1 MiB included)
  and the right `to` (own topic or a subscription) and `from` (the sender's source topic);
- send_all from either implementation reaches a mixed set of liner and liner_broker replicas
  (subscribers of the topic, or replicas whose source topic it is), each message once, in order;
- at-least-once messages sent while the listener is down arrive once and in order after it
  restarts with the same identity and address, whichever side is offline (1.3.1 reconnects on a
  10 s tick, hence OFFLINE_DELIVERY_TIMEOUT), and leave no row in conn_messages;
- after a liner pair (or a mixed pair) has exchanged messages, liner_broker's tables (seq,
  topic_addr, sender_listener, conn_key_map, topic_key, conn_sender, conn_mess_number,
  conn_messages) have the same columns and the same rows as after a liner_broker pair's exchange,
  with names, addresses and allocated integers normalised as in the Redis key comparison.

Without LINER_TEST_POSTGRES_URL (pytest run by hand without a server) the PostgreSQL cases are
skipped; scripts/test.sh always sets it.
"""
import os

import pytest

from lbkit import (PostgresStore, SqliteStore, flow_lb_to_liner_listener, flow_liner_to_lb_listener,
                   flow_plan, offline_delivery_to_restarted_lb_listener,
                   offline_delivery_to_restarted_liner_listener, pair_scenario,
                   send_all_to_mixed_replicas)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    """A fresh store for this test: an SQLite file, or a new database on the run's PostgreSQL
    server (its tables made by the first peer that opens it)."""
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "shared.sqlite")
    server = os.environ.get("LINER_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("LINER_TEST_POSTGRES_URL is not set: run through scripts/test.sh, or start a "
                    "server with scripts/lib/postgres.sh (start_throwaway_postgres)")
    return PostgresStore(server)


def test_liner_sender_to_liner_broker_listener(peers, clients, store):
    """liner sends with send_to; the lbpeer listener on the same store gets every payload
    byte-identical, in order, with `to` = lb_topic or lb_sub and `from` = ln_topic."""
    flow_liner_to_lb_listener(peers, clients,
                              flow_plan("lb_topic", "lb_sub", at_least_once=lambda i: True))


def test_liner_broker_sender_to_liner_listener(peers, clients, store):
    """The reverse direction: what lbpeer sends reaches the liner listener once, in order,
    byte-identical, with `to` = ln_topic or ln_sub and `from` = lb_topic."""
    flow_lb_to_liner_listener(peers, clients,
                              flow_plan("ln_topic", "ln_sub", at_least_once=lambda i: True))


@pytest.mark.parametrize("layout", ["subscribers", "source_replicas"])
@pytest.mark.parametrize("sender_kind", ["liner", "liner_broker"])
def test_send_all_reaches_mixed_replicas(peers, clients, store, sender_kind, layout):
    """send_all to a topic served by 2 liner clients and 1 liner_broker peer (as subscribers, or
    as replicas with it as their source topic) delivers every message to each, once, in order."""
    send_all_to_mixed_replicas(peers, clients, store, sender_kind, layout)


def test_offline_delivery_to_restarted_liner_broker_listener(peers, clients, store):
    """liner sender, liner_broker listener offline: messages sent while it is down reach it once,
    in order, after it restarts with the same name, topic and address."""
    offline_delivery_to_restarted_lb_listener(peers, clients, store)


def test_offline_delivery_to_restarted_liner_listener(peers, clients, store):
    """liner_broker sender, liner listener offline: same contract in the other direction."""
    offline_delivery_to_restarted_liner_listener(peers, clients, store)


@pytest.mark.parametrize("kind_sender,kind_listener", [
    ("liner", "liner"), ("liner", "liner_broker"), ("liner_broker", "liner")])
def test_tables_match_liner_broker(peers, clients, store, kind_sender, kind_listener):
    """The same scenario leaves the same tables, columns and (normalised) rows as a pure
    liner_broker 1.3.1 pair. Tables liner adds beside liner_broker's (lnr_*) are not compared:
    1.3.1 never reads them."""
    reference = pair_scenario("liner_broker", "liner_broker", peers, clients, store, "a")
    store.clear()  # an empty file, or a new database
    observed = pair_scenario(kind_sender, kind_listener, peers, clients, store, "b")
    assert set(reference) <= set(observed), "tables missing after %s->%s: %s" % (
        kind_sender, kind_listener, sorted(set(reference) - set(observed)))
    for table, (columns, rows) in reference.items():
        assert observed[table][0] == columns, "%s: columns differ" % table
        assert observed[table][1] == rows, "%s rows differ:\n  liner_broker: %s\n  %s->%s: %s" % (
            table, rows, kind_sender, kind_listener, observed[table][1])
