"""A peer that resets its connection while liner writes to it must not kill the host process:
C programs keep SIGPIPE at its default (terminate), unlike Python and Node, which ignore it. The
scenario runs in a child process that restores the default disposition first."""
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import signal, sys, threading, time
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as in a C program
    import liner
    liner.loadLib()
    from liner_testkit import Resp, loopback_server

    # A listener that reads a little and closes normally: liner's next write gets a RST back,
    # and a write after that is the one that raises SIGPIPE when nobody asked for MSG_NOSIGNAL.
    stop, accepted = threading.Event(), []

    def close_after_a_read(conn):
        accepted.append(1)
        conn.recv(1024)
        conn.close()

    addr = loopback_server(close_after_a_read, stop)
    with Resp(sys.argv[1], int(sys.argv[2])) as rdb:
        rdb("HSET", "lnr_topic:sigpipe_topic:addr", addr, "closer")
    sender = liner.Client("sigpipe_sender", "sigpipe_sender_topic", "127.0.0.1:0", sys.argv[3])
    assert sender.run(lambda to, from_, data: None)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for _ in range(50):
            sender.send_to("sigpipe_topic", b"x" * 65536, True)
        time.sleep(0.001)
    stop.set()
    sender.close()
    print("connections:", len(accepted))
    sys.exit(0 if len(accepted) > 1 else 3)
""")


def test_a_reset_peer_does_not_kill_a_process_that_keeps_sigpipe(redis):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here] + sys.path))
    child = subprocess.run([sys.executable, "-c", CHILD, "127.0.0.1", str(redis.port), redis.url],
                           env=env, capture_output=True, text=True, timeout=60)
    assert child.returncode != -13, "killed by SIGPIPE: " + child.stderr[-2000:]
    assert child.returncode == 0, child.stdout + child.stderr[-2000:]
