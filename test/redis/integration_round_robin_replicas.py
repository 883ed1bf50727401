"""send_to a topic served by three replicas spreads the messages evenly over them (round-robin);
send_all reaches every replica."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, log, scenario, wait_until  # noqa: E402


def main(mesh):
    inboxes = [Inbox() for _ in range(3)]
    for i, inbox in enumerate(inboxes):
        assert mesh.client(f"worker_{i}", "jobs").run(inbox)
    producer = mesh.client("producer")
    assert producer.run(Inbox())
    jobs = mesh.name("jobs")
    for i in range(30):
        assert producer.send_to(jobs, b"job %d" % i), producer.last_error_message()
    wait_until(lambda: sum(len(x.items) for x in inboxes) == 30, 5.0, "30 jobs")
    counts = [len(x.items) for x in inboxes]
    assert counts == [10, 10, 10], counts
    assert producer.send_all(jobs, b"to all")
    wait_until(lambda: all(len(x.items) == 11 for x in inboxes), 5.0, "a copy per replica")
    log(f"jobs per replica {counts}; send_all: one copy each")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
