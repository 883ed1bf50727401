"""A liner peer in a process of its own, for scenarios that need one: it answers every message
with ``echo:<data>`` sent back to the sender's topic, and runs until stdin closes.

    python3 client_process.py --name N --topic T [--subscribe S ...] --redis URL

Prints ``ready <address>`` once it runs.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import liner  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--subscribe", action="append", default=[])
    ap.add_argument("--redis", required=True)
    args = ap.parse_args()
    liner.loadLib()
    with liner.Client(args.name, args.topic, "127.0.0.1:0", args.redis) as peer:
        def echo(to, from_, data):
            if not peer.send_to(from_, b"echo:" + data):
                print(f"echo to {from_} failed: {peer.last_error_message()}", file=sys.stderr, flush=True)

        for topic in args.subscribe:
            peer.subscribe(topic)
        if not peer.run(echo):
            print(f"run failed: {peer.last_error_message()}", file=sys.stderr, flush=True)
            return 1
        print(f"ready {peer.bound_listen_addr()}", flush=True)
        sys.stdin.read()  # until the scenario closes our stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
