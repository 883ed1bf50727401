"""Best-effort (at-most-once) messages are never stored in Redis: to a receiver that left they
are refused (nobody serves the topic) or dropped, and it does not get them when it is back."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, liner, log, scenario  # noqa: E402


def main(mesh):
    sender = mesh.client("source")
    receiver = mesh.client("sink")
    first = Inbox()
    assert receiver.run(first) and sender.run(Inbox())
    sink = mesh.name("sink")
    assert sender.send_to(sink, b"seen", False)
    first.wait_count(1)
    receiver.stop()

    for i in range(5):
        if not sender.send_to(sink, b"lost %d" % i, False):
            assert sender.last_error_code() == liner.ERR_NO_ADDR, sender.last_error_message()
    time.sleep(0.3)
    with mesh.redis() as r:
        queues = [k for k in r.scan(f"lnr_connection:*{mesh.suffix}*:key")]
        for key in queues:
            ck = int(r.cmd("GET", key))
            assert r.cmd("LLEN", f"lnr_connection:{ck}:messages") == 0, "a best-effort message was stored"
    again = Inbox()
    assert receiver.run(again)
    time.sleep(0.5)
    assert again.items == [], again.items
    log("nothing stored, nothing delivered after the restart")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
