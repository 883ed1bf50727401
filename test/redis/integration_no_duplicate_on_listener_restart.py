"""A receiver that restarts while a sender keeps sending at-least-once gets every message exactly
once across its two runs (acknowledgements are written before it stops)."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, liner, log, scenario, wait_until  # noqa: E402

N = 300


def main(mesh):
    sender = mesh.client("steady")
    receiver = mesh.client("restarting")
    inbox = Inbox()
    assert receiver.run(inbox) and sender.run(Inbox())
    target = mesh.name("restarting")

    def produce():
        for i in range(N):
            while not sender.send_to(target, b"%05d" % i):
                assert sender.last_error_code() == liner.ERR_BUSY, sender.last_error_message()
                time.sleep(0.01)
            time.sleep(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: len(inbox.items) >= N // 3, 10.0, "a third of the messages")
    receiver.stop()
    log(f"receiver stopped after {len(inbox.items)} messages")
    time.sleep(0.2)
    assert receiver.run(inbox), receiver.last_error_message()
    producer.join(30)
    inbox.wait_count(N, 15.0)
    time.sleep(0.3)  # a duplicate would arrive now
    got = inbox.payloads()
    assert sorted(got) == [b"%05d" % i for i in range(N)], f"{len(got)} messages, {len(set(got))} distinct"
    log(f"{N} messages across the restart, each exactly once")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
