"""1000 at-least-once messages sent back to back arrive complete, in order, without duplicates."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, liner, log, scenario  # noqa: E402

N = 1000


def main(mesh):
    sender = mesh.client("burst_source")
    receiver = mesh.client("burst_sink")
    inbox = Inbox()
    assert receiver.run(inbox) and sender.run(Inbox())
    sink = mesh.name("burst_sink")
    for i in range(N):
        while not sender.send_to(sink, b"%06d" % i):
            assert sender.last_error_code() == liner.ERR_BUSY, sender.last_error_message()
    inbox.wait_count(N, 15.0)
    assert inbox.payloads() == [b"%06d" % i for i in range(N)]
    log(f"{N} messages, in order, once each")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
