"""The advertise address replaces the bound one in the directory: a peer bound to 0.0.0.0:0 that
advertises 127.0.0.1:0 publishes 127.0.0.1:<bound port> and is reachable there. It can only be set
before run, must be a literal address, and None/"" clears it."""
import liner
from liner_testkit import Inbox, free_port


def test_a_peer_bound_to_any_address_advertising_loopback_is_reachable(make_client, rdb):
    listener = make_client("listener", "listener_topic", "0.0.0.0:0")
    assert listener.advertise_addr() is None
    assert listener.set_advertise_addr("127.0.0.1:0")
    assert listener.last_error_code() == liner.OK
    assert listener.advertise_addr() == "127.0.0.1:0"
    assert listener.published_addr() is None  # not running yet
    inbox = Inbox()
    assert listener.run(inbox)

    bound = listener.bound_listen_addr()
    host, port = bound.rsplit(":", 1)
    assert host == "0.0.0.0" and int(port) > 0
    assert listener.published_addr() == "127.0.0.1:" + port
    assert listener.advertise_addr() == "127.0.0.1:0"
    assert rdb.hgetall("lnr_topic:listener_topic:addr") == {"127.0.0.1:" + port: "listener"}

    sender = make_client("sender", "sender_topic")
    assert sender.run(Inbox())
    assert sender.list_addresses("listener_topic") == [("127.0.0.1:" + port, "listener")]
    assert sender.send_to("listener_topic", b"via the advertised address")
    assert inbox.wait_count(1) == 1
    assert inbox.payloads() == [b"via the advertised address"]

    assert listener.stop()
    assert listener.published_addr() is None
    assert listener.bound_listen_addr() == bound
    assert rdb.hgetall("lnr_topic:listener_topic:addr") == {}


def test_an_explicit_advertised_port_is_published_as_given(make_client, rdb):
    port = free_port()
    c = make_client("c", "c_topic", "0.0.0.0:%d" % port)
    assert c.set_advertise_addr("127.0.0.1:%d" % port)
    assert c.subscribe("news")
    assert c.run(Inbox())
    assert c.published_addr() == "127.0.0.1:%d" % port
    assert rdb.hgetall("lnr_topic:news:addr") == {"127.0.0.1:%d" % port: "c"}


def test_set_advertise_addr_only_before_run(make_client):
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    assert not c.set_advertise_addr("127.0.0.1:0")
    assert c.last_error_code() == liner.ERR_ALREADY_RUNNING
    assert c.last_error_message()
    assert not c.set_advertise_addr(None)
    assert c.last_error_code() == liner.ERR_ALREADY_RUNNING
    assert c.advertise_addr() is None
    published = c.published_addr()
    assert published == c.bound_listen_addr()

    assert c.stop()
    assert c.set_advertise_addr("127.0.0.1:0")  # stopped: allowed again
    assert c.run(Inbox())
    assert c.published_addr() == "127.0.0.1:" + c.bound_listen_addr().rsplit(":", 1)[1]


def test_set_advertise_addr_refuses_what_is_not_a_literal_address(make_client):
    c = make_client("c", "c_topic")
    for bad in ("not-an-address", "localhost:4000", "127.0.0.1", "127.0.0.1:99999",
                "127.0.0.1:-1", "[::1]", b"127.0.0.1:\xff"):
        assert not c.set_advertise_addr(bad), bad
        assert c.last_error_code() == liner.ERR_INVALID_ARG, bad
        assert c.last_error_message()
    assert c.advertise_addr() is None
    assert c.set_advertise_addr("[::1]:0")
    assert c.advertise_addr() == "[::1]:0"


def test_none_or_empty_clears_the_advertise_address(make_client):
    c = make_client("c", "c_topic")
    for clear in (None, ""):
        assert c.set_advertise_addr("127.0.0.1:5555")
        assert c.advertise_addr() == "127.0.0.1:5555"
        assert c.set_advertise_addr(clear)
        assert c.last_error_code() == liner.OK
        assert c.advertise_addr() is None
    assert c.run(Inbox())
    assert c.published_addr() == c.bound_listen_addr()


def test_address_getters_of_a_closed_client(make_client):
    c = make_client("c", "c_topic")
    assert c.set_advertise_addr("127.0.0.1:0")
    assert c.run(Inbox())
    assert c.close()
    assert c.advertise_addr() is None
    assert c.published_addr() is None
    assert c.bound_listen_addr() is None
    assert not c.set_advertise_addr("127.0.0.1:0")
    assert c.last_error_code() == liner.ERR_INVALID_ARG
