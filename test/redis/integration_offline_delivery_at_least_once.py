"""At-least-once messages sent while the receiver is stopped wait in Redis (the channel's
offline queue) and reach it, in order and once each, when it runs again; the queue is then
empty and the acknowledgement counter holds the last number."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, log, scenario, wait_until  # noqa: E402


def main(mesh):
    sender = mesh.client("clerk")
    receiver = mesh.client("audit")
    first = Inbox()
    assert receiver.run(first) and sender.run(Inbox())
    audit = mesh.name("audit")
    assert sender.send_to(audit, b"record 0")
    first.wait_count(1)
    receiver.stop()
    log("receiver stopped")

    for i in range(1, 6):
        assert sender.send_to(audit, b"record %d" % i), sender.last_error_message()
    with mesh.redis() as r:
        ck = int(r.cmd("GET", f"lnr_connection:{mesh.name('clerk')}:{mesh.name('clerk')}:{audit}:key"))
        queue = f"lnr_connection:{ck}:messages"
        wait_until(lambda: r.cmd("LLEN", queue) == 5, 10.0, "5 messages in the offline queue")
        log(f"5 messages wait in {queue}")

        again = Inbox()
        assert receiver.run(again), receiver.last_error_message()
        again.wait_count(5, 10.0)
        assert again.payloads() == [b"record %d" % i for i in range(1, 6)], again.payloads()
        wait_until(lambda: r.cmd("LLEN", queue) == 0, 5.0, "the offline queue to empty")
        wait_until(lambda: r.cmd("GET", f"lnr_connection:{ck}:mess_number") == b"6", 5.0, "ack 6")
    assert len(first.items) == 1
    log("delivered in order, once each; queue empty, ack at 6")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
