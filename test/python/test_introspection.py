"""list_addresses returns a topic's directory rows; pending_count / pending_by_peer reflect this
sender's offline queues in Redis (what LLEN says), running or not; both report store failures."""
import liner
from extended_testkit import private_redis  # noqa: F401
from liner_testkit import Inbox, free_port, wait_until

CK_KEY = "lnr_connection:sender:sender_topic:%s:key"


def test_list_addresses_returns_the_directory_rows(make_client, rdb):
    owners = [make_client("owner%d" % i, "jobs") for i in range(2)]
    for o in owners:
        assert o.run(Inbox())
    reader = make_client("reader", "reader_topic")
    assert reader.subscribe("jobs")
    assert reader.run(Inbox())
    looker = make_client("looker", "looker_topic")  # not running: works all the same

    rows = looker.list_addresses("jobs")
    assert looker.last_error_code() == liner.OK
    assert sorted(rows) == sorted(rdb.hgetall("lnr_topic:jobs:addr").items())
    assert sorted(rows) == sorted([(o.published_addr(), "owner%d" % i) for i, o in enumerate(owners)]
                                  + [(reader.published_addr(), "reader")])
    assert looker.list_addresses("nobody_serves_this") == []
    assert looker.last_error_code() == liner.OK

    # The directory follows the peers.
    assert reader.unsubscribe("jobs")
    assert owners[0].stop()
    assert looker.list_addresses("jobs") == [(owners[1].published_addr(), "owner1")]


def test_list_addresses_refreshes_the_route_of_a_running_client(make_client):
    peer = make_client("peer", "peer_topic")
    assert peer.run(Inbox())
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    assert c.list_addresses("peer_topic") == [(peer.published_addr(), "peer")]
    assert c.send_to("peer_topic", b"x")


def test_list_addresses_refusals(make_client, private_redis):
    c = make_client("c", "c_topic", url=private_redis.url)
    for bad in (None, "", b"bad\xff"):
        assert c.list_addresses(bad) is None
        assert c.last_error_code() == liner.ERR_INVALID_ARG
        assert c.last_error_message()
    assert c.list_addresses("own_topic_is_fine_to_list") == []
    private_redis.stop()
    assert c.list_addresses("jobs") is None
    assert c.last_error_code() == liner.ERR_STORE
    assert c.last_error_message()
    assert c.close()
    assert c.list_addresses("jobs") is None
    assert c.last_error_code() == liner.ERR_INVALID_ARG


def _went_offline(make_client, names, port_of):
    """Listeners (unique names `names`, topics `<name>_topic`) that the sender talked to, then
    stopped; and the running sender."""
    listeners = {}
    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    for name in names:
        listener = make_client(name, name + "_topic", "127.0.0.1:%d" % port_of[name])
        inbox = Inbox()
        assert listener.run(inbox)
        assert sender.send_to(name + "_topic", b"warm-up")
        assert inbox.wait_count(1) == 1
        listeners[name] = listener
    for listener in listeners.values():
        assert listener.stop()
    return sender, listeners


def _fill_offline_queues(make_client, rdb):
    """l1 and l2 went offline; the sender then queued 30 and 12 at-least-once messages for them.
    Returns (sender, listeners, ports, expected pending_by_peer rows, queue keys)."""
    port_of = {"l1": free_port(), "l2": free_port()}
    sender, listeners = _went_offline(make_client, ["l1", "l2"], port_of)
    assert sender.pending_count() == 0
    assert sender.last_error_code() == liner.OK
    for i in range(30):
        assert sender.send_to("l1_topic", b"a%d" % i, True), sender.last_error_message()
    for i in range(12):
        assert sender.send_to("l2_topic", b"b%d" % i, True), sender.last_error_message()
    assert not sender.send_to("l2_topic", b"best effort is not kept", False)  # nobody serves it
    keys = {n: "lnr_connection:%s:messages" % rdb.get(CK_KEY % n) for n in port_of}
    assert wait_until(lambda: rdb.llen(keys["l1"]) == 30 and rdb.llen(keys["l2"]) == 12, 10)
    rows = [("127.0.0.1:%d" % port_of["l1"], "l1_topic", "l1", 30),
            ("127.0.0.1:%d" % port_of["l2"], "l2_topic", "l2", 12)]
    return sender, listeners, sorted(rows), keys


def test_pending_queues_reflect_offline_messages(make_client, rdb):
    sender, listeners, rows, keys = _fill_offline_queues(make_client, rdb)
    assert sender.pending_count() == 42
    assert sender.last_error_code() == liner.OK
    assert sorted(sender.pending_by_peer()) == rows

    # Back online, the queues drain.
    inboxes = {}
    for name, listener in listeners.items():
        inboxes[name] = Inbox()
        assert listener.run(inboxes[name])
    assert inboxes["l1"].wait_count(30, 15) == 30 and inboxes["l2"].wait_count(12, 15) == 12
    assert wait_until(lambda: sender.pending_count() == 0, 10)
    assert all(count == 0 for *_, count in sender.pending_by_peer())
    assert rdb.llen(keys["l1"]) == 0 and rdb.llen(keys["l2"]) == 0


def test_a_stopped_sender_still_counts_its_offline_queues(make_client, rdb):
    sender, listeners, rows, keys = _fill_offline_queues(make_client, rdb)
    assert sender.stop()
    assert rdb.llen(keys["l1"]) == 30 and rdb.llen(keys["l2"]) == 12
    assert sender.pending_count() == 42
    assert sender.last_error_code() == liner.OK
    assert sorted(sender.pending_by_peer()) == rows


def test_pending_queues_of_a_sender_that_never_sent(make_client):
    c = make_client("c", "c_topic")
    assert c.pending_count() == 0
    assert c.pending_by_peer() == []
    assert c.run(Inbox())
    assert c.pending_count() == 0
    assert c.pending_by_peer() == []


def test_pending_queues_report_store_failures(make_client, private_redis):
    c = make_client("c", "c_topic", url=private_redis.url)
    assert c.run(Inbox())
    private_redis.stop()
    assert c.pending_count() == -1
    assert c.last_error_code() == liner.ERR_STORE
    assert c.last_error_message()
    assert c.pending_by_peer() is None
    assert c.last_error_code() == liner.ERR_STORE
    private_redis.start()
    assert wait_until(lambda: c.pending_count() == 0, 10)
    assert c.last_error_code() == liner.OK
    assert c.close()
    assert c.pending_count() == -1
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert c.pending_by_peer() is None
