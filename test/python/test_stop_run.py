"""stop() ends a client's run without closing it: it leaves the directory, keeps its bound address,
allows clear_*, and run() starts it again. Traffic resumes after either side restarts this way:
nothing lost, nothing delivered twice, order kept."""
import threading
import time

import pytest

import liner
from extended_testkit import private_redis  # noqa: F401
from liner_testkit import Inbox, SeqChecker, free_port, seq_payload, wait_until


def send_retrying_busy(client, topic, data, timeout=10.0):
    """send_to at-least-once, retrying while ERR_BUSY; asserts any other refusal."""
    deadline = time.monotonic() + timeout
    while not client.send_to(topic, data, True):
        code = client.last_error_code()
        assert code == liner.ERR_BUSY, "refused: %d %s" % (code, client.last_error_message())
        assert time.monotonic() < deadline, "busy for %.0f s" % timeout
        time.sleep(0.001)


def assert_exactly_once_in_order(checker, last, timeout=30):
    assert checker.wait_count(last, timeout) >= last, "%d of %d delivered" % (checker.count, last)
    time.sleep(1.0)  # a duplicate would show up here
    missing = sorted(set(range(1, last + 1)) - set(checker.seqs))
    assert missing == [], "lost %d messages, first %s" % (len(missing), missing[:10])
    assert checker.count == last, "%d deliveries for %d messages" % (checker.count, last)
    assert checker.seqs == list(range(1, last + 1)), "order broken: %s" % checker.errors


class Pump(threading.Thread):
    """Sends numbered at-least-once messages until stopped (the main thread restarts a peer)."""

    def __init__(self, client, topic, first=1):
        super().__init__(daemon=True)
        self.client, self.topic, self.next = client, topic, first
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                for _ in range(20):
                    send_retrying_busy(self.client, self.topic, seq_payload(self.next))
                    self.next += 1
                time.sleep(0.002)
        except BaseException as e:  # noqa: B902 - reported by finish()
            self.error = e

    def finish(self):
        self.halt.set()
        self.join(30)
        assert not self.is_alive()
        if self.error:
            raise self.error
        return self.next - 1


def test_stop_and_is_running_follow_the_lifecycle(make_client, rdb):
    c = make_client("u", "t")
    assert not c.is_running()
    assert c.last_error_code() == liner.OK
    assert c.published_addr() is None and c.bound_listen_addr() is None
    assert c.stop()  # idempotent: nothing to stop
    assert c.run(Inbox())
    assert c.is_running()
    bound = c.bound_listen_addr()
    assert c.published_addr() == bound
    assert rdb.hgetall("lnr_topic:t:addr") == {bound: "u"}
    assert not c.clear_stored_messages()
    assert c.last_error_code() == liner.ERR_CLEAR_WHILE_RUNNING

    assert c.stop()
    assert c.last_error_code() == liner.OK and c.last_error_message() == ""
    assert not c.is_running()
    assert c.published_addr() is None
    assert c.bound_listen_addr() == bound  # kept after stop
    assert rdb.hgetall("lnr_topic:t:addr") == {}
    assert c.stop()
    assert not c.send_to("other", b"x")
    assert c.last_error_code() == liner.ERR_NOT_RUNNING
    assert c.clear_stored_messages() and c.clear_addresses_of_topic()

    assert c.run(Inbox())
    assert c.is_running()
    assert rdb.hgetall("lnr_topic:t:addr") == {c.published_addr(): "u"}


def test_a_closed_client_refuses_stop_and_is_not_running(started_client):
    c, _ = started_client("u", "t")
    assert c.close()
    assert not c.stop()
    assert c.last_error_code() == liner.ERR_INVALID_ARG
    assert not c.is_running()
    assert not c.run(Inbox())


def test_sender_stop_and_run_again_loses_and_doubles_nothing(make_client, started_client):
    listener = make_client("listener", "listener_topic")
    checker = SeqChecker()
    checker.expect_meta("listener_topic", "sender_topic")
    assert listener.run(checker)
    sender, _ = started_client("sender", "sender_topic")

    for i in range(1, 501):
        send_retrying_busy(sender, "listener_topic", seq_payload(i))
    assert sender.stop()  # right away: most of it is still in flight
    assert not sender.send_to("listener_topic", seq_payload(501))
    assert sender.last_error_code() == liner.ERR_NOT_RUNNING
    assert sender.run(Inbox())
    for i in range(501, 1001):
        send_retrying_busy(sender, "listener_topic", seq_payload(i))
    assert_exactly_once_in_order(checker, 1000)
    assert checker.bad_meta == []


def test_sender_stopped_mid_stream_and_run_again_loses_and_doubles_nothing(make_client, started_client):
    listener = make_client("listener", "listener_topic")
    checker = SeqChecker()
    assert listener.run(checker)
    sender, _ = started_client("sender", "sender_topic")
    first = 1
    for _ in range(3):
        pump = Pump(sender, "listener_topic", first)
        pump.start()
        time.sleep(0.3)
        last = pump.finish()
        assert sender.stop()
        assert sender.run(Inbox())
        first = last + 1
    for i in range(first, first + 100):
        send_retrying_busy(sender, "listener_topic", seq_payload(i))
    assert_exactly_once_in_order(checker, first + 99)


