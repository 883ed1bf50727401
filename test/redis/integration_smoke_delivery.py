"""A peer in another process receives a message sent to a topic it subscribed to and answers
it: `to` and `from` are right on both sides and the payload arrives intact."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import HERE, Inbox, log, scenario, wait_until  # noqa: E402


def main(mesh):
    echo_name, echo_topic, board = mesh.name("echo"), mesh.name("echo_topic"), mesh.name("board")
    peer = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "client_process.py"), "--name", echo_name, "--topic", echo_topic,
         "--subscribe", board, "--redis", mesh.url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = peer.stdout.readline()
        assert line.startswith("ready "), f"echo peer did not start: {line!r}"
        log(f"echo peer {echo_name} runs on {line.split()[1]}")

        inbox = Inbox()
        me = mesh.client("asker")
        assert me.run(inbox)
        wait_until(lambda: me.refresh_address_topic(board), 5.0, f"a peer on {board}")
        payload = bytes(range(256)) * 4
        assert me.send_to(board, payload), me.last_error_message()
        inbox.wait_count(1)
        to, from_, data = inbox.items[0]
        assert to == mesh.name("asker") and from_ == echo_topic, (to, from_)
        assert data == b"echo:" + payload
        log("the echo came back intact, with the right to and from")
    finally:
        peer.stdin.close()
        assert peer.wait(15) == 0, "echo peer exited badly"


if __name__ == "__main__":
    raise SystemExit(scenario(main))
