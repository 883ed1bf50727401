"""The few helpers the Python examples share, so that each example shows only the messaging
pattern it is about.

Every example is one process that plays every peer: in real use each peer would be its own
process (or machine), with the same calls. Peers find each other through Redis only.

An example exits 0 when every message arrived as the pattern promises. Otherwise it exits 1
with an "error: ..." line on stderr: at once when a call fails (Redis unreachable, a send
refused), or after TIMEOUT_S when messages are missing.
"""
import os
import sys
import threading
import time

# Use the liner package of this repository (python/liner), which loads build/libliner_broker.so.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "python"))

import liner  # noqa: E402

# How long an example waits for its messages before it declares failure, in seconds.
TIMEOUT_S = 10.0


def redis_url():
    """Redis to use: the first argument, else $LINER_TEST_REDIS_URL, else the local default."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("LINER_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def die(what, why):
    print("error: %s: %s" % (what, why), file=sys.stderr)
    sys.exit(1)


def finish(name, ok, expected):
    """Ends an example: prints "<name>: OK" and returns 0, or says on stderr what was expected
    and returns 1 (the exit status: a failed example must fail whoever runs it)."""
    if ok:
        print("%s: OK" % name)
        return 0
    sys.stdout.flush()
    print("error: %s: FAILED: expected %s within %g s" % (name, expected, TIMEOUT_S), file=sys.stderr)
    return 1


def check(ok, client, what):
    """Stops the example when a call returned False, printing the client's error."""
    if not ok:
        die(what, "code %d: %s" % (client.last_error_code(), client.last_error_message()))


def client(unique_name, topic, url):
    """Creates a client listening on a free loopback port (chosen by run).

    The example's names are fixed, so a run that was killed earlier may have left its address
    and its unacknowledged messages in Redis; clearing them first makes every run start from
    scratch. Both calls are only allowed while the client is not running.
    """
    try:
        c = liner.Client(unique_name, topic, "127.0.0.1:0", url)
    except liner.LinerError as e:
        die(unique_name, e)
    check(c.clear_stored_messages(), c, "clear_stored_messages")
    check(c.clear_addresses_of_topic(), c, "clear_addresses_of_topic")
    return c


def run(c, receive):
    """Starts a client and says where it listens."""
    check(c.run(receive), c, "run")
    print("  %-28s listens on %s" % (c.unique_name(), c.bound_listen_addr()))


def ignore(to, from_, data):
    """Receive callback for peers that only send."""


def send(c, topic, data, all_=False):
    """Sends at-least-once with send_to (one peer of the topic) or send_all (every peer).

    ERR_BUSY only means a peer's send queue is full for now, so it is retried after a short
    pause; any other error stops the example.
    """
    fn = c.send_all if all_ else c.send_to
    while not fn(topic, data, True):
        if c.last_error_code() != liner.ERR_BUSY:
            check(False, c, "send_all" if all_ else "send_to")
        time.sleep(0.005)


class Counter:
    """Counts messages per key from any thread; wait() blocks until a total is reached."""

    def __init__(self):
        self.cond = threading.Condition()
        self.counts = {}
        self.total = 0

    def add(self, key):
        with self.cond:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.total += 1
            self.cond.notify_all()

    def get(self, key):
        with self.cond:
            return self.counts.get(key, 0)

    def wait(self, want, timeout=TIMEOUT_S):
        """True when `want` messages arrived within `timeout` seconds; then waits a little
        longer so that a duplicate would show up."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.total < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        time.sleep(0.2)
        return True


def load():
    """Loads the library, or stops with a hint."""
    try:
        liner.load_lib()
    except liner.LinerError as e:
        die("load_lib", e)
    return liner