@pytest.mark.parametrize("same_address", [True, False], ids=["same_address", "new_address"])
def test_listener_stop_and_run_again_mid_stream_loses_and_doubles_nothing(make_client, started_client, same_address):
    # same_address: a fixed listen port, bound again by run; else port 0, a new port each run.
    addr = "127.0.0.1:%d" % free_port() if same_address else "127.0.0.1:0"
    listener = make_client("listener", "listener_topic", addr)
    checker = SeqChecker()
    checker.expect_meta("listener_topic", "sender_topic")
    assert listener.run(checker)
    sender, _ = started_client("sender", "sender_topic")

    pump = Pump(sender, "listener_topic")
    pump.start()
    try:
        for _ in range(2):
            seen = checker.count
            assert wait_until(lambda: checker.count > seen, 10)
            time.sleep(0.3)
            assert listener.stop()  # the pump goes on: its messages wait in Redis meanwhile
            assert not listener.is_running()
            time.sleep(0.3)
            assert listener.run(checker)
        seen = checker.count
        assert wait_until(lambda: checker.count > seen, 10)  # traffic resumed
    finally:
        last = pump.finish()
    assert_exactly_once_in_order(checker, last)
    assert checker.bad_meta == []


def test_messages_stored_while_the_listener_was_stopped_reach_it_at_its_new_address(make_client, started_client):
    listener = make_client("listener", "listener_topic")  # port 0: a new port at each run
    checker = SeqChecker()
    assert listener.run(checker)
    sender, _ = started_client("sender", "sender_topic")
    send_retrying_busy(sender, "listener_topic", seq_payload(1))
    assert checker.wait_count(1, 10) == 1

    old = listener.published_addr()
    assert listener.stop()
    for i in range(2, 101):
        send_retrying_busy(sender, "listener_topic", seq_payload(i))
    assert wait_until(lambda: sender.pending_count() == 99, 10), sender.pending_count()
    assert listener.run(checker)
    assert listener.published_addr() != old
    # No further send: the sender follows the listener's identity to its new address by itself.
    assert_exactly_once_in_order(checker, 100, timeout=15)
    assert wait_until(lambda: sender.pending_count() == 0, 10)


def test_listener_on_a_fixed_port_stop_and_run_again_receives_best_effort_messages(started_client):
    addr = "127.0.0.1:%d" % free_port()
    listener, inbox = started_client("listener", "listener_topic", addr)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"before", False)
    assert inbox.wait_count(1) == 1

    assert listener.stop()
    assert listener.run(inbox)
    assert listener.bound_listen_addr() == addr
    # Best effort may be dropped while the sender reconnects, but not for ever.
    deadline = time.monotonic() + 10
    while len(inbox) < 2 and time.monotonic() < deadline:
        sender.send_to("listener_topic", b"after", False)
        time.sleep(0.05)
    assert len(inbox) >= 2, "no best-effort message delivered in 10 s after the listener restarted"
    assert inbox.payloads()[1] == b"after"


def test_listener_restart_with_a_new_address_receives_best_effort_messages(started_client):
    listener, inbox = started_client("listener", "listener_topic")
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"before", False)
    assert inbox.wait_count(1) == 1

    assert listener.stop()
    assert listener.run(inbox)
    deadline = time.monotonic() + 10
    while len(inbox) < 2 and time.monotonic() < deadline:
        sender.send_to("listener_topic", b"after", False)
        time.sleep(0.05)
    assert len(inbox) >= 2, "no best-effort message delivered in 10 s after the listener restarted"


def test_run_after_stop_takes_the_new_callback(make_client, started_client):
    listener = make_client("listener", "listener_topic")
    first, second = Inbox(), Inbox()
    assert listener.run(first)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"one")
    assert first.wait_count(1) == 1
    assert listener.stop()
    assert listener.run(second)
    assert listener.run(first)  # running: keeps `second`
    assert sender.send_to("listener_topic", b"two")
    assert second.wait_count(1) == 1
    assert second.payloads() == [b"two"] and first.payloads() == [b"one"]


def test_stop_from_the_own_receive_callback_is_refused(make_client, started_client):
    listener = make_client("listener", "listener_topic")
    outcome = []

    def on_message(to, from_, data):
        outcome.append((listener.stop(), listener.last_error_code(), listener.is_running()))

    assert listener.run(on_message)
    sender, _ = started_client("sender", "sender_topic")
    assert sender.send_to("listener_topic", b"stop yourself")
    assert wait_until(lambda: outcome, 5)
    assert outcome == [(False, liner.ERR_INVALID_ARG, True)]
    assert listener.is_running()


def test_run_again_while_redis_is_down_fails_then_works(started_client, private_redis):
    c, _ = started_client("u", "t", url=private_redis.url)
    assert c.stop()
    private_redis.stop()
    assert not c.run(Inbox())
    assert c.last_error_code() == liner.ERR_STORE
    assert c.last_error_message()
    assert not c.is_running()
    assert c.published_addr() is None
    private_redis.start()
    assert wait_until(lambda: c.run(Inbox()), 10)
    assert c.is_running()
