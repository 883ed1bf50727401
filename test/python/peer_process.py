"""A liner peer in its own process, for tests that SIGKILL a peer (see extended_testkit.PeerProcess).

    peer_process.py ROLE UNIQUE TOPIC REDIS_URL [--to TOPIC --count N] [--subscribe TOPIC]

Runs a client on 127.0.0.1:0 and prints "READY <published address>". With --to it then sends N
numbered at-least-once messages to that topic (retrying while busy or while nobody serves it) and
prints "SENT <n>". Every received message is printed as "GOT <from> <payload>". It closes its
client and exits when its stdin reaches EOF; a SIGKILL ends it without any goodbye.
"""
import argparse
import sys
import time

import liner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role")
    ap.add_argument("unique")
    ap.add_argument("topic")
    ap.add_argument("redis_url")
    ap.add_argument("--to")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--subscribe")
    args = ap.parse_args()

    liner.loadLib()
    client = liner.Client(args.unique, args.topic, "127.0.0.1:0", args.redis_url)

    def on_message(to, from_, data):
        print("GOT %s %s" % (from_, data.decode("utf-8", "replace")), flush=True)

    if args.subscribe:
        assert client.subscribe(args.subscribe)
    assert client.run(on_message), client.last_error_message()
    print("READY %s" % client.published_addr(), flush=True)
    if args.to:
        for i in range(1, args.count + 1):
            deadline = time.monotonic() + 10
            while not client.send_to(args.to, b"%d" % i, True):
                if time.monotonic() > deadline:
                    print("FAILED %d %s" % (client.last_error_code(), client.last_error_message()),
                          flush=True)
                    break
                time.sleep(0.01)
        print("SENT %d" % args.count, flush=True)
    sys.stdin.read()  # until EOF
    client.close()


if __name__ == "__main__":
    main()
