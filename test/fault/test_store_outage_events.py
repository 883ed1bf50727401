"""A Redis outage under running clients is told once per side, then its end: one
SENDER_STORE_ERROR and one LISTENER_STORE_ERROR (carrying the topic and peer of the call that
failed first), however many calls fail meanwhile, and one STORE_RECOVERED per side when Redis
answers again. A second outage is told again. (Before: one event per failed call, ten a
second per side, for as long as the outage lasted.)"""
import threading
import time

import liner

from faultkit import report, wait_until

DOWN_S = 3.0


class Events:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def __call__(self, kind, topic, peer, message):
        with self.lock:
            self.items.append((kind, topic, peer, message))

    def of(self, kind):
        with self.lock:
            return [e for e in self.items if e[0] == kind]


def test_an_outage_is_told_once_per_side_and_its_end_once(private_redis):
    redis = private_redis(persistent=True)
    got = []
    listener = liner.Client("oe_l", "oe_l_topic", "127.0.0.1:0", redis.url)
    sender = liner.Client("oe_s", "oe_s_topic", "127.0.0.1:0", redis.url)
    heard_l, heard_s = Events(), Events()
    listener.set_status_callback(heard_l)
    sender.set_status_callback(heard_s)
    try:
        assert listener.run(lambda to, from_, data: got.append(data))
        assert sender.run(lambda *a: None)
        assert sender.send_to("oe_l_topic", b"0", True)  # the route is known from here on
        n = 1
        for outage in range(2):
            redis.stop()
            end = time.monotonic() + DOWN_S
            while time.monotonic() < end:  # at-least-once traffic: acks fail on both sides
                assert sender.send_to("oe_l_topic", b"%d" % n, True), sender.last_error_message()
                n += 1
                time.sleep(0.02)
            redis.start()
            assert wait_until(lambda: len(heard_l.of(liner.STORE_RECOVERED)) == outage + 1
                              and len(heard_s.of(liner.STORE_RECOVERED)) == outage + 1, 10), \
                (heard_l.items, heard_s.items)
            assert len(heard_l.of(liner.LISTENER_STORE_ERROR)) == outage + 1, heard_l.items
            assert len(heard_s.of(liner.SENDER_STORE_ERROR)) == outage + 1, heard_s.items
        assert wait_until(lambda: len(set(got)) == n, 10)
        time.sleep(1.5)  # nothing more once Redis answers
        listener_errors = heard_l.of(liner.LISTENER_STORE_ERROR)
        sender_errors = heard_s.of(liner.SENDER_STORE_ERROR)
        report("store_outage_events", messages=n, listener_errors=len(listener_errors),
               sender_errors=len(sender_errors), recovered=heard_l.of(liner.STORE_RECOVERED)[-1][3])
        assert len(listener_errors) == 2 and len(sender_errors) == 2
        # The first error of an outage says what failed: the listener's names its sender's
        # topic, the sender's its listener's topic and address.
        assert listener_errors[0][1] == "oe_s_topic" and "redis" in listener_errors[0][3]
        assert sender_errors[0][1] == "oe_l_topic" and sender_errors[0][2] == listener.published_addr()
        for kind, topic, peer, message in heard_l.of(liner.STORE_RECOVERED) + heard_s.of(liner.STORE_RECOVERED):
            assert topic == "" and peer == "" and "answers again" in message
        assert "listener" in heard_l.of(liner.STORE_RECOVERED)[0][3]
        assert "sender" in heard_s.of(liner.STORE_RECOVERED)[0][3]
        assert sorted(set(got), key=int) == [b"%d" % i for i in range(n)]
    finally:
        sender.close()
        listener.close()
