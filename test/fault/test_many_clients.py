"""200 clients in one process (many_clients.py), each sending 5 at-least-once messages to 3
others: all are created, run, deliver and close cleanly, and the process's file descriptors
and threads return to their starting counts after close. Per client while running: 6 threads
(listener, which also delivers; sender; directory watch; the listener's and the sender's store
workers, which keep Redis round trips off the socket threads; the waiting-sends thread, which
opens new channels off the caller's thread) and about 9 descriptors (listening
socket, 2 epoll, 3 eventfd, Redis connections) plus those of its TCP connections to and from
peers."""
import json
import os
import subprocess
import sys

from faultkit import HERE, ROOT, report

CLIENTS = 200
TARGETS = 3
MESSAGES = 5
THREADS_PER_CLIENT = 6
FDS_PER_CLIENT_MAX = 20


def test_two_hundred_clients_create_run_exchange_and_close_cleanly(redis):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, os.path.join(HERE, "many_clients.py"), redis.url,
                           "--clients", str(CLIENTS), "--targets", str(TARGETS),
                           "--messages", str(MESSAGES)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, "exit %d\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr[-3000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    report("many_clients", **r)
    assert r["closed"] == CLIENTS
    assert r["refused"] == 0
    assert r["delivered"] == CLIENTS * TARGETS * MESSAGES
    assert r["bad_meta"] == 0
    assert r["threads_running"] - r["threads_start"] == CLIENTS * THREADS_PER_CLIENT
    assert r["fds_peak"] - r["fds_start"] <= CLIENTS * FDS_PER_CLIENT_MAX
    assert r["fds_end"] == r["fds_start"], "descriptors left open after close"
    assert r["threads_end"] == r["threads_start"], "threads left running after close"
    # Nothing of theirs left in the directory.
    assert [k for k in redis.keys() if k.startswith("lnr_topic:") and k.endswith(":addr")] == []
