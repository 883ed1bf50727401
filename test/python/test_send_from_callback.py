"""send_to (and send_all, subscribe) may be called from inside a receive callback."""
import threading

from liner_testkit import Inbox, send_retrying


def test_echo_peers_reply_from_the_callback(make_client):
    echo = make_client("echo", "echo_topic")
    errors = []

    def on_ping(to, from_, data):
        ok, code = send_retrying(echo, from_, b"echo:" + data)
        if not ok:
            errors.append(code)

    assert echo.run(on_ping)
    client = make_client("client", "client_topic")
    inbox = Inbox()
    assert client.run(inbox)

    n = 200
    for i in range(n):
        assert send_retrying(client, "echo_topic", b"%d" % i) == (True, 0)
    assert inbox.wait_count(n, 10) == n
    assert errors == []
    assert inbox.snapshot() == [("client_topic", "echo_topic", b"echo:%d" % i) for i in range(n)]


def test_ping_pong_between_two_callbacks(make_client):
    """Each peer answers the other from its callback until the counter reaches the limit."""
    limit = 100
    done = threading.Event()
    peers = {}
    seen = {"a": [], "b": []}

    def player(name, other_topic):
        def on_ball(to, from_, data):
            n = int(data)
            seen[name].append(n)
            if n >= limit:
                done.set()
                return
            send_retrying(peers[name], other_topic, b"%d" % (n + 1))
        return on_ball

    peers["a"] = make_client("a", "topic_a")
    peers["b"] = make_client("b", "topic_b")
    assert peers["a"].run(player("a", "topic_b"))
    assert peers["b"].run(player("b", "topic_a"))
    assert peers["a"].send_to("topic_b", b"1")
    assert done.wait(10)
    assert seen["b"] == list(range(1, limit + 1, 2))
    assert seen["a"] == list(range(2, limit + 1, 2))


def test_subscribe_and_send_all_from_the_callback(make_client):
    listener = make_client("listener", "listener_topic")
    inbox = Inbox()

    def on_message(to, from_, data):
        inbox(to, from_, data)
        if data == b"please subscribe":
            assert listener.subscribe("late_news")
            send_retrying(listener, from_, b"subscribed", all_=True)

    assert listener.run(on_message)
    controller = make_client("controller", "controller_topic")
    c_inbox = Inbox()
    assert controller.run(c_inbox)
    assert controller.send_to("listener_topic", b"please subscribe")
    assert c_inbox.wait_count(1) == 1
    assert c_inbox.payloads() == [b"subscribed"]
    assert controller.refresh_address_topic("late_news")
    assert controller.send_to("late_news", b"news")
    assert inbox.wait_count(2) == 2
    assert inbox.snapshot()[1] == ("late_news", "controller_topic", b"news")
